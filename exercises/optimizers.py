"""Exercise 1 (optimizers): the Adagrad and Adam updates.

Replace each ``raise NotImplementedError`` with the update in its docstring,
then check your functions against ``keras.optimizers`` (3 updates, float64,
Keras' default hyperparameters and others):

    make exercise NAME=optimizers

The package's own version is tfscratch/optimizers.py (read it afterwards).
Both functions change tf.Variables in place: use ``variable.assign_add`` /
``variable.assign_sub`` / ``variable.assign``.
"""
import tensorflow as tf  # noqa: F401  (you will need it)


def adagrad_update(variable, gradient, accumulator, learning_rate, epsilon):
  """One Adagrad update of one variable, in place:

    a <- a + g^2
    w <- w - lr * g / sqrt(a + eps)

  (Keras puts eps inside the square root; TF1's Adagrad had no eps.)

  Args:
    variable, accumulator: tf.Variables of one shape (w and a).
    gradient: g, a tensor of that shape. learning_rate: lr, in w's dtype.
    epsilon: eps, a Python float.
  """
  raise NotImplementedError


def adam_update(variable, gradient, m, v, step, learning_rate, beta_1, beta_2,
                epsilon):
  """One Adam update of one variable, in place (Keras 3's arrangement):

    m <- m + (g - m) * (1 - beta1)
    v <- v + (g^2 - v) * (1 - beta2)
    w <- w - lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps)

  The factor sqrt(1 - beta2^t) / (1 - beta1^t) undoes the bias of the
  moments toward their zero start. Note where eps goes: outside the root,
  added to sqrt(v) (uncorrected), as Keras does.

  One Keras detail the float64 check sees: Keras computes beta^t as
  tf.pow(tf.cast(beta, w.dtype), t), and tf.cast of a Python float rounds
  it through float32 first (0.9 becomes 0.89999998). Do the same for the
  two powers; use the plain floats in the moment updates.

  Args:
    variable, m, v: tf.Variables of one shape (w and the two moments).
    gradient: g. step: t, the number of this update (1 for the first), a
      tensor in w's dtype. learning_rate: lr, in w's dtype.
    beta_1, beta_2, epsilon: Python floats.
  """
  raise NotImplementedError
