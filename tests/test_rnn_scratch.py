"""rnn_scratch: the data, the analytic losses, and the hand-unrolled RNN
against keras.layers.SimpleRNN."""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import json
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from rnn_scratch import data
from rnn_scratch.keras_model import KerasEchoRNN
from rnn_scratch.model import EchoRNN, cross_entropy, make_train_step
from tfscratch import optimizers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _copy_weights(source, target):
  for from_variable, to_variable in zip(source.weights, target.weights):
    to_variable.assign(from_variable)


def _random_window(batch, steps, seed):
  rng = np.random.default_rng(seed)
  return (tf.constant(rng.integers(0, 2, (batch, steps)), tf.int32),
          tf.constant(rng.integers(0, 2, (batch, steps)), tf.int32),
          tf.constant(rng.normal(scale=0.5, size=(batch, 6)), tf.float32))


class EchoDataTest(tf.test.TestCase):

  def test_analytic_losses(self):
    """The three yardsticks, and H(0.625) as the no-dependency one."""
    expected = data.expected_losses()
    self.assertAllClose(expected["no_dependency"],
                        -(0.625 * np.log(0.625) + 0.375 * np.log(0.375)))
    self.assertAllClose(
        [expected["no_dependency"], expected["first_dependency"],
         expected["both_dependencies"]], [0.6616, 0.5192, 0.4545], atol=1e-4)

  def test_analytic_losses_match_monte_carlo(self):
    """On a generated series, the loss of each informed predictor (predicting
    the mean of P(Y=1) given what it knows) matches its analytic value."""
    x, y = data.generate_series(400_000, np.random.default_rng(0))
    p = data.probability_of_one(x)[8:]
    x3, x8, y = x[5:-3], x[:-8], y[8:]
    predictions = {
        "no_dependency": np.full_like(p, p.mean()),
        "first_dependency": np.where(x3 == 1, p[x3 == 1].mean(),
                                     p[x3 == 0].mean()),
        "both_dependencies": p,
    }
    for name, q in predictions.items():
      with np.errstate(divide="ignore"):  # log 0 only where unused (p = 1)
        measured = np.mean(np.where(y == 1, -np.log(q), -np.log(1 - q)))
      # 400k Bernoulli draws: standard error of the mean loss < 0.001.
      self.assertAllClose(measured, data.expected_losses()[name], atol=4e-3,
                          msg=name)

  def test_series_statistics(self):
    x, y = data.generate_series(200_000, np.random.default_rng(1))
    self.assertAllClose(x.mean(), 0.5, atol=0.005)
    self.assertAllClose(y[8:][x[5:-3] == 1].mean(), 0.875, atol=0.01)
    self.assertAllClose(y[8:][(x[5:-3] == 0) & (x[:-8] == 1)].mean(), 0.25,
                        atol=0.01)

  def test_windows_continue_each_row(self):
    x = np.arange(40)
    batches = list(data.windows(x, x, batch_size=2, num_steps=4))
    self.assertLen(batches, data.windows_per_epoch(40, 2, 4))
    self.assertAllEqual(batches[0][0], [[0, 1, 2, 3], [20, 21, 22, 23]])
    self.assertAllEqual(batches[1][0], [[4, 5, 6, 7], [24, 25, 26, 27]])
    rows = np.concatenate([window for window, _ in batches], axis=1)
    self.assertAllEqual(rows, x.reshape(2, 20))


