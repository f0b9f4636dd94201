"""``python -m inversion`` end to end with tiny flags, and its clear errors."""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import json
import os
import subprocess
import sys
import tempfile

import tensorflow as tf

from tests.mnist_fixture import real_mnist
from tests.mnist_fixture import REPO_ROOT
from tests.mnist_fixture import SHARED_MNIST_DIR
from tfscratch.lab.mnist import DATA_DIR_ENV

TINY_FLAGS = ["--train_steps=30", "--batch_size=200", "--learning_rate=0.1",
              "--confidence=0.5", "--inverse_steps=10",
              "--generate_steps=20", "--inversion_steps=10", "--num_eval=40",
              "--log_every=10"]
FIGURES = ["inverse_projections.png", "generated_digits.png", "features.png",
           "reconstructions.png", "class_images.png"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_inversion(*flags):
  environment = dict(os.environ)
  if not environment.get(DATA_DIR_ENV) and os.path.isdir(SHARED_MNIST_DIR):
    environment[DATA_DIR_ENV] = SHARED_MNIST_DIR
  return subprocess.run([sys.executable, "-m", "inversion", *flags],
                        cwd=REPO_ROOT, env=environment, capture_output=True,
                        text=True, timeout=300)


class MainTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.directory = tempfile.mkdtemp()

  def test_tiny_run_writes_results_and_figures(self):
    real_mnist(validation_size=5000)  # skips (or fails in CI) without MNIST
    output_dir = os.path.join(self.directory, "run")
    result = run_inversion(*TINY_FLAGS, f"--output_dir={output_dir}")
    self.assertEqual(result.returncode, 0, result.stderr)
    with open(os.path.join(output_dir, "results.json")) as f:
      results = json.load(f)
    # 30 steps only: better than chance (0.1) is all a tiny run can promise.
    self.assertBetween(results["test_accuracy"], 0.2, 1.0)
    self.assertLen(results["generated_confidence"], 9)
    for method in ("learned_inverse", "gradient_inverse"):
      metrics = results["reconstruction"][method]
      self.assertBetween(metrics["l1_error"], 0.0, 1.0)
      self.assertBetween(metrics["class_agreement"], 0.0, 1.0)
    self.assertBetween(results["l1_error_baselines"]["black_image"], 0.05,
                       0.2)
    self.assertEqual(results["flags"]["inverse_steps"], 10)
    for name in FIGURES:
      with open(os.path.join(output_dir, name), "rb") as f:
        self.assertEqual(f.read(8), PNG_MAGIC, name)
    events = os.listdir(os.path.join(output_dir, "tensorboard"))
    self.assertTrue(any(name.startswith("events.") for name in events))
    self.assertIn("classifier test accuracy", result.stdout)

  def test_bad_flag_is_one_clear_line(self):
    result = run_inversion("--confidence=1.5",
                           f"--output_dir={self.directory}/run")
    self.assertNotEqual(result.returncode, 0)
    self.assertIn("--confidence must be below 1", result.stderr)
    self.assertNotIn("Traceback", result.stderr)

  def test_missing_data_is_one_clear_line(self):
    missing = os.path.join(self.directory, "no_mnist_here")
    output_dir = os.path.join(self.directory, "run")
    result = run_inversion(f"--data_dir={missing}",
                           f"--output_dir={output_dir}")
    self.assertEqual(result.returncode, 1)
    lines = result.stderr.strip().splitlines()
    self.assertLen(lines, 1, result.stderr)
    self.assertStartsWith(lines[0], "error: MNIST not found")
    self.assertIn(missing, lines[0])
    self.assertFalse(os.path.exists(output_dir))

  def test_divergence_names_the_step(self):
    real_mnist(validation_size=5000)
    output_dir = os.path.join(self.directory, "run")
    result = run_inversion("--learning_rate=1e30", "--train_steps=5",
                           "--batch_size=100", f"--output_dir={output_dir}")
    self.assertEqual(result.returncode, 1)
    self.assertRegex(result.stderr,
                     r"error: \w+ loss became (nan|inf) at step \d+")
    self.assertFalse(os.path.exists(output_dir))


if __name__ == "__main__":
  tf.test.main()
