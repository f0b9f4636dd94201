"""rnn_scratch through the harness (tests/equivalence.py), in float64: the
hand-unrolled RNN against keras.layers.SimpleRNN + Dense (reference.py).

``check_unroll`` takes the implementation as an argument: the tests pass
rnn_scratch.model, ``make exercise NAME=rnn`` the learner's exercises/rnn.py.
"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import keras
import numpy as np
import tensorflow as tf

from rnn_scratch import model
from rnn_scratch import reference
from rnn_scratch import train
from tests import equivalence
from tfscratch import optimizers

STATE_SIZE, BATCH, STEPS_PER_WINDOW = 4, 5, 6
NAMES = ("W", "U", "b", "V", "c")


def _twin(ours):
  """reference.KerasEchoRNN in float64, holding copies of ``ours``'s weights."""
  with equivalence.keras_floatx():
    twin = reference.KerasEchoRNN(STATE_SIZE)
  for theirs, mine in zip(twin.weights, ours.weights):
    theirs.assign(mine)
  return twin


def _window(seed):
  """int inputs and labels (batch, n), and a float64 state s_0 (batch, S)."""
  rng = np.random.default_rng(seed)
  shape = (BATCH, STEPS_PER_WINDOW)
  return (tf.constant(rng.integers(0, 2, shape), tf.int32),
          tf.constant(rng.integers(0, 2, shape), tf.int32),
          tf.constant(rng.normal(scale=0.5, size=(BATCH, STATE_SIZE))))


def check_unroll(impl):
  """One window of ``impl.unroll`` against SimpleRNN + Dense (float64,
  1e-10): logits and final state; gradients of the cross-entropy with respect
  to W, U, b, V, c, the one-hot inputs x and the initial state s_0."""
  ours = model.EchoRNN(STATE_SIZE, seed=3, dtype=tf.float64)
  # Non-zero biases, so a missing b or c shows.
  ours.b.assign(np.linspace(-0.5, 0.5, STATE_SIZE))
  ours.c.assign([0.3, -0.2])
  twin = _twin(ours)
  inputs, labels, state = _window(seed=0)
  x = tf.one_hot(inputs, model.NUM_CLASSES, dtype=tf.float64)

  def run_ours():
    return impl.unroll(x, state, *ours.weights)

  def run_twin():  # KerasEchoRNN.__call__ after its one_hot
    states, final = twin.rnn(x, initial_state=[state])
    return twin.readout(states), final

  (logits, final), (keras_logits, keras_final) = run_ours(), run_twin()
  equivalence.assert_forward({"logits": logits, "final state": final},
                             {"logits": keras_logits,
                              "final state": keras_final})
  equivalence.assert_gradients(
      lambda: model.cross_entropy(run_ours()[0], labels),
      {"x": x, "s_0": state, **dict(zip(NAMES, ours.weights))},
      lambda: model.cross_entropy(run_twin()[0], labels),
      {"x": x, "s_0": state, **dict(zip(NAMES, twin.weights))})


class EchoRNNTest(tf.test.TestCase):

  def test_unroll(self):
    """The exercise ``rnn`` on the package's own function."""
    check_unroll(model)

  def test_training_windows_match_keras(self):
    """K windows through train.make_train_windows (the carried state, the
    in-graph loop): EchoRNN with tfscratch's Adagrad against KerasEchoRNN
    with keras.optimizers.Adagrad behind reference.KerasOptimizer, at Keras'
    defaults and at another initial accumulator and epsilon. Same losses,
    weights and carried state after every window. (Run eagerly: the
    compiled loop is proved equal to it in test_rnn_scratch.py.)"""
    rng = np.random.default_rng(10)
    shape = (equivalence.STEPS, BATCH, STEPS_PER_WINDOW)
    inputs, labels = (tf.Variable(rng.integers(0, 2, shape), dtype=tf.int32)
                      for _ in range(2))
    start = rng.normal(scale=0.5, size=(BATCH, STATE_SIZE))
    for hyperparameters in equivalence.OPTIMIZER_CASES["adagrad"]:
      self._compare_windows(hyperparameters, inputs, labels, start)

  def _compare_windows(self, hyperparameters, inputs, labels, start):
    with equivalence.functions_run_eagerly():
      ours = model.EchoRNN(STATE_SIZE, seed=3, dtype=tf.float64)
      twin = _twin(ours)
      ours_state, twin_state = tf.Variable(start), tf.Variable(start)
      ours_windows = train.make_train_windows(
          ours, optimizers.Adagrad(ours.weights, **hyperparameters), inputs,
          labels, ours_state)
      twin_windows = train.make_train_windows(
          twin, reference.KerasOptimizer(
              keras.optimizers.Adagrad(**hyperparameters), twin.weights),
          inputs, labels, twin_state)
      equivalence.assert_optimizer_steps(
          lambda k: ours_windows(k, 1)[0], lambda k: twin_windows(k, 1)[0],
          {"s": ours_state, **dict(zip(NAMES, ours.weights))},
          {"s": twin_state, **dict(zip(NAMES, twin.weights))})

  def test_cross_entropy_equals_keras_loss(self):
    """Mean over batch and time, value and gradient w.r.t. the logits,
    against keras.losses.SparseCategoricalCrossentropy(from_logits=True)."""
    rng = np.random.default_rng(2)
    logits = tf.constant(rng.normal(size=(BATCH, STEPS_PER_WINDOW, 2)))
    labels = tf.constant(rng.integers(0, 2, (BATCH, STEPS_PER_WINDOW)))
    equivalence.assert_same_loss(
        model.cross_entropy, keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, dtype="float64"), logits, labels)


if __name__ == "__main__":
  tf.test.main()
