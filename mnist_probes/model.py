"""The blog's MLP and its auxiliary head, from raw tf.Variables.

For a batch of flattened images x (batch, 784):

  h_0 = x                                     the input is "layer 0"
  h_l = tanh(h_{l-1} W_l + b_l),  l = 1, 2, 3   h_l: (batch, 100)
  logits = h_3 W_4 + b_4                      logits: (batch, 10)
  loss = sum over the batch of -log softmax(logits)[label]

  W_1: (784, 100)  W_2, W_3: (100, 100)  W_4: (100, 10)  b_l: (n_out,)

Every W starts as N(0, 0.1^2) truncated at 2 standard deviations and every b
at 0.1, as in the blog's ``weight_variable`` / ``bias_variable``.

The failed idea: a linear head on h_1,

  z = h_1 A + c                               A: (100, 3)  c: (3,)
  aux_loss = sum over batch and the 3 outputs of |z - t|

where t holds the top principal components of a trained net's h_3 for the
same images. A fresh net (same initial weights) is trained on
loss + aux_weight * aux_loss, hoping to give layer 1 some of layer 3's
"better" representation early.
"""
import tensorflow as tf

from tfscratch.nn import Dense, truncated_normal

LAYER_SIZES = (784, 100, 100, 100, 10)
WEIGHT_STDDEV = 0.1
BIAS_INIT = 0.1


def _blog_dense(n_in, n_out, seed, activation, dtype):
  return Dense(truncated_normal((n_in, n_out), WEIGHT_STDDEV, seed),
               tf.fill([n_out], BIAS_INIT), activation, dtype)


class MLP(tf.Module):
  """tanh hidden layers and a linear readout; ``__call__`` returns all layers.

  Args:
    layer_sizes: (inputs, hidden..., classes); the blog's by default.
    seed: the initial weights depend on this alone (stateless draws), so two
      MLPs built with the same seed start from exactly the same weights.
    dtype: of every variable; tf.float64 for the tests' tight comparisons.
  """

  def __init__(self, layer_sizes=LAYER_SIZES, seed=0, dtype=tf.float32,
               name=None):
    super().__init__(name=name)
    self.layer_sizes = tuple(layer_sizes)
    pairs = list(zip(self.layer_sizes[:-1], self.layer_sizes[1:]))
    self.hidden = [_blog_dense(n_in, n_out, (seed, index), tf.tanh, dtype)
                   for index, (n_in, n_out) in enumerate(pairs[:-1])]
    self.readout = _blog_dense(*pairs[-1], (seed, len(pairs) - 1), None,
                               dtype)

  @property
  def weights(self):
    """[W_1, b_1, ..., W_4, b_4], the order of a Keras Sequential's weights."""
    return [v for layer in self.hidden + [self.readout]
            for v in (layer.W, layer.b)]

  def __call__(self, images):
    """Runs the network.

    Args:
      images: float32 (batch, 784).
    Returns:
      logits: (batch, 10); representations: [h_0, h_1, h_2, h_3], h_0 being
      the images themselves and h_l the tanh activations (batch, 100).
    """
    representations = [images]
    for layer in self.hidden:
      representations.append(layer(representations[-1]))
    return self.readout(representations[-1]), representations


class AuxiliaryHead(tf.Module):
  """z = h A + c: a linear regression from one hidden layer to ``outputs``
  targets, initialised like the blog's other weights."""

  def __init__(self, inputs=100, outputs=3, seed=0, dtype=tf.float32,
               name=None):
    super().__init__(name=name)
    # Its own stream (seed, 100) so the MLP's draws are those of the base net.
    self.layer = _blog_dense(inputs, outputs, (seed, 100), None, dtype)

  @property
  def weights(self):
    return [self.layer.W, self.layer.b]

  def __call__(self, hidden):
    return self.layer(hidden)


def l1_loss(predictions, targets):
  """Sum of |predictions - targets| over every element."""
  return tf.reduce_sum(tf.abs(predictions - targets))
