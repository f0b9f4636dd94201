"""The same computations in tf.keras, built from our weights: the yardstick.

  MLP                 = Sequential([Dense(100, tanh)] x 3, Dense(10))
  LogisticRegression  = Dense(K, softmax) in float64 (the multinomial probe)

Each Keras model holds copies of our current values, in the order of our
``weights`` (W_1, b_1, ..., W_4, b_4), so a test can run both on the same
inputs, or train both side by side with SGD, and compare every number.
Nothing in the experiment uses this file.
"""
import keras
import tensorflow as tf

from tfscratch.nn import summed_cross_entropy


def keras_twin(model):
  """keras.Sequential of Dense(tanh) x 3 + Dense(10) holding copies of
  ``model``'s (an ``MLP``'s) weights. ``twin.layers[l - 1]`` computes h_l
  from h_{l-1}."""
  sizes = model.layer_sizes
  twin = keras.Sequential(
      [keras.Input((sizes[0],))] +
      [keras.layers.Dense(n, activation="tanh") for n in sizes[1:-1]] +
      [keras.layers.Dense(sizes[-1])])
  for keras_variable, ours in zip(twin.weights, model.weights):
    keras_variable.assign(ours)
  return twin


def keras_sgd_step(twin, optimizer, images, labels):
  """One step of ``keras.optimizers.SGD`` on the blog's summed cross-entropy
  (the Keras counterpart of ``train.sgd_step``); returns the loss."""
  with tf.GradientTape() as tape:
    loss = summed_cross_entropy(twin(images), labels)
  optimizer.apply_gradients(zip(
      tape.gradient(loss, twin.trainable_variables),
      twin.trainable_variables))
  return loss


def keras_probe(probe):
  """A float64 keras Dense(K, softmax) holding a fitted multinomial
  ``LogisticRegression``'s W and b: the same p(k | x)."""
  num_features, num_classes = probe.W.shape
  dense = keras.layers.Dense(num_classes, activation="softmax",
                             dtype="float64")
  dense.build((None, num_features))
  dense.kernel.assign(probe.W)
  dense.bias.assign(probe.b)
  return dense
