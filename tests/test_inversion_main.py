"""``python -m inversion`` end to end with tiny flags, and its clear errors."""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import json
import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import tensorflow as tf

from tests.mnist_fixture import real_mnist
from tests.mnist_fixture import REPO_ROOT
from tests.mnist_fixture import SHARED_MNIST_DIR
from tfscratch.lab.mnist import DATA_DIR_ENV

TINY_FLAGS = ["--steps=60", "--batch_size=200", "--learning_rate=0.1",
              "--confidence=0.5", "--inverse_steps=40",
              "--generate_steps=50", "--inversion_steps=30", "--num_eval=40",
              "--log_every=20"]
FIGURES = ["inverse_projections.png", "generated_digits.png", "features.png",
           "reconstructions.png", "class_images.png", "blog_examples.png"]
STAGES = ["classifier", "inverse", "generate", "gradient_inverse",
          "class_images"]
# train.py's compiled functions, and each stage's TensorBoard writer.
COMPILED = ["classifier_steps", "predict", "inverse_steps", "inverse_step",
            "generate_steps", "gradient_inverse_steps", "class_image_steps"
           ] + [f"{stage}_loss_writer" for stage in STAGES]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_module(module, *flags):
  environment = dict(os.environ)
  if not environment.get(DATA_DIR_ENV) and os.path.isdir(SHARED_MNIST_DIR):
    environment[DATA_DIR_ENV] = SHARED_MNIST_DIR
  return subprocess.run([sys.executable, "-m", module, *flags],
                        cwd=REPO_ROOT, env=environment, capture_output=True,
                        text=True, timeout=300)


def run_inversion(*flags):
  return run_module("inversion", *flags)


def read_results(output_dir):
  with open(os.path.join(output_dir, "results.json")) as f:
    return json.load(f)


class MainTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.directory = tempfile.mkdtemp()

  def test_tiny_run_learns_and_records_one_trace_per_function(self):
    real_mnist(validation_size=5000)  # skips (or fails in CI) without MNIST
    output_dir = os.path.join(self.directory, "run")
    result = run_inversion(*TINY_FLAGS, f"--output_dir={output_dir}")
    self.assertEqual(result.returncode, 0, result.stderr)
    results = read_results(output_dir)
    # 60 steps of 200 images: well above chance (0.1); this run gives 0.8396.
    self.assertIsInstance(results["test_accuracy"], float)
    self.assertGreater(results["test_accuracy"], 0.8)
    # What the later stages give here: 0.93, 0.98, 0.005 and at least 0.49
    # (chance: 0.1).
    learned = results["reconstruction"]["learned_inverse"]
    gradient = results["reconstruction"]["gradient_inverse"]
    self.assertGreater(learned["class_agreement"], 0.6)
    self.assertGreater(gradient["class_agreement"], 0.9)
    self.assertLess(gradient["code_error"], 0.02)
    self.assertGreater(min(results["class_image_confidence"]), 0.3)
    self.assertLen(results["generated_confidence"], 9)
    self.assertBetween(results["inverse_confident_fraction"], 0.5, 1.0)
    self.assertEqual(results["trace_counts"], {name: 1 for name in COMPILED})
    self.assertEqual(results["flags"]["inverse_steps"], 40)
    self.assertEqual(results["flags"]["batch_order"], "shuffled")
    # The blog's two examples: test images 8 (a 5) and 33 (a 4).
    self.assertEqual({name: example["label"] for name, example in
                      results["blog_examples"].items()},
                     {"test_image_8": 5, "test_image_33": 4})
    # The blog's split: the mean training image (an L1 baseline) is that of
    # images 5,000-59,999 (images 0-54,999 give 0.148014, not 0.148007).
    everything = real_mnist(validation_size=0)
    originals = everything.test.images[:40]
    blog_split, first_split = (
        np.mean(np.abs(originals - everything.train.images[
            first:first + 55_000].mean(axis=0))) for first in (5000, 0))
    actual = results["l1_error_baselines"]["mean_training_image"]
    self.assertAllClose(actual, blog_split, rtol=1e-6, atol=0)
    self.assertNotAllClose(actual, first_split, rtol=1e-6, atol=0)
    for name in FIGURES:
      with open(os.path.join(output_dir, name), "rb") as f:
        self.assertEqual(f.read(8), PNG_MAGIC, name)
    events = os.listdir(os.path.join(output_dir, "tensorboard"))
    self.assertTrue(any(name.startswith("events.") for name in events))
    self.assertIn("classifier test accuracy: 0.83", result.stdout)
    self.assertIn("inverse step 40/40", result.stdout)

  def test_every_float_flag_is_checked_when_the_flags_are_read(self):
    """NaN and infinities in every float flag, and out-of-range values, are
    refused by the flag parser, before any data is read or step taken; and
    the help lists every stage's flags."""
    script = textwrap.dedent("""
        from absl import flags
        import inversion.__main__  # defines the flags; runs nothing
        FLAGS = flags.FLAGS
        floats = sorted(  # the program's own, not TensorFlow's or absl's
            flag.name
            for module, defined in FLAGS.flags_by_module_dict().items()
            if module.split(".")[0] not in ("absl", "tensorflow", "keras")
            for flag in defined if isinstance(flag.parser, flags.FloatParser))
        print("floats", *floats)
        print("help", *sorted(FLAGS))
        cases = [(name, value) for name in floats
                 for value in ("nan", "inf", "-inf")]
        cases += [("confidence", "1.5"), ("confidence", "-0.1"),
                  ("initial_pixel", "0"), ("initial_pixel", "1"),
                  ("tv_weight", "-1e-4"), ("class_l2_weight", "-1"),
                  ("learning_rate", "0"), ("inversion_learning_rate", "-1"),
                  ("steps", "0"), ("inverse_steps", "0"), ("num_eval", "35"),
                  ("num_eval", "10001"), ("seed", str(2**32)),
                  ("batch_size", "0"), ("log_every", "0"),
                  ("batch_order", "random")]
        for name, value in cases:
          FLAGS.unparse_flags()
          try:
            FLAGS(["inversion", f"--{name}={value}"])
          except flags.IllegalFlagValueError as error:
            print("refused", name, value, str(error).replace("\\n", " "))
          else:
            print("ACCEPTED", name, value)
        """)
    environment = dict(os.environ, PYTHONPATH=REPO_ROOT)
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT,
                            env=environment, capture_output=True, text=True,
                            timeout=120)
    self.assertEqual(result.returncode, 0, result.stderr)
    lines = result.stdout.splitlines()
    floats = lines[0].split()[1:]
    for name in ("learning_rate", "inverse_learning_rate",
                 "generate_learning_rate", "inversion_learning_rate",
                 "confidence", "tv_weight", "l2_weight", "class_tv_weight",
                 "class_l2_weight", "initial_pixel", "divergence_factor"):
      self.assertIn(name, floats)
    defined = lines[1].split()[1:]
    for flag in ("steps", "learning_rate", "inverse_steps",
                 "inverse_learning_rate", "generate_steps", "inversion_steps",
                 "eval_every", "log_every", "run_eagerly",
                 "divergence_patience"):
      self.assertIn(flag, defined)
    self.assertNotIn("train_steps", defined)
    accepted = [line for line in lines if line.startswith("ACCEPTED")]
    self.assertEmpty(accepted)
    self.assertIn("refused tv_weight nan", result.stdout)
    self.assertIn("refused batch_order random", result.stdout)
    self.assertIn("--confidence must be below 1", result.stdout)

  def test_nan_prior_weight_fails_in_one_line_before_training(self):
    output_dir = os.path.join(self.directory, "run")
    result = run_inversion(*TINY_FLAGS, "--tv_weight=nan",
                           f"--output_dir={output_dir}")
    self.assertEqual(result.returncode, 1)
    lines = result.stderr.strip().splitlines()
    self.assertLen(lines, 1, result.stderr)
    self.assertStartsWith(lines[0], "error: ")
    self.assertIn("--tv_weight must be finite", lines[0])
    self.assertNotIn("step", result.stdout)
    self.assertFalse(os.path.exists(output_dir))

  def test_a_diverging_inverse_stops_and_publishes_nothing(self):
    """Inverse learning rate 10: the loss ends far above where it started,
    finite; without the guard the run published an L1 error of 87."""
    real_mnist(validation_size=5000)
    output_dir = os.path.join(self.directory, "run")
    result = run_inversion(*TINY_FLAGS, "--inverse_learning_rate=10",
                           "--log_every=10", f"--output_dir={output_dir}")
    self.assertEqual(result.returncode, 1, result.stderr)
    lines = result.stderr.strip().splitlines()
    self.assertLen(lines, 1, result.stderr)
    self.assertStartsWith(lines[0], "error: inverse diverged: ")
    self.assertNotIn("classifier test accuracy", result.stdout)
    self.assertFalse(os.path.exists(output_dir))

  def test_reproduce_reports_a_failing_run_in_one_line(self):
    """The run's own error (one line) and then reproduce's (one line)."""
    missing = os.path.join(self.directory, "no_mnist_here")
    output_dir = os.path.join(self.directory, "run")
    result = run_module("inversion.reproduce", f"--data_dir={missing}",
                        f"--output_dir={output_dir}")
    self.assertEqual(result.returncode, 1)
    lines = result.stderr.strip().splitlines()
    self.assertLen(lines, 2, result.stderr)
    self.assertStartsWith(lines[0], "error: MNIST not found")  # the run's
    self.assertIn(missing, lines[0])
    self.assertEqual(lines[1], "error: the blog-scale run failed (its error "
                     "is above)")
    self.assertFalse(os.path.exists(output_dir))


if __name__ == "__main__":
  tf.test.main()