class EchoRNNEquivalenceTest(tf.test.TestCase):
  """Same weights in, same numbers out: ours vs keras.layers.SimpleRNN."""

  def setUp(self):
    super().setUp()
    self.ours = EchoRNN(state_size=6, seed=3)
    self.keras = KerasEchoRNN(state_size=6, seed=9)
    _copy_weights(self.ours, self.keras)

  def test_outputs_and_final_state(self):
    inputs, _, state = _random_window(batch=5, steps=7, seed=0)
    logits, final = self.ours(inputs, state)
    keras_logits, keras_final = self.keras(inputs, state)
    self.assertEqual(logits.shape, (5, 7, 2))
    self.assertAllClose(logits, keras_logits, rtol=1e-6, atol=1e-6)
    self.assertAllClose(final, keras_final, rtol=1e-6, atol=1e-6)

  def test_gradients_of_every_weight(self):
    inputs, labels, state = _random_window(batch=5, steps=7, seed=1)
    gradients = []
    for model in (self.ours, self.keras):
      with tf.GradientTape() as tape:
        loss = cross_entropy(model(inputs, state)[0], labels)
      gradients.append(tape.gradient(loss, model.weights))
    for name, mine, reference in zip("WUbVc", *gradients):
      self.assertGreater(np.abs(reference).max(), 1e-4, msg=name)
      self.assertAllClose(mine, reference, rtol=1e-5, atol=1e-6, msg=name)

  def test_training_steps_match(self):
    """Five Adagrad windows with carried state: same losses, same weights."""
    train_steps = [
        make_train_step(model, optimizers.Adagrad(model.weights, 0.1), 5, 7)
        for model in (self.ours, self.keras)]
    states = [self.ours.initial_state(5)] * 2
    for window in range(5):
      inputs, labels, _ = _random_window(batch=5, steps=7, seed=10 + window)
      results = [step(inputs, labels, s) for step, s in zip(train_steps,
                                                            states)]
      self.assertAllClose(results[0][0], results[1][0], rtol=1e-5)
      states = [final for _, final in results]
    for mine, reference in zip(self.ours.weights, self.keras.weights):
      self.assertAllClose(mine, reference, rtol=1e-5, atol=1e-6)


class TruncatedBackpropTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.model = EchoRNN(state_size=6, seed=0)
    self.inputs, self.labels, self.state = _random_window(4, 10, seed=2)

  def test_carried_state_equals_one_long_run(self):
    """Two 5-step windows, the state carried over, equal one 10-step run."""
    first_logits, carried = self.model(self.inputs[:, :5], self.state)
    second_logits, final = self.model(self.inputs[:, 5:], carried)
    whole_logits, whole_final = self.model(self.inputs, self.state)
    self.assertAllClose(tf.concat([first_logits, second_logits], 1),
                        whole_logits, rtol=1e-6, atol=1e-6)
    self.assertAllClose(final, whole_final, rtol=1e-6, atol=1e-6)

  def test_gradients_stop_at_the_window_boundary(self):
    """The train step's gradient for window 2 is the gradient with window 1's
    state held constant, and differs from backprop through both windows."""
    _, carried = self.model(self.inputs[:, :5], self.state)
    with tf.GradientTape() as tape:
      logits, _ = self.model(self.inputs[:, 5:], carried)
      loss = cross_entropy(logits, self.labels[:, 5:])
    truncated = tape.gradient(loss, self.model.weights)

    with tf.GradientTape() as tape:
      _, carried_inside = self.model(self.inputs[:, :5], self.state)
      logits, _ = self.model(self.inputs[:, 5:], carried_inside)
      loss = cross_entropy(logits, self.labels[:, 5:])
    full = tape.gradient(loss, self.model.weights)

    # With SGD at learning rate 1 the step moves each weight by its gradient.
    before = [w.numpy() for w in self.model.weights]
    train_step = make_train_step(
        self.model, optimizers.SGD(self.model.weights, learning_rate=1.0), 4, 5)
    train_step(self.inputs[:, 5:], self.labels[:, 5:], carried)
    for name, old, weight, expected in zip("WUbVc", before, self.model.weights,
                                           truncated):
      self.assertAllClose(old - weight.numpy(), expected, rtol=1e-5,
                          atol=1e-6, msg=name)
    # U and W feed the carried state, so full BPTT must see more of them.
    self.assertGreater(np.abs(full[1] - truncated[1]).max(), 1e-5)

  def test_train_step_traces_once(self):
    optimizer = optimizers.Adagrad(self.model.weights, 0.1)
    train_step = make_train_step(self.model, optimizer, 4, 10)
    state = self.model.initial_state(4)
    for _ in range(5):
      _, state = train_step(self.inputs, self.labels, state)
    self.assertEqual(train_step.experimental_get_tracing_count(), 1)


