"""Batch normalization written out from ``tf.nn.moments``.

For a batch of pre-activations x (batch, n), feature by feature:

  training:   mu, var = mean and variance of x over the batch (axis 0)
  inference:  mu, var = moving_mean, moving_variance
  both:       y = gamma * (x - mu) / sqrt(var + epsilon) + beta

  gamma, beta:                     (n,) learnable, start at 1 and 0
  moving_mean, moving_variance:    (n,) not learnable, start at 0 and 1

The variance is the biased one, the mean of (x - mu)^2 (divide by batch, not
batch - 1), in the normalization and in the moving average alike. After each
training step the moving averages take in the batch's statistics:

  moving = moving * momentum + batch_statistic * (1 - momentum)

so ``momentum`` is the weight of the OLD value (0.99: the averages forget
with a time constant of about 1 / (1 - 0.99) = 100 steps).

Conventions and defaults are those of ``tf.keras.layers.BatchNormalization``
(momentum 0.99, epsilon 1e-3); tests check both agree to 1e-10 in float64
(tests/test_equivalence_batchnorm_manual.py).

Watch out when porting from PyTorch: ``torch.nn.BatchNorm1d(momentum=0.1)``
means the weight of the NEW value, so PyTorch momentum m is Keras momentum
1 - m (PyTorch's default 0.1 is Keras' 0.9, not 0.99). PyTorch also folds
the unbiased variance (divide by batch - 1) into its running_var, and its
default epsilon is 1e-5.

Why the update is a separate method
-----------------------------------
Keras' layer updates its moving averages as a side effect of being called
with ``training=True``: calling it only to look at an output changes the
model. Here ``__call__`` is pure. It returns the output together with the
statistics it normalised with; the training step passes the batch statistics
to ``update_moving_statistics`` itself, once per step, where a reader can
see it. Evaluating in training mode (for instance on one example at a time,
to show why that fails) then changes nothing.
"""
import tensorflow as tf


class BatchNorm(tf.Module):
  """Batch normalization of (batch, num_features) inputs over the batch axis.

  Args:
    num_features: n, the size of the last axis.
    momentum: weight of the old value in the moving averages, in [0, 1).
    epsilon: added to the variance before the square root, > 0; it keeps
      the division finite when a feature is constant over the batch.
    dtype: of the four variables; tf.float64 for the tests' tight
      comparisons.
  """

  def __init__(self, num_features, momentum=0.99, epsilon=1e-3,
               dtype=tf.float32, name=None):
    super().__init__(name=name)
    if not 0.0 <= momentum < 1.0:
      raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    if not epsilon > 0.0:
      raise ValueError(f"epsilon must be positive, got {epsilon}")
    self.momentum = momentum
    self.epsilon = epsilon
    self.gamma = tf.Variable(tf.ones([num_features], dtype), name="gamma")
    self.beta = tf.Variable(tf.zeros([num_features], dtype), name="beta")
    self.moving_mean = tf.Variable(tf.zeros([num_features], dtype),
                                   trainable=False, name="moving_mean")
    self.moving_variance = tf.Variable(tf.ones([num_features], dtype),
                                       trainable=False, name="moving_variance")

  def __call__(self, x, training):
    """Normalises x; changes no variable.

    Args:
      x: float32 (batch, n).
      training: Python bool. True: normalise with the statistics of this
        batch (gradients flow through them). False: with the moving
        averages, so each example's output depends on that example alone.
    Returns:
      y: float32 (batch, n), the normalised, scaled and shifted x.
      (mean, variance): each (n,), the statistics y was computed with. In
        training mode, hand them to ``update_moving_statistics`` after the
        step.
    """
    if training:
      mean, variance = tf.nn.moments(x, axes=[0])
    else:
      mean, variance = self.moving_mean, self.moving_variance
    return self.normalize(x, mean, variance), (mean, variance)

  def normalize(self, x, mean, variance):
    """gamma * (x - mean) / sqrt(variance + epsilon) + beta."""
    return normalize(x, mean, variance, self.gamma, self.beta, self.epsilon)

  def update_moving_statistics(self, mean, variance):
    """Folds one batch's mean and variance (n,) into the moving averages."""
    self.moving_mean.assign(
        moving_average(self.moving_mean, mean, self.momentum))
    self.moving_variance.assign(
        moving_average(self.moving_variance, variance, self.momentum))


def normalize(x, mean, variance, gamma, beta, epsilon):
  """y = gamma * (x - mean) / sqrt(variance + epsilon) + beta, per feature.

  Args:
    x: (batch, n). mean, variance, gamma, beta: (n,). epsilon: > 0.
  """
  # gamma / sqrt(variance + epsilon) is one (n,) vector: computed once, it
  # scales every row. x - mean is kept as it is rather than rearranged into
  # x * scale + (beta - mean * scale) as tf.nn.batch_normalization does:
  # for a batch of one example it is exactly 0, so the output is exactly
  # beta, as the algebra says.
  scale = gamma * tf.math.rsqrt(variance + epsilon)
  return (x - mean) * scale + beta


def moving_average(moving, batch_statistic, momentum):
  """moving * momentum + batch_statistic * (1 - momentum): the new value of
  a moving average (momentum is the weight of the OLD value)."""
  return moving * momentum + batch_statistic * (1.0 - momentum)
