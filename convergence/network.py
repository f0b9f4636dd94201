"""Lesson 1: the blog's network, one of it.

A 784-100-100-100 tanh network with a softmax head on EVERY hidden layer.
For a batch x of B flattened images:

  h_1 = tanh(x W_1 + b_1)          x: (B, 784)    W_1: (784, 100)
  h_2 = tanh(h_1 W_2 + b_2)        W_2, W_3: (100, 100)
  h_3 = tanh(h_2 W_3 + b_3)        b_l: (100,)
  logits_k = h_k V_k + c_k         V_k: (100, 10), c_k: (10,), k = 1, 2, 3
  loss_k = sum over the batch of -log softmax(logits_k)[label]

Why three heads: the experiment trains "on head k", i.e. minimises loss_k,
which moves layers 1..k and head k and nothing else (``phase_variables``).
Pre-training layer 1 is training on head 1; training the whole network is
training on head 3.

Weights start truncated normal (stddev 0.1, redrawn beyond 2 stddev) and
every bias at 0.1, as in the blog. ``stacked.py`` trains hundreds of these
at once and is proved, in the tests, to train each exactly like this one.
"""
import tensorflow as tf

from tfscratch.nn import NUM_CLASSES
from tfscratch.nn import NUM_PIXELS
from tfscratch.nn import summed_cross_entropy
from tfscratch.nn import truncated_normal

HIDDEN_SIZE = 100
NUM_LAYERS = 3
WEIGHT_STDDEV = 0.1
BIAS_INIT = 0.1
# The randomly drawn matrices, in the order their seeds are derived.
WEIGHT_NAMES = ("W1", "W2", "W3", "V1", "V2", "V3")


def weight_shapes():
  """name -> shape of every variable: W1..W3, b1..b3, V1..V3, c1..c3."""
  sizes = [NUM_PIXELS] + [HIDDEN_SIZE] * NUM_LAYERS
  shapes = {}
  for layer in range(1, NUM_LAYERS + 1):
    shapes[f"W{layer}"] = (sizes[layer - 1], HIDDEN_SIZE)
    shapes[f"b{layer}"] = (HIDDEN_SIZE,)
    shapes[f"V{layer}"] = (HIDDEN_SIZE, NUM_CLASSES)
    shapes[f"c{layer}"] = (NUM_CLASSES,)
  return shapes


def initial_weights(key):
  """The blog's initial weights (tensors), from a stateless seed ``key``.

  Matrix number i of WEIGHT_NAMES is drawn with the seed fold_in(key, i):
  each matrix has a seed of its own, so none depends on what was drawn
  before it (``int32`` i: fold_in's result depends on the dtype folded in).
  """
  shapes = weight_shapes()
  weights = {name: tf.fill(shape, tf.constant(BIAS_INIT, tf.float32))
             for name, shape in shapes.items()}
  for index, name in enumerate(WEIGHT_NAMES):
    weights[name] = truncated_normal(
        shapes[name], WEIGHT_STDDEV,
        tf.random.experimental.stateless_fold_in(key, index))
  return weights


class Network(tf.Module):
  """The blog's network, built from a dict of initial ``weights``.

  ``dtype``: of every variable; tf.float64 for the tests' tight comparisons.
  """

  def __init__(self, weights, dtype=tf.float32, name=None):
    super().__init__(name=name)
    self.W, self.b, self.V, self.c = (
        [tf.Variable(tf.cast(weights[f"{kind}{layer}"], dtype),
                     name=f"{kind}{layer}")
         for layer in range(1, NUM_LAYERS + 1)]
        for kind in ("W", "b", "V", "c"))

  def __call__(self, x, head):
    """Head ``head``'s logits (B, 10) for images x (B, 784)."""
    h = x
    for layer in range(head):
      h = tf.tanh(h @ self.W[layer] + self.b[layer])
    return h @ self.V[head - 1] + self.c[head - 1]

  def loss(self, x, labels, head):
    """loss_head: the cross-entropy summed over the batch (as the blog's)."""
    return summed_cross_entropy(self(x, head), labels)

  def phase_variables(self, head):
    """What training on head ``head`` moves: layers 1..head and that head."""
    variables = []
    for layer in range(head):
      variables += [self.W[layer], self.b[layer]]
    return variables + [self.V[head - 1], self.c[head - 1]]

  def weights(self):
    """The current weights as NumPy arrays, keyed like ``weight_shapes``."""
    return {f"{kind}{layer + 1}": variables[layer].numpy()
            for kind, variables in zip("WbVc", (self.W, self.b, self.V, self.c))
            for layer in range(NUM_LAYERS)}


def train_step(network, optimizer, x, labels, head):
  """One gradient step on head ``head``; returns the loss before it.

  ``optimizer`` (tfscratch.optimizers) was built for
  ``network.phase_variables(head)``: the other weights stay where they are.
  """
  variables = network.phase_variables(head)
  with tf.GradientTape() as tape:
    loss = network.loss(x, labels, head)
  optimizer.apply(tape.gradient(loss, variables))
  return loss
