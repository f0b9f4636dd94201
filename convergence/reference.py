"""The blog's network in tf.keras: the reference ``network.py`` and
``stacked.py`` are checked against (tests) and timed against (benchmark).

``Dense(100, tanh)`` three times and a ``Dense(10)`` head (logits) on each
hidden layer; kernel = W (784 or 100, 100), bias = b, as in network.py.
"""
import keras
import tensorflow as tf

from convergence.network import HIDDEN_SIZE
from convergence.network import NUM_LAYERS
from tfscratch.nn import NUM_CLASSES
from tfscratch.nn import NUM_PIXELS

KERAS_OPTIMIZERS = {"sgd": keras.optimizers.SGD,
                    "adagrad": keras.optimizers.Adagrad,
                    "adam": keras.optimizers.Adam}


class KerasNetwork:
  """The blog's network as a Keras functional model with three outputs.

  Args:
    weights: one network's weights, keyed like ``network.weight_shapes()``.
  """

  def __init__(self, weights):
    inputs = keras.Input((NUM_PIXELS,))
    self.layers = [keras.layers.Dense(HIDDEN_SIZE, activation="tanh")
                   for _ in range(NUM_LAYERS)]
    self.heads = [keras.layers.Dense(NUM_CLASSES) for _ in range(NUM_LAYERS)]
    h, outputs = inputs, []
    for layer, head in zip(self.layers, self.heads):
      h = layer(h)
      outputs.append(head(h))
    self.model = keras.Model(inputs, outputs)
    for index in range(NUM_LAYERS):
      self.layers[index].set_weights([weights[f"W{index + 1}"],
                                      weights[f"b{index + 1}"]])
      self.heads[index].set_weights([weights[f"V{index + 1}"],
                                     weights[f"c{index + 1}"]])
    self.loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                           reduction="sum")

  def phase_variables(self, head):
    """Layers 1..head and head ``head``, in network.phase_variables' order."""
    variables = []
    for layer in self.layers[:head]:
      variables += [layer.kernel, layer.bias]
    return variables + [self.heads[head - 1].kernel,
                        self.heads[head - 1].bias]

  def weights(self):
    """The current weights, keyed like ``network.weight_shapes()``."""
    weights = {}
    for index in range(NUM_LAYERS):
      weights[f"W{index + 1}"], weights[f"b{index + 1}"] = (
          self.layers[index].get_weights())
      weights[f"V{index + 1}"], weights[f"c{index + 1}"] = (
          self.heads[index].get_weights())
    return weights

  def summed_loss(self, images, labels, head):
    """Summed cross-entropy of head ``head`` on a batch of full images."""
    return self.loss(labels, self.model(images)[head - 1])

  def train_step(self, optimizer, images, labels, head):
    """One step of ``optimizer`` (a keras.optimizers instance) on head
    ``head``; returns (loss, gradients) before the step."""
    variables = self.phase_variables(head)
    with tf.GradientTape() as tape:
      loss = self.summed_loss(images, labels, head)
    gradients = tape.gradient(loss, variables)
    optimizer.apply_gradients(zip(gradients, variables))
    return loss, gradients
