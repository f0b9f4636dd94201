"""Small building blocks the experiments share.

  truncated_normal:      N(0, s^2) redrawn beyond 2s (the blogs' initialiser)
  glorot_uniform:        U(-a, a), a = sqrt(6 / (fan_in + fan_out))
  Dense:                 y = activation(x W + b)   x: (batch, n_in), W: (n_in, n_out)
  summed_cross_entropy:  sum over the batch of -log softmax(logits)[label]
  accuracy:              fraction of argmax(logits) == label
  ordered_batch:         batch i of a dataset walked in order, wrapping round

Both initialisers take a stateless seed (a pair of ints): the same seed gives
the same weights whatever else has drawn random numbers before.
"""
import numpy as np
import tensorflow as tf

# MNIST's shapes, used by every MNIST experiment.
IMAGE_SIZE = 28                      # pixels per side
NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE  # 784: an image flattened row by row
NUM_CLASSES = 10                     # the digits 0..9


def glorot_uniform(shape, seed):
  """U(-a, a) with a = sqrt(6 / (fan_in + fan_out)) for a (fan_in, fan_out)
  matrix: TF1's ``get_variable`` default and Keras' ``GlorotUniform``."""
  limit = (6.0 / (shape[0] + shape[1])) ** 0.5
  return tf.random.stateless_uniform(shape, seed=seed, minval=-limit,
                                     maxval=limit)


def truncated_normal(shape, stddev, seed):
  """N(0, stddev^2) redrawn beyond 2 stddev (TF1's truncated_normal).

  Args:
    seed: a pair of ints (stateless RNG), so the same seed gives the same
      weights whatever else has drawn random numbers before.
  """
  return tf.random.stateless_truncated_normal(shape, seed=seed, stddev=stddev)


class Dense(tf.Module):
  """A fully connected layer y = activation(x W + b), from given initial values.

  Args:
    weights: initial W, shape (n_in, n_out).
    bias: initial b, shape (n_out,), or None for a layer without bias.
    activation: a function applied elementwise, or None for the identity.
    dtype: of W and b; tf.float64 for the tests' tight comparisons.
  """

  def __init__(self, weights, bias=None, activation=None, dtype=tf.float32,
               name=None):
    super().__init__(name=name)
    self.W = tf.Variable(tf.cast(weights, dtype), name="W")
    self.b = None if bias is None else tf.Variable(tf.cast(bias, dtype),
                                                   name="b")
    self.activation = activation

  def __call__(self, x):
    y = x @ self.W
    if self.b is not None:
      y = y + self.b
    return y if self.activation is None else self.activation(y)


def summed_cross_entropy(logits, labels):
  """Sum over the batch of -log softmax(logits)[label] (the blogs' loss).

  Args:
    logits: (batch, classes); labels: int (batch,).
  """
  return tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=labels, logits=logits))


def accuracy(logits, labels):
  """Fraction of rows whose largest logit is at the label."""
  predictions = tf.argmax(logits, axis=-1, output_type=tf.int64)
  return tf.reduce_mean(tf.cast(
      tf.equal(predictions, tf.cast(labels, tf.int64)), tf.float32))


def ordered_batch(images, labels, batch_size, step):
  """Batch number ``step`` of the data walked in order, wrapping at the end.

  Step i takes examples i*batch_size .. (i+1)*batch_size - 1, modulo the
  dataset size, as the blogs' ``mnist.train.next_batch`` did without
  shuffling.
  """
  count = len(images)
  indices = (step * batch_size + np.arange(batch_size)) % count
  return images[indices], labels[indices]
