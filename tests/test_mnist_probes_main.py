"""``python -m mnist_probes`` end to end with tiny flags, and its errors."""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import json
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from mnist_probes import data
from tests.mnist_fixture import SHARED_MNIST_DIR, real_mnist

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ("--steps=100", "--eval_every=50", "--log_every=50",
        "--probe_train_size=100", "--probe_test_size=300",
        "--sweep_steps=0,100", "--sweep_train_sizes=50,100",
        "--probe_tolerance=1e-5")  # convergence itself is tested elsewhere
FIGURES = ("pca_grid.png", "accuracy_curves.png", "probe_accuracy.png",
           "probe_sweep.png")


def _data_dir():
  """Where real_mnist() reads MNIST, as a --data_dir (None: the default)."""
  if not os.environ.get("MNIST_DATA_DIR") and os.path.isdir(SHARED_MNIST_DIR):
    return SHARED_MNIST_DIR
  return None


def _run_main(*flags, output_dir):
  return subprocess.run(
      [sys.executable, "-m", "mnist_probes", f"--output_dir={output_dir}",
       *flags], cwd=REPO, capture_output=True, text=True, timeout=300)


class SplitTest(tf.test.TestCase):

  def test_blog_split_is_tensorflow_1s(self):
    """TF1's read_data_sets kept training images 5,000-59,999."""
    everything = real_mnist(validation_size=0)
    train, test, _ = data.load_train_test(_data_dir(), "blog")
    self.assertLen(train, 55_000)
    self.assertAllEqual(train.images[:3], everything.train.images[5000:5003])
    self.assertAllEqual(train.labels, everything.train.labels[5000:])
    self.assertAllEqual(test.labels, everything.test.labels)
    first, _, _ = data.load_train_test(_data_dir(), "first")
    self.assertLen(first, 55_000)
    self.assertAllEqual(first.labels, everything.train.labels[:55_000])
    self.assertFalse(np.array_equal(first.labels[:100], train.labels[:100]))


class CommandLineTest(tf.test.TestCase):

  def test_tiny_run_writes_results_and_figures(self):
    real_mnist()  # skips (or fails in CI) when MNIST is missing
    output_dir = os.path.join(self.get_temp_dir(), "run")
    data_dir = [f"--data_dir={_data_dir()}"] if _data_dir() else []
    result = _run_main(*TINY, *data_dir, output_dir=output_dir)
    self.assertEqual(result.returncode, 0, result.stderr)
    with open(os.path.join(output_dir, "results.json")) as f:
      results = json.load(f)
    # 100 steps already learn: far above the 10% of chance.
    self.assertGreater(results["network_test_accuracy"], 0.8)
    self.assertLen(results["probe_accuracy"], 4)
    self.assertLen(results["probe_accuracy_ovr"], 4)
    for fit in results["probe_fits"] + results["probe_fits_ovr"]:
      self.assertTrue(fit["converged"], fit)
      self.assertGreater(fit["accuracy"], 0.4)
    aux = results["aux_experiment"]
    self.assertEqual(aux["base_accuracy"], results["network_test_accuracy"])
    self.assertGreater(aux["aux_accuracy"], 0.5)
    self.assertEqual(aux["base_curve"]["step"], [0, 50, 100])
    self.assertEqual(aux["aux_curve"]["step"], [0, 50, 100])
    self.assertLessEqual(
        aux["evaluations_aux_ahead"] + aux["evaluations_aux_behind"], 2)
    self.assertEqual(aux["aux_accuracy_second_half_mean"],
                     aux["aux_accuracy"])  # only step 100 is past halfway
    # Same initial weights: both curves start at the same accuracy.
    self.assertEqual(aux["base_curve"]["test_accuracy"][0],
                     aux["aux_curve"]["test_accuracy"][0])
    sweep = results["probe_sweep"]
    self.assertEqual(sweep["steps"], [0, 100])
    self.assertEqual(sweep["train_sizes"], [50, 100])
    self.assertLen(sweep["results"], 4)
    records = {(r["step"], r["train_size"]): r["accuracy"]
               for r in sweep["results"]}
    # The input layer does not train: its probe is the same at every step.
    self.assertEqual(records[(0, 100)][0], records[(100, 100)][0])
    # The final-step sweep probe on 100 images is the main probe.
    self.assertEqual(records[(100, 100)], results["probe_accuracy"])
    # Training makes hidden layers better features than at initialisation.
    self.assertGreater(records[(100, 100)][3], records[(0, 100)][3] + 0.1)
    self.assertEqual(results["trace_counts"], {"base": 1, "aux": 1})
    for name in FIGURES:
      with open(os.path.join(output_dir, name), "rb") as f:
        self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", name)
    self.assertIn("ETA", result.stdout)
    self.assertIn("| probe train size |", result.stdout)

  def test_probe_train_size_larger_than_the_split(self):
    result = _run_main("--probe_train_size=60000",
                       output_dir=self.get_temp_dir())
    self.assertNotEqual(result.returncode, 0)
    self.assertIn("probe_train_size", result.stderr)
    self.assertNotIn("Traceback", result.stderr)

  def test_bad_sweep_flags(self):
    for flag, name in (("--sweep_steps=0,500", "sweep_steps"),
                       ("--sweep_train_sizes=100,x", "sweep_train_sizes")):
      result = _run_main("--steps=100", flag, output_dir=self.get_temp_dir())
      self.assertNotEqual(result.returncode, 0, flag)
      self.assertIn(name, result.stderr)
      self.assertNotIn("Traceback", result.stderr)

  def test_missing_data_is_one_line_error(self):
    output_dir = os.path.join(self.get_temp_dir(), "missing")
    result = _run_main("--data_dir=/nonexistent/mnist", *TINY,
                       output_dir=output_dir)
    self.assertEqual(result.returncode, 1)
    self.assertRegex(result.stderr, r"error: MNIST not found.*/nonexistent")
    self.assertNotIn("Traceback", result.stderr)
    self.assertFalse(os.path.exists(output_dir))


if __name__ == "__main__":
  tf.test.main()
