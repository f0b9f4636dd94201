"""``python -m mnist_probes`` end to end with tiny flags, its errors, and
``train.run`` in-process, checked against probes refitted independently."""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import json
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from mnist_probes import data, train
from mnist_probes.model import MLP
from mnist_probes.probe import LogisticRegression
from tests.mnist_fixture import SHARED_MNIST_DIR, real_mnist

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ("--steps=100", "--eval_every=50", "--log_every=50",
        "--probe_train_size=50", "--probe_test_size=100",
        "--sweep_train_sizes=50",
        "--probe_tolerance=1e-5")  # convergence itself is tested elsewhere
FIGURES = ("pca_grid.png", "accuracy_curves.png", "probe_accuracy.png",
           "probe_sweep.png")
MISSING_DATA = "--data_dir=/nonexistent/mnist"


def _data_dir():
  """Where real_mnist() reads MNIST, as a --data_dir (None: the default)."""
  if not os.environ.get("MNIST_DATA_DIR") and os.path.isdir(SHARED_MNIST_DIR):
    return SHARED_MNIST_DIR
  return None


def _command(*flags, output_dir):
  return [sys.executable, "-m", "mnist_probes", f"--output_dir={output_dir}",
          *flags]


def _run_main(*flags, output_dir):
  return subprocess.run(_command(*flags, output_dir=output_dir), cwd=REPO,
                        capture_output=True, text=True, timeout=300)


_PARSE = """
import json, sys
from absl import flags
import mnist_probes.__main__  # defines the program's flags
errors = []
for argv in json.loads(sys.argv[1]):
  try:
    flags.FLAGS(["mnist_probes"] + argv)
    errors.append(None)
  except flags.Error as error:
    errors.append(str(error))
  flags.FLAGS.unparse_flags()
print(json.dumps(errors))
"""


def _parse_flags(argvs):
  """For each list of flags, the error parsing them raised (None: valid),
  all parsed by the program's own validators in one process."""
  result = subprocess.run([sys.executable, "-c", _PARSE, json.dumps(argvs)],
                          cwd=REPO, capture_output=True, text=True,
                          timeout=300, check=True)
  return json.loads(result.stdout.strip().splitlines()[-1])


class SplitTest(tf.test.TestCase):

  def test_blog_split_is_tensorflow_1s(self):
    """TF1's read_data_sets kept training images 5,000-59,999."""
    everything = real_mnist(validation_size=0)
    train_split, test, _ = data.load_train_test(_data_dir(), "blog")
    self.assertLen(train_split, 55_000)
    self.assertAllEqual(train_split.images[:3],
                        everything.train.images[5000:5003])
    self.assertAllEqual(train_split.labels, everything.train.labels[5000:])
    self.assertAllEqual(test.labels, everything.test.labels)
    first, _, _ = data.load_train_test(_data_dir(), "first")
    self.assertLen(first, 55_000)
    self.assertAllEqual(first.labels, everything.train.labels[:55_000])
    self.assertFalse(np.array_equal(first.labels[:100],
                                    train_split.labels[:100]))


