"""The same two networks in tf.keras, built from our nets' weights.

  PlainNet     = Sequential([Dense(100), sigmoid] x 3, Dense(10))
  BatchNormNet = Sequential([Dense(100, use_bias=False),
                             BatchNormalization(momentum, epsilon),
                             sigmoid] x 3, Dense(10))

The Keras layers hold copies of our values, in the same order as our nets'
``weights`` (W_1, b_1, ... for the plain net; W_1, gamma_1, beta_1, ... for
the batchnorm net), so a test can train both side by side and compare every
number, and a benchmark can time both on the same batches. Nothing in the
experiment itself uses this file: it is the yardstick, not the lesson.
"""
import keras
import tensorflow as tf

from batchnorm_manual.model import BatchNormNet
from tfscratch import nn


def keras_twin(net):
  """The keras.Sequential of ``net`` (a PlainNet or a BatchNormNet), holding
  copies of its current weights, BN parameters and moving statistics."""
  batchnorm = isinstance(net, BatchNormNet)
  layers = [keras.Input((nn.NUM_PIXELS,))]
  for i, dense in enumerate(net.hidden):
    layers.append(keras.layers.Dense(dense.W.shape[1], use_bias=not batchnorm))
    if batchnorm:
      norm = net.norms[i]
      layers.append(keras.layers.BatchNormalization(momentum=norm.momentum,
                                                    epsilon=norm.epsilon))
    layers.append(keras.layers.Activation("sigmoid"))
  layers.append(keras.layers.Dense(net.readout.W.shape[1]))
  model = keras.Sequential(layers)
  for theirs, ours in zip(dense_layers(model), [*net.hidden, net.readout]):
    theirs.kernel.assign(ours.W)
    if ours.b is not None:
      theirs.bias.assign(ours.b)
  if batchnorm:
    for theirs, ours in zip(batchnorm_layers(model), net.norms):
      for name in ("gamma", "beta", "moving_mean", "moving_variance"):
        getattr(theirs, name).assign(getattr(ours, name))
  return model


def dense_layers(model):
  return [layer for layer in model.layers
          if isinstance(layer, keras.layers.Dense)]


def batchnorm_layers(model):
  return [layer for layer in model.layers
          if isinstance(layer, keras.layers.BatchNormalization)]


def keras_sgd_step(model, learning_rate):
  """The Keras counterpart of ``train.sgd_step``: one SGD step on the summed
  cross-entropy, with ``keras.optimizers.SGD``; the BatchNormalization layers
  update their moving averages as a side effect of the training-mode call.

  Returns:
    step(images (batch, 784), labels (batch,) int64) -> the loss before the
    step. Plain Python: wrap it in a ``tf.function`` (or
    ``tfscratch.loop.compile_walk``) to run it compiled.
  """
  optimizer = keras.optimizers.SGD(learning_rate)
  optimizer.build(model.trainable_weights)

  def step(images, labels):
    with tf.GradientTape() as tape:
      loss = nn.summed_cross_entropy(model(images, training=True), labels)
    gradients = tape.gradient(loss, model.trainable_weights)
    optimizer.apply_gradients(zip(gradients, model.trainable_weights))
    return loss

  return step
