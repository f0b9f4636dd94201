"""The blog's two networks, written out from tf.Variables.

Both map flattened MNIST digits x (batch, 784) to logits (batch, 10) through
three hidden layers of 100 sigmoid units, h_0 = x, l = 1, 2, 3:

  plain:      z_l = h_{l-1} W_l + b_l            h_l = sigmoid(z_l)
  batchnorm:  z_l = h_{l-1} W_l   (no bias)      h_l = sigmoid(BN_l(z_l))
  both:       logits = h_3 W_4 + b_4

  W_1: (784, 100)   W_2, W_3: (100, 100)   W_4: (100, 10)   b_l: (100,) or (10,)

That is the 2016 original post's net. The revised post (online today) adds
an inference section with 784-100-100-10, two hidden layers: the same
classes built from three matrices (``initial_weights(seed,
REVISED_HIDDEN_SIZES)``); "three" and "h_3 W_4" then read "two" and "h_2 W_3".

The batchnorm net has no b_1..b_3: a bias added before BN would be subtracted
again with the batch mean, and BN's beta does its job (BN paper, section 3.2).

Both nets start from the same W_1..W_4, ONE draw of N(0, 1). That is a bad
start on purpose: with ~100 lit pixels per digit, z_1 has a standard deviation
near 10, so most sigmoids sit on their flat tails, where gradients vanish. BN
rescales each z_l to mean beta and standard deviation gamma over the batch,
whatever the weights are; that is the effect the experiment shows.

The loss is the blog's: cross-entropy SUMMED over the batch (not averaged),
minimised with plain SGD (``train.sgd_step``).
"""
from typing import NamedTuple

import tensorflow as tf

from batchnorm_manual.batchnorm import BatchNorm
from tfscratch import nn

HIDDEN_SIZES = (100, 100, 100)
LAYER_SIZES = (nn.NUM_PIXELS, *HIDDEN_SIZES, nn.NUM_CLASSES)


# The revised post's inference section trains 784-100-100-10 instead.
REVISED_HIDDEN_SIZES = (100, 100)


def initial_weights(seed, hidden_sizes=HIDDEN_SIZES):
  """W_1..W_4, each drawn from N(0, 1): the draw both nets start from.

  Args:
    seed: an int; weight matrix i uses the stateless seed (seed, i), so the
      draw does not depend on what else consumed random numbers.
    hidden_sizes: the hidden layers' widths; the 2016 original's three of
      100 by default, ``REVISED_HIDDEN_SIZES`` for the revised post's net
      (then W_1..W_3, the last (100, 10)). The nets take their depth from
      the number of matrices.
  Returns:
    A list of float32 tensors with the shapes of the module docstring.
  """
  sizes = (nn.NUM_PIXELS, *hidden_sizes, nn.NUM_CLASSES)
  return [tf.random.stateless_normal((n_in, n_out), seed=(seed, i))
          for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]))]


class Forward(NamedTuple):
  """What one forward pass computed.

  logits: (batch, 10).
  sigmoid_inputs: one (batch, 100) tensor per hidden layer, what its
    sigmoids got: z_l for the plain net, BN_l(z_l) for the batchnorm net.
  batch_moments: batchnorm net in training mode: one (mean, variance) pair
    per BN layer, for ``update_moving_statistics``. Otherwise ().
  """
  logits: tf.Tensor
  sigmoid_inputs: tuple
  batch_moments: tuple


class PlainNet(tf.Module):
  """784-100-100-100-10 with sigmoid hidden units and biases.

  Args:
    weights: W_1..W_4 as from ``initial_weights``; the biases start at 0.
    dtype: of every variable; tf.float64 for the tests' tight comparisons.
  """

  def __init__(self, weights, dtype=tf.float32, name=None):
    super().__init__(name=name)
    self.hidden = [nn.Dense(W, tf.zeros([W.shape[1]]), dtype=dtype,
                            name=f"hidden{i + 1}")
                   for i, W in enumerate(weights[:-1])]
    self.readout = nn.Dense(weights[-1], tf.zeros([nn.NUM_CLASSES]),
                            dtype=dtype, name="readout")

  @property
  def weights(self):
    """[W_1, b_1, W_2, b_2, W_3, b_3, W_4, b_4]: the trainable variables, in
    the order of a keras.Sequential of the same layers."""
    return [v for layer in (*self.hidden, self.readout)
            for v in (layer.W, layer.b)]

  def forward(self, images, training=False):
    """Runs the net on images (batch, 784); returns a ``Forward``.

    ``training`` changes nothing here; it is accepted so both nets share the
    training and evaluation code.
    """
    del training
    h, sigmoid_inputs = images, []
    for layer in self.hidden:
      z = layer(h)
      sigmoid_inputs.append(z)
      h = tf.sigmoid(z)
    return Forward(self.readout(h), tuple(sigmoid_inputs), ())

  def __call__(self, images, training=False):
    """The logits (batch, 10) for images (batch, 784)."""
    return self.forward(images, training).logits

  def update_moving_statistics(self, batch_moments):
    """Nothing to update: the plain net has no moving statistics."""
    del batch_moments


