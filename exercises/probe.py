"""Exercise 4 (probe): the linear probe's objective and its gradient.

Replace ``raise NotImplementedError`` with the objective in the docstring,
then check it (float64): the value against NumPy, the gradient you return
against central finite differences, at two penalty strengths:

    make exercise NAME=probe

The package's own version is ``objective_and_gradient`` in
mnist_probes/probe.py, where L-BFGS minimises it.
"""
import tensorflow as tf  # noqa: F401  (you will need it)


def objective_and_gradient(theta, features, labels, inverse_c):
  """Multinomial logistic regression with an L2 penalty, divided by n:

    p(k | x)  = softmax(x W + b)_k                   W: (d, K)  b: (K,)
    objective = (sum_i -log p(y_i | x_i) + ||W||^2 / (2 C)) / n

  The parameters arrive flat: theta = [W flattened row by row, b], of
  length d*K + K (K = theta.size // (d + 1)). b is not penalised.

  The gradient is with respect to theta (same layout). Either let
  tf.GradientTape compute it (tape.watch(theta): it is a tensor, not a
  variable), or write it out:

    d objective / d W = (X^T (P - Y) + W / C) / n
    d objective / d b = sum over rows of (P - Y) / n

  with P (n, K) the probabilities and Y (n, K) the one-hot labels.

  Args:
    theta: float64 (d*K + K,). features: float64 (n, d).
    labels: int (n,) in [0, K). inverse_c: float64 scalar, 1 / C.
  Returns:
    (objective, gradient): a float64 scalar and a float64 (d*K + K,).
  """
  raise NotImplementedError
