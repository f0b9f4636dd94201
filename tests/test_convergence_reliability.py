"""Issue 14 for convergence: no run destroys, mixes up or misreports a
user's data. Each test drives the command line, as a user would, and
expects the correct result or a one-line error (never a traceback). Cases 4,
5 and 10 are in test_convergence_main.py, beside the runs they reuse."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from tests import mnist_fixture
from tests.test_convergence_main import command
from tests.test_convergence_main import environment
from tests.test_convergence_main import flag_errors
from tests.test_convergence_main import REPO_ROOT
from tests.test_convergence_main import run
from tests.cli_checks import assert_one_line_error

REPRODUCE = "convergence.reproduce"


class ReliabilityTest(unittest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    mnist_fixture.real_mnist(validation_size=0)  # skips if MNIST is absent
    cls.tmp = tempfile.mkdtemp()

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  # Case 2: reproduce reuses a finished run only if it is the one requested.
  def test_reproduce_resumes_only_the_requested_run(self):
    output_dir = os.path.join(self.tmp, "reproduce")
    flags = ["--optimizers=sgd", "--num_runs=2", "--workers=1"]
    first = run(*flags, "--step_scale=0.02", f"--output_dir={output_dir}",
                module=REPRODUCE)
    self.assertEqual(first.returncode, 0, first.stderr)
    again = run(*flags, "--step_scale=0.02", f"--output_dir={output_dir}",
                module=REPRODUCE)
    self.assertEqual(again.returncode, 0, again.stderr)
    self.assertIn("sgd: kept the finished run", again.stdout)
    other = run(*flags, "--step_scale=0.03", f"--output_dir={output_dir}",
                module=REPRODUCE)
    assert_one_line_error(self, other, "other settings",
                          "step_scale 0.02 (requested 0.03)",
                          "--overwrite")
    self.assertNotIn("| sgd", other.stdout)

  def test_reproduce_validates_its_flags(self):
    errors = flag_errors(REPRODUCE,
                         [["--optimizers=foo"], ["--optimizers="],
                          ["--optimizers=sgd,sgd"], ["--step_scale=inf"],
                          ["--optimizers=adam,sgd"], ["--studies=lr_map,foo"],
                          ["--persistence_scales=2,0"],
                          ["--studies=lr_map,paired",
                           "--persistence_scales=0.5,4"]])
    for error in errors[:3]:
      self.assertIn("--optimizers must list one or more of sgd, adagrad, "
                    "adam, each once", error)
    self.assertIn("--step_scale must be finite and > 0", errors[3])
    self.assertIsNone(errors[4])
    self.assertIn("--studies must list one or more of blog, lr_map", errors[5])
    self.assertIn("--persistence_scales must list numbers in (0, 100]",
                  errors[6])
    self.assertIsNone(errors[7])

  def test_reproduce_reports_a_failing_run_in_one_line(self):
    output_dir = os.path.join(self.tmp, "failing")
    os.makedirs(output_dir)
    with open(os.path.join(output_dir, "sgd"), "w") as f:
      f.write("a file where the run's directory should be\n")
    result = run("--optimizers=sgd", "--num_runs=2", "--step_scale=0.01",
                 f"--output_dir={output_dir}", module=REPRODUCE)
    assert_one_line_error(self, result, "the sgd run failed (exit code 1)",
                          "is not a directory")

  def test_make_reproduce_convergence_resumes(self):
    with open(os.path.join(REPO_ROOT, "Makefile")) as f:
      target = re.search(r"^reproduce-convergence:.*\n((?:\t.*\n)+)",
                         f.read(), re.MULTILINE).group(1)
    self.assertIn("convergence.reproduce", target)
    self.assertNotIn("--overwrite", target)

  # Case 3: shards given one output directory.
  def test_a_second_run_into_the_same_directory_fails_at_once(self):
    output_dir = os.path.join(self.tmp, "shared")
    shard = ["--num_runs=2", "--chunk_size=1", "--num_shards=2",
             "--strategies=all_layers", f"--output_dir={output_dir}"]
    first = subprocess.Popen(
        command(*shard, "--shard_index=0"), cwd=REPO_ROOT, env=environment(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
      deadline = time.time() + 120
      while not os.path.isdir(output_dir + ".partial"):
        self.assertLess(time.time(), deadline, "the first shard never started")
        self.assertIsNone(first.poll(), "the first shard ended early")
        time.sleep(0.02)
      # Paused, it keeps its lock (and spares the CPU) while the second runs.
      first.send_signal(signal.SIGSTOP)
      second = run(*shard, "--shard_index=1")
    finally:
      first.kill()
      first.wait()
    assert_one_line_error(self, second, "another run is writing to",
                          "own --output_dir")
    self.assertTrue(os.path.isdir(output_dir + ".partial"))

  # Case 6: a blown-up run stops and publishes nothing.
  def test_a_diverging_run_stops_without_publishing(self):
    output_dir = os.path.join(self.tmp, "diverged")
    result = run("--learning_rate=100", "--num_runs=2",
                 "--chunk_size=2", "--strategies=all_layers",
                 "--step_scale=0.2", f"--output_dir={output_dir}")
    self.assertEqual(result.returncode, 1, result.stderr)
    assert_one_line_error(self, result, "diverged", "lower the learning rate")
    self.assertFalse(os.path.exists(output_dir))


if __name__ == "__main__":
  unittest.main()
