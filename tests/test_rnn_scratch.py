"""rnn_scratch: the data, the analytic losses, truncated backprop, the
in-graph training loop, and the command line. (The hand-unrolled RNN against
keras.layers.SimpleRNN is in test_equivalence_rnn_scratch.py.)"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import json
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from rnn_scratch import data
from rnn_scratch import train
from rnn_scratch.model import EchoRNN, cross_entropy
from tests.cli_checks import assert_one_line_error
from tfscratch import optimizers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A short run: 20,000 steps in 200 rows of 20 = 20 windows of 5 steps.
TINY = "--series_length=20000"


def _random_window(batch, steps, seed):
  rng = np.random.default_rng(seed)
  return (tf.constant(rng.integers(0, 2, (batch, steps)), tf.int32),
          tf.constant(rng.integers(0, 2, (batch, steps)), tf.int32),
          tf.constant(rng.normal(scale=0.5, size=(batch, 6)), tf.float32))


def _graph_data(num_windows, batch, steps, seed, state):
  """The variables make_train_windows reads: random windows and a state."""
  rng = np.random.default_rng(seed)
  shape = (num_windows, batch, steps)
  return (tf.Variable(rng.integers(0, 2, shape), dtype=tf.int32),
          tf.Variable(rng.integers(0, 2, shape), dtype=tf.int32),
          tf.Variable(state))


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
    x3, y = x[5:-3], y[8:]
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
    x = np.arange(42)  # 2 rows of 21: the last step of each row is dropped
    x_windows, y_windows = data.windows(x, x, batch_size=2, bptt_steps=4)
    self.assertEqual(x_windows.shape, (data.windows_per_epoch(42, 2, 4), 2, 4))
    self.assertEqual(x_windows.dtype, np.int32)
    self.assertAllEqual(x_windows[0], [[0, 1, 2, 3], [21, 22, 23, 24]])
    self.assertAllEqual(x_windows[1], [[4, 5, 6, 7], [25, 26, 27, 28]])
    rows = np.concatenate(list(x_windows), axis=1)
    self.assertAllEqual(rows, x[:42].reshape(2, 21)[:, :20])
    self.assertAllEqual(x_windows, y_windows)


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
    """The loop's update for window 2 is the gradient with window 1's final
    state held constant, and differs from backprop through both windows;
    the state it leaves behind is window 2's final state."""
    _, carried = self.model(self.inputs[:, :5], self.state)
    with tf.GradientTape() as tape:
      logits, second_final = self.model(self.inputs[:, 5:], carried)
      loss = cross_entropy(logits, self.labels[:, 5:])
    truncated = tape.gradient(loss, self.model.weights)

    with tf.GradientTape() as tape:
      _, carried_inside = self.model(self.inputs[:, :5], self.state)
      logits, _ = self.model(self.inputs[:, 5:], carried_inside)
      loss = cross_entropy(logits, self.labels[:, 5:])
    full = tape.gradient(loss, self.model.weights)

    # With SGD at learning rate 1 a step moves each weight by its gradient.
    before = [w.numpy() for w in self.model.weights]
    state = tf.Variable(carried)
    train_windows = train.make_train_windows(
        self.model, optimizers.SGD(self.model.weights, learning_rate=1.0),
        tf.Variable(self.inputs[None, :, 5:]),
        tf.Variable(self.labels[None, :, 5:]), state)
    train_windows(0, 1)
    for name, old, weight, expected in zip("WUbVc", before, self.model.weights,
                                           truncated):
      self.assertAllClose(old - weight.numpy(), expected, rtol=1e-5,
                          atol=1e-6, msg=name)
    self.assertAllClose(state, second_final, rtol=1e-6, atol=1e-6)
    # U and W feed the carried state, so full BPTT must see more of them.
    self.assertGreater(np.abs(full[1] - truncated[1]).max(), 1e-5)


