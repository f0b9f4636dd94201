"""The classifier again in tf.keras: the reference the hand-written one is
held to (tests/test_inversion.py).

``keras_classifier`` builds the same 784-100-100-10 sigmoid MLP as a
``keras.Sequential`` and copies the hand-written weights into it, so both
compute the same function; ``keras_train_step`` trains it with Keras' own
Adagrad on the same summed cross-entropy. The learned inverse has no Keras
counterpart (it reads the classifier's biases and undoes its sigmoids), so
the tests check it against finite differences instead.
"""
import keras
import tensorflow as tf


def keras_classifier(classifier):
  """A keras.Sequential computing ``classifier``'s logits, weights copied."""
  n_in, n_1, n_2, n_out = classifier.layer_sizes
  twin = keras.Sequential([
      keras.Input((n_in,)),
      keras.layers.Dense(n_1, activation="sigmoid"),
      keras.layers.Dense(n_2, activation="sigmoid"),
      keras.layers.Dense(n_out),
  ])
  # Classifier.weights is in get_weights() order: W1, b1, W2, b2, W3, b3.
  twin.set_weights([w.numpy() for w in classifier.weights])
  return twin


def keras_train_step(twin, learning_rate):
  """One compiled step of ``keras.optimizers.Adagrad`` on the summed
  cross-entropy: ``step(images, labels) -> loss`` before the update."""
  optimizer = keras.optimizers.Adagrad(learning_rate=learning_rate)

  @tf.function
  def step(images, labels):
    with tf.GradientTape() as tape:
      loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
          labels=labels, logits=twin(images)))
    variables = twin.trainable_variables
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return loss

  return step