class RunTest(tf.test.TestCase):
  """``train.run`` on a tiny config; its probes refitted here from the
  returned network, the sweep's step 0 from a fresh one."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    real_mnist()  # skips (or fails in CI) when MNIST is missing
    cls.train_split, cls.test, _ = data.load_train_test(_data_dir(), "blog")
    cls.config = train.Config(
        steps=100, eval_every=50, log_every=25, probe_train_size=100,
        probe_test_size=300, sweep_train_sizes=(50, 100),
        probe_tolerance=1e-5)
    cls.logged = {}

    def make_log(name):
      cls.logged[name] = []
      return lambda first_step, losses: cls.logged[name].append(
          (first_step, losses))

    cls.notes = []
    cls.result = train.run(cls.config, cls.train_split, cls.test, make_log,
                           cls.notes.append)

  def _probe_accuracy(self, model, layer, size):
    """A probe fitted here on ``model``'s layer of the first ``size``
    training images, scored on the first 300 test images."""
    train_layer = model(self.train_split.images[:size])[1][layer]
    test_layer = model(self.test.images[:300])[1][layer]
    probe = LogisticRegression(train_layer.shape[1])
    self.assertTrue(probe.fit(train_layer, self.train_split.labels[:size],
                              tolerance=1e-5).converged)
    return probe.accuracy(test_layer, self.test.labels[:300])

  def test_probes_are_the_trained_nets_layers(self):
    result = self.result
    self.assertEqual(result.probe_accuracy, [
        self._probe_accuracy(result.model, layer, 100) for layer in range(4)])
    # Training makes hidden layers better features than the pixels.
    self.assertGreater(result.probe_accuracy[3], result.probe_accuracy[0])
    for fit in result.probes + result.probes_ovr:
      self.assertTrue(fit["converged"], fit)

  def test_sweep_starts_at_the_initial_weights(self):
    """The default sweep for 100 steps is steps 0 and 100; step 0 probes
    the untrained net (same seed, same initial weights)."""
    records = {(r["step"], r["train_size"]): r["accuracy"]
               for r in self.result.sweep}
    self.assertEqual(sorted(records), [(0, 50), (0, 100), (100, 50),
                                       (100, 100)])
    untrained = MLP(seed=0)
    self.assertEqual(records[(0, 50)], [
        self._probe_accuracy(untrained, layer, 50) for layer in range(4)])
    self.assertGreater(records[(100, 100)][3], records[(0, 100)][3] + 0.1)

  def test_curves_losses_and_trace_counts(self):
    result = self.result
    self.assertIsInstance(result.test_accuracy, float)
    self.assertGreater(result.test_accuracy, 0.8)
    # The trained net's accuracy on all 10,000 test images, counted here.
    logits, _ = result.model(self.test.images)
    self.assertNear(result.test_accuracy, np.mean(  # float32 on one side;
        np.argmax(logits, axis=1) == self.test.labels), 1e-6)  # 1 image: 1e-4
    self.assertEqual(result.test_accuracy, result.base_curve.test_accuracy[-1])
    for curve, name in ((result.base_curve, "base"), (result.aux_curve, "aux")):
      self.assertEqual(curve.step, [0, 50, 100])
      # The mean loss of the last 100 steps (all of them here), as logged.
      losses = np.concatenate([np.asarray(losses).reshape(25, -1)[:, 0]
                               for _, losses in self.logged[name]])
      self.assertAllClose(curve.final_loss, losses.mean(), rtol=1e-6)
    # Same initial weights: both curves start at the same accuracy.
    self.assertEqual(result.base_curve.test_accuracy[0],
                     result.aux_curve.test_accuracy[0])
    self.assertGreater(result.aux["aux_accuracy"], 0.5)
    self.assertEqual(result.aux["aux_accuracy_second_half_mean"],
                     result.aux["aux_accuracy"])  # only step 100 is past half
    # The host saw every step once, in calls of log_every steps.
    for name, parts in (("base", 1), ("aux", 3)):
      calls = self.logged[name]
      self.assertEqual([first for first, _ in calls], [0, 25, 50, 75])
      for _, losses in calls:
        self.assertEqual(losses.shape[0], 25)
        self.assertEqual(losses.size, 25 * parts)
    self.assertEqual(set(result.trace_counts.values()), {1})
    self.assertLen(result.trace_counts, 6)
    self.assertTrue(any("sweep: step 100" in note for note in self.notes))


class CommandLineTest(tf.test.TestCase):

  def test_tiny_run_writes_results_and_figures(self):
    real_mnist()  # skips (or fails in CI) when MNIST is missing
    output_dir = os.path.join(self.get_temp_dir(), "run")
    data_dir = [f"--data_dir={_data_dir()}"] if _data_dir() else []
    result = _run_main(*TINY, *data_dir, output_dir=output_dir)
    self.assertEqual(result.returncode, 0, result.stderr)
    with open(os.path.join(output_dir, "results.json")) as f:
      results = json.load(f)
    self.assertIsInstance(results["test_accuracy"], float)
    self.assertGreater(results["test_accuracy"], 0.8)
    self.assertLen(results["probe_accuracy"], 4)
    self.assertLen(results["probe_accuracy_ovr"], 4)
    self.assertEqual(results["aux_experiment"]["base_accuracy"],
                     results["test_accuracy"])
    self.assertEqual(results["probe_sweep"]["steps"], [0, 100])  # derived
    self.assertEqual(results["trace_counts"], {
        "base_train_steps": 1, "base_forward": 1, "aux_train_steps": 1,
        "aux_forward": 1, "probe_fit_multinomial": 1, "probe_fit_ovr": 1,
        "base_loss_writer": 1, "aux_loss_writer": 1})
    for name in FIGURES:
      with open(os.path.join(output_dir, name), "rb") as f:
        self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", name)
    self.assertIn("ETA", result.stdout)
    self.assertIn("| probe train size |", result.stdout)

  def test_run_eagerly(self):
    real_mnist()
    output_dir = os.path.join(self.get_temp_dir(), "eager")
    data_dir = [f"--data_dir={_data_dir()}"] if _data_dir() else []
    result = _run_main("--run_eagerly", "--steps=20", "--eval_every=10",
                       "--probe_train_size=10", "--probe_test_size=10",
                       "--sweep_steps=", "--probe_tolerance=1e-2", *data_dir,
                       output_dir=output_dir)
    self.assertEqual(result.returncode, 0, result.stderr)
    with open(os.path.join(output_dir, "results.json")) as f:
      results = json.load(f)
    # Eagerly, every tf.function ran as Python: none was traced.
    self.assertIn("base_train_steps", results["trace_counts"])
    self.assertEqual(set(results["trace_counts"].values()), {0},
                     results["trace_counts"])
    self.assertEqual(results["aux_experiment"]["base_curve"]["step"],
                     [0, 10, 20])

  def test_non_finite_float_is_refused_up_front(self):
    """``--probe_c=inf`` used to run, then write the non-standard JSON
    ``Infinity`` into results.json; now it is refused before any data is
    read or any directory made."""
    output_dir = os.path.join(self.get_temp_dir(), "refused")
    result = _run_main("--probe_c=inf", MISSING_DATA, output_dir=output_dir)
    self.assertEqual(result.returncode, 1)
    self.assertIn("--probe_c must be finite and > 0", result.stderr)
    self.assertNotIn("MNIST not found", result.stderr)
    self.assertNotIn("Traceback", result.stderr)
    self.assertFalse(os.path.exists(output_dir))

  def test_every_flag_is_validated(self):
    """The program's flags parsed in one process: each bad value names its
    flag (finite floats, sizes that fit the data, sweeps whose snapshots fit
    in memory); the defaults agree with each other for any --steps."""
    cases = {
        "--probe_c=nan": "probe_c",
        "--probe_tolerance=inf": "probe_tolerance",
        "--learning_rate=inf": "learning_rate",
        "--aux_weight=nan": "aux_weight",
        "--batch_size=30000": "batch_size",
        "--probe_train_size=60000": "probe_train_size",
        "--probe_test_size=20000": "probe_test_size",
        "--steps=2000000": "steps",
        "--steps=100 --sweep_steps=0,500": "sweep_steps",
        "--sweep_train_sizes=100,x": "sweep_train_sizes",
        "--sweep_train_sizes=60000": "sweep_train_sizes",
        "--sweep_steps=" + ",".join(map(str, range(20))) +
        " --sweep_train_sizes=55000": "snapshots",
        "--steps=3000": None,  # the default sweep follows --steps
        "--steps=50": None,
        "--sweep_steps=": None,  # no sweep
    }
    errors = _parse_flags([flags.split() for flags in cases])
    for (flags, name), error in zip(cases.items(), errors):
      if name is None:
        self.assertIsNone(error, flags)
      else:
        self.assertIsNotNone(error, flags)
        self.assertIn(name, error, flags)
    self.assertEqual(train.default_sweep_steps(3000), (0, 100, 1000, 3000))
    self.assertEqual(train.default_sweep_steps(50), (0, 50))
    self.assertEqual(train.Config(steps=10_000).sweep_at,
                     (0, 100, 1000, 10_000))

  def test_blown_up_run_stops_with_one_line_and_publishes_nothing(self):
    """A learning rate 50 times the blog's sends the summed loss from ~120
    to ~60,000: the divergence guard stops the run at the third read."""
    real_mnist()
    output_dir = os.path.join(self.get_temp_dir(), "diverged")
    data_dir = [f"--data_dir={_data_dir()}"] if _data_dir() else []
    result = _run_main("--learning_rate=0.5", "--steps=300",
                       "--eval_every=10", "--log_every=10", "--sweep_steps=",
                       *data_dir, output_dir=output_dir)
    self.assertEqual(result.returncode, 1, result.stderr)
    self.assertRegex(result.stderr, r"^error: base net diverged: .* step 30 ")
    self.assertLen(result.stderr.strip().splitlines(), 1)
    self.assertFalse(os.path.exists(output_dir))

  def test_missing_data_is_one_line_error(self):
    output_dir = os.path.join(self.get_temp_dir(), "missing")
    result = _run_main(MISSING_DATA, *TINY, output_dir=output_dir)
    self.assertEqual(result.returncode, 1)
    self.assertRegex(result.stderr, r"error: MNIST not found.*/nonexistent")
    self.assertNotIn("Traceback", result.stderr)
    self.assertFalse(os.path.exists(output_dir))


if __name__ == "__main__":
  tf.test.main()