class InGraphLoopTest(tf.test.TestCase):

  def _train(self, calls):
    """Trains 12 windows split into calls of the given sizes."""
    model = EchoRNN(state_size=5, seed=4)
    inputs, labels, state = _graph_data(12, 8, 5, seed=3,
                                        state=model.initial_state(8))
    train_windows = train.make_train_windows(
        model, optimizers.Adagrad(model.weights, 0.1), inputs, labels, state)
    losses, first = [], 0
    for count in calls:
      losses.append(train_windows(first, count).numpy())
      first += count
    return np.concatenate(losses), model, state, train_windows

  def test_k_windows_per_call_equal_one_per_call_bit_for_bit(self):
    one_at_a_time = self._train([1] * 12)
    in_chunks = self._train([5, 5, 2])
    self.assertAllEqual(one_at_a_time[0], in_chunks[0])
    for single, chunked in zip(one_at_a_time[1].weights,
                               in_chunks[1].weights):
      self.assertAllEqual(single, chunked)
    self.assertAllEqual(one_at_a_time[2], in_chunks[2])
    self.assertEqual(in_chunks[3].experimental_get_tracing_count(), 1)

  def test_train_logs_every_window_once_and_repeats_itself(self):
    """Two epochs of 20 windows read in calls of 7: the log sees windows
    1..40 in order; the result is the same for another log_every and for
    the same seed again, and the model learns."""
    config = train.Config(series_length=20_000, epochs=2, log_every=7)
    seen = []
    result = train.train(config, log=lambda first, losses: seen.append(
        (first, len(losses))))
    self.assertEqual(seen, [(0, 7), (7, 7), (14, 6), (20, 7), (27, 7),
                            (34, 6)])
    self.assertEqual(result.losses.shape, (40,))
    self.assertEqual(result.windows_per_epoch, 20)
    self.assertEqual(result.trace_counts, {"train_windows": 1})
    self.assertEqual(result.final_loss_windows, 40)
    self.assertAllClose(result.final_loss, np.mean(result.losses))
    again = train.train(train.Config(series_length=20_000, epochs=2,
                                     log_every=40))
    self.assertAllEqual(result.losses, again.losses)
    self.assertLess(np.mean(result.losses[-10:]), np.mean(result.losses[:10]))


def _start_main(*flags, output_dir):
  return subprocess.Popen(
      [sys.executable, "-m", "rnn_scratch", f"--output_dir={output_dir}",
       *flags], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True)


def _finish(process):
  stdout, stderr = process.communicate(timeout=300)
  return subprocess.CompletedProcess(process.args, process.returncode, stdout,
                                     stderr)


def _run_main(*flags, output_dir):
  return _finish(_start_main(*flags, output_dir=output_dir))


def _results(output_dir):
  with open(os.path.join(output_dir, "results.json")) as f:
    return json.load(f)