def _run_main(*flags, output_dir):
  return subprocess.run(
      [sys.executable, "-m", "rnn_scratch", f"--output_dir={output_dir}",
       *flags], cwd=REPO, capture_output=True, text=True, timeout=300)


class CommandLineTest(tf.test.TestCase):

  def test_short_training_run_learns_the_first_dependency(self):
    """200 windows of the blog's 5-step model end well below the
    no-dependency loss; results.json and the figure are written."""
    output_dir = os.path.join(self.get_temp_dir(), "run")
    result = _run_main("--series_length=200000", "--log_every=50",
                       output_dir=output_dir)
    self.assertEqual(result.returncode, 0, result.stderr)
    with open(os.path.join(output_dir, "results.json")) as f:
      results = json.load(f)
    expected = results["expected_loss"]
    self.assertEqual(set(expected), {"no_dependency", "first_dependency",
                                     "both_dependencies"})
    self.assertLess(results["final_loss"], expected["no_dependency"] - 0.08)
    self.assertEqual(results["trace_count"], 1)
    self.assertEqual(results["seed"], 0)
    with open(os.path.join(output_dir, "loss.png"), "rb") as f:
      self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
    self.assertIn("ETA", result.stdout)
    self.assertNotIn("cuda", result.stderr.lower())

  def test_same_seed_same_numbers_and_keras_impl_agrees(self):
    runs = {}
    for name, impl in (("a", "scratch"), ("b", "scratch"), ("k", "keras")):
      output_dir = os.path.join(self.get_temp_dir(), f"seed_{name}")
      result = _run_main("--series_length=20000", f"--impl={impl}",
                         output_dir=output_dir)
      self.assertEqual(result.returncode, 0, result.stderr)
      with open(os.path.join(output_dir, "results.json")) as f:
        runs[name] = json.load(f)["losses"]
    self.assertEqual(runs["a"], runs["b"])
    # Different initial draws (Keras' initializers), same model: the Keras
    # run must learn to the same level, not reproduce our numbers.
    self.assertLess(abs(np.mean(runs["k"][-20:]) - np.mean(runs["a"][-20:])),
                    0.05)

  def test_invalid_flag_is_one_line_error(self):
    result = _run_main("--num_steps=0", output_dir=self.get_temp_dir())
    self.assertNotEqual(result.returncode, 0)
    self.assertIn("num_steps", result.stderr)
    self.assertNotIn("Traceback", result.stderr)

  def test_nan_loss_stops_with_step_number(self):
    output_dir = os.path.join(self.get_temp_dir(), "nan")
    result = _run_main("--optimizer=sgd", "--learning_rate=1e38",
                       "--series_length=20000", output_dir=output_dir)
    self.assertEqual(result.returncode, 1)
    self.assertRegex(result.stderr, r"error: loss became (nan|inf) at step \d+")
    self.assertNotIn("Traceback", result.stderr)
    self.assertFalse(os.path.exists(output_dir))

  def test_existing_output_dir_is_kept(self):
    output_dir = os.path.join(self.get_temp_dir(), "kept")
    os.makedirs(output_dir)
    with open(os.path.join(output_dir, "results.json"), "w") as f:
      f.write("{}")
    result = _run_main("--series_length=20000", output_dir=output_dir)
    self.assertEqual(result.returncode, 1)
    self.assertIn("--overwrite", result.stderr)
    with open(os.path.join(output_dir, "results.json")) as f:
      self.assertEqual(f.read(), "{}")


if __name__ == "__main__":
  tf.test.main()
