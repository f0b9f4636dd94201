"""Exercise 3 (batchnorm): batch normalization's two formulas.

Replace each ``raise NotImplementedError`` with the formula in its
docstring, then check your functions against
``keras.layers.BatchNormalization`` (float64: outputs in training and
inference mode, gradients with respect to x, gamma and beta, and the moving
averages after 3 batches, at Keras' default momentum and epsilon and others):

    make exercise NAME=batchnorm

The package's own version is batchnorm_manual/batchnorm.py; the checks
compute the batch's mean and variance with ``tf.nn.moments(x, axes=[0])``
(the biased variance) and hand them to you.
"""
import tensorflow as tf  # noqa: F401  (you will need it)


def normalize(x, mean, variance, gamma, beta, epsilon):
  """y = gamma * (x - mean) / sqrt(variance + epsilon) + beta, per feature.

  Args:
    x: (batch, n). mean, variance, gamma, beta: (n,), broadcast over the
      batch. epsilon: > 0, keeps the division finite for a constant feature.
  Returns:
    y: (batch, n).
  """
  raise NotImplementedError


def moving_average(moving, batch_statistic, momentum):
  """The new value of a moving average after one training batch:

    moving * momentum + batch_statistic * (1 - momentum)

  ``momentum`` is the weight of the OLD value (Keras' convention: 0.99 by
  default; PyTorch's momentum=0.1 means the weight of the new one).

  Args:
    moving, batch_statistic: (n,). momentum: in [0, 1).
  Returns:
    (n,), the new moving average (the check assigns it).
  """
  raise NotImplementedError