class CommandLineTest(tf.test.TestCase):

  def test_short_training_run_learns_the_first_dependency(self):
    """200 windows of the blog's 5-step model end well below the
    no-dependency loss; results.json and the figure are written."""
    output_dir = os.path.join(self.get_temp_dir(), "run")
    result = _run_main("--series_length=200000", "--log_every=50",
                       output_dir=output_dir)
    self.assertEqual(result.returncode, 0, result.stderr)
    results = _results(output_dir)
    expected = results["expected_loss"]
    self.assertEqual(set(expected), {"no_dependency", "first_dependency",
                                     "both_dependencies"})
    self.assertLess(results["final_loss"], expected["no_dependency"] - 0.08)
    self.assertEqual(results["trace_counts"],
                     {"train_windows": 1, "write_losses": 1})
    self.assertEqual(results["seed"], 0)
    self.assertEqual(results["flags"]["bptt_steps"], 5)
    self.assertLen(results["losses"], 200)
    with open(os.path.join(output_dir, "loss.png"), "rb") as f:
      self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
    self.assertIn("ETA", result.stdout)
    self.assertIn("mean of the last 100 windows", result.stdout)
    self.assertNotIn("cuda", result.stderr.lower())

  def test_same_seed_same_numbers_and_keras_impl_agrees(self):
    """The program trains as train.train does (to float32 rounding: the
    program turns on TensorFlow's op determinism, which picks other
    kernels); --impl=keras trains through the same loop."""
    output_dirs = {impl: os.path.join(self.get_temp_dir(), impl)
                   for impl in ("scratch", "keras")}
    processes = {impl: _start_main(TINY, f"--impl={impl}",
                                   output_dir=output_dir)
                 for impl, output_dir in output_dirs.items()}
    runs = {}
    for impl, process in processes.items():
      result = _finish(process)
      self.assertEqual(result.returncode, 0, result.stderr)
      runs[impl] = _results(output_dirs[impl])
    in_process = train.train(train.Config(series_length=20_000))
    self.assertAllClose(runs["scratch"]["losses"], in_process.losses,
                        rtol=1e-5)
    self.assertEqual(runs["keras"]["trace_counts"],
                     {"train_windows": 1, "write_losses": 1})
    # The Keras run is train.train with impl="keras" (its seeded Keras
    # initializers draw other weights than ours: other losses).
    keras_in_process = train.train(train.Config(series_length=20_000,
                                                impl="keras"))
    self.assertAllClose(runs["keras"]["losses"], keras_in_process.losses,
                        rtol=1e-5)
    self.assertGreater(np.abs(keras_in_process.losses -
                              in_process.losses).max(), 1e-3)

  def test_run_eagerly_and_fewer_windows_than_the_final_mean(self):
    """A 20-window run says its final loss is the mean of 20 windows, not
    of 100; --run_eagerly gives the same numbers as the compiled loop."""
    output_dir = os.path.join(self.get_temp_dir(), "eager")
    result = _run_main(TINY, "--run_eagerly", "--log_every=7",
                       output_dir=output_dir)
    self.assertEqual(result.returncode, 0, result.stderr)
    self.assertIn("mean of the last 20 windows", result.stdout)
    self.assertNotIn("last 100", result.stdout)
    results = _results(output_dir)
    self.assertEqual(results["final_loss_windows"], 20)
    compiled = train.train(train.Config(series_length=20_000))
    self.assertAllClose(results["losses"], compiled.losses, rtol=1e-6)

  def test_helpfull_lists_the_flags(self):
    result = subprocess.run([sys.executable, "-m", "rnn_scratch",
                             "--helpfull"], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    self.assertEqual(result.returncode, 0, result.stderr)
    for flag in ("--bptt_steps", "num_steps", "--epochs", "run_eagerly",
                 "--divergence_factor"):
      self.assertIn(flag, result.stdout)

  def test_invalid_flags_are_one_line_errors(self):
    """Bad values fail before any work, with the flag's name; the old
    --num_steps (which collided with --steps elsewhere) is gone."""
    output_dir = os.path.join(self.get_temp_dir(), "never")
    cases = {("--num_steps=5",): "num_steps",
             ("--seed=4294967296",): "--seed",
             ("--series_length=10000000000",): "--series_length",
             ("--batch_size=1", "--bptt_steps=1",
              "--series_length=100000000"): "at most 10,000,000"}
    processes = {flags: _start_main(*flags, output_dir=output_dir)
                 for flags in cases}
    for flags, process in processes.items():
      result = _finish(process)
      self.assertNotEqual(result.returncode, 0, flags)
      self.assertNotIn("Traceback", result.stderr, flags)
      self.assertIn(cases[flags], result.stderr.splitlines()[0], flags)
    self.assertFalse(os.path.exists(output_dir))

  def test_divergence_stops_the_run_without_publishing(self):
    """--learning_rate=1e6 wanders at a huge but finite loss: the guard stops
    it (exit 1, one line) and nothing is published."""
    output_dir = os.path.join(self.get_temp_dir(), "diverged")
    result = _run_main("--learning_rate=1e6", "--series_length=100000",
                       "--log_every=10", output_dir=output_dir)
    assert_one_line_error(self, result, "diverged")
    self.assertFalse(os.path.exists(output_dir))

  def test_nan_loss_stops_with_window_number(self):
    output_dir = os.path.join(self.get_temp_dir(), "nan")
    result = _run_main("--optimizer=sgd", "--learning_rate=1e38", TINY,
                       output_dir=output_dir)
    assert_one_line_error(self, result)
    self.assertRegex(result.stderr, r"error: loss became (nan|inf) at step \d+")
    self.assertFalse(os.path.exists(output_dir))


if __name__ == "__main__":
  tf.test.main()