class BatchNormNet(tf.Module):
  """784-100-100-100-10 with batch normalization before every sigmoid.

  Args:
    weights: W_1..W_4 as from ``initial_weights``; b_4 starts at 0, and each
      BN layer at gamma = 1, beta = 0.
    momentum, epsilon: of every ``BatchNorm`` layer.
    dtype: of every variable; tf.float64 for the tests' tight comparisons.
  """

  def __init__(self, weights, momentum=0.99, epsilon=1e-3, dtype=tf.float32,
               name=None):
    super().__init__(name=name)
    self.hidden = [nn.Dense(W, None, dtype=dtype, name=f"hidden{i + 1}")
                   for i, W in enumerate(weights[:-1])]
    self.norms = [BatchNorm(W.shape[1], momentum, epsilon, dtype=dtype,
                            name=f"bn{i + 1}")
                  for i, W in enumerate(weights[:-1])]
    self.readout = nn.Dense(weights[-1], tf.zeros([nn.NUM_CLASSES]),
                            dtype=dtype, name="readout")

  @property
  def weights(self):
    """[W_1, gamma_1, beta_1, ..., W_3, gamma_3, beta_3, W_4, b_4]: the
    trainable variables, in the order of a keras.Sequential of Dense(no
    bias), BatchNormalization, ... Dense."""
    variables = []
    for layer, norm in zip(self.hidden, self.norms):
      variables += [layer.W, norm.gamma, norm.beta]
    return variables + [self.readout.W, self.readout.b]

  def forward(self, images, training):
    """Runs the net on images (batch, 784); returns a ``Forward``.

    Args:
      training: True normalises with each batch's statistics (and returns
        them in ``batch_moments``); False with the moving averages.
    """
    h, sigmoid_inputs, batch_moments = images, [], []
    for layer, norm in zip(self.hidden, self.norms):
      y, moments = norm(layer(h), training)
      sigmoid_inputs.append(y)
      batch_moments.append(moments)
      h = tf.sigmoid(y)
    return Forward(self.readout(h), tuple(sigmoid_inputs),
                   tuple(batch_moments) if training else ())

  def __call__(self, images, training):
    """The logits (batch, 10) for images (batch, 784)."""
    return self.forward(images, training).logits

  def update_moving_statistics(self, batch_moments):
    """Folds each BN layer's batch (mean, variance) into its moving averages."""
    for norm, (mean, variance) in zip(self.norms, batch_moments):
      norm.update_moving_statistics(mean, variance)


def predict_one_at_a_time(model, images, training):
  """Classifies each image on its own, as a batch of ONE example.

  With ``training=True`` the batchnorm net normalises each example with the
  statistics of its one-example batch: x - mean = 0 in every BN layer, so
  every image gets the same logits (those of h_l = sigmoid(beta_l)) and the
  same class. With ``training=False`` it uses the moving averages and the
  prediction is the one it makes inside any batch.

  ``tf.vectorized_map`` writes the per-example computation as batched ops
  (it does not fall back to a slow loop), so this is the model run with a
  batch size of 1, 10,000 times, at the cost of one batched pass. Call it
  inside a ``tf.function`` built once (``train.build`` does): outside one,
  ``vectorized_map`` would build and trace a new graph on every call.

  Args:
    images: float32 (n, 784).
  Returns:
    int64 (n,): the predicted digit of each image.
  """

  def predict_one(image):
    batch_of_one = image[tf.newaxis]  # (1, 784)
    return tf.argmax(model(batch_of_one, training=training)[0])

  return tf.vectorized_map(predict_one, images, fallback_to_while_loop=False)
