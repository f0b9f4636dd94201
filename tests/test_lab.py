"""The lab: run outputs (and the data they must never lose), the monitor and
its guard, the shared flags, and TensorFlow's quiet start-up."""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import importlib.metadata
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from unittest import mock

import numpy as np
from tensorboard.backend.event_processing import event_accumulator
import tensorflow as tf

from tests.cli_checks import assert_one_line_error
from tfscratch import _startup
from tfscratch.lab import cli
from tfscratch.lab.errors import DivergenceError, NonFiniteError, OutputDirError
from tfscratch.lab.figures import plt
from tfscratch.lab.files import write_json
from tfscratch.lab.monitor import Guard, Monitor, format_duration
from tfscratch.lab.outputs import MARKER, RunOutputs


def read_results(output_dir):
  with open(os.path.join(output_dir, "results.json")) as f:
    return json.load(f)


class RunOutputsTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.root = tempfile.mkdtemp(dir=self.get_temp_dir())

  def test_finish_writes_results_and_moves_staging_into_place(self):
    output_dir = os.path.join(self.root, "fresh")
    outputs = RunOutputs(output_dir)
    self.assertFalse(os.path.exists(output_dir))
    figure, axes = plt.subplots()
    axes.plot([0, 1])
    outputs.save_figure(figure, "curve.png")
    outputs.finish({"accuracy": np.float32(0.5)})
    self.assertFalse(os.path.exists(output_dir + ".partial"))
    written = read_results(output_dir)
    self.assertEqual(written["accuracy"], 0.5)
    for key in ("flags", "seed", "versions", "wall_time_seconds"):
      self.assertIn(key, written)
    self.assertEqual(written["versions"]["tensorflow"], tf.__version__)
    self.assertTrue(os.path.isfile(os.path.join(output_dir, MARKER)))
    with open(os.path.join(output_dir, "curve.png"), "rb") as f:
      self.assertEqual(f.read(4), b"\x89PNG")

  def test_existing_run_needs_overwrite_and_survives_a_failed_run(self):
    output_dir = os.path.join(self.root, "existing")
    RunOutputs(output_dir).finish({"run": 1})
    with self.assertRaisesRegex(OutputDirError, "--overwrite"):
      RunOutputs(output_dir)
    unfinished = RunOutputs(output_dir, overwrite=True)
    unfinished.write_json("partial.json", {})
    unfinished.release()
    # The second run never finished: the first is untouched.
    self.assertEqual(read_results(output_dir)["run"], 1)
    RunOutputs(output_dir, overwrite=True).finish({"run": 3})
    self.assertEqual(read_results(output_dir)["run"], 3)
    self.assertFalse(os.path.exists(os.path.join(output_dir, "partial.json")))

  def test_resume_keeps_the_staging_directory(self):
    output_dir = os.path.join(self.root, "resumed")
    first = RunOutputs(output_dir)
    first.write_json("chunk_0.json", {"done": True})
    first.release()
    second = RunOutputs(output_dir)
    self.assertFalse(os.path.exists(second.path("chunk_0.json")))
    second.write_json("chunk_0.json", {"done": True})
    second.release()
    self.assertTrue(os.path.exists(
        RunOutputs(output_dir, resume=True).path("chunk_0.json")))

  def test_overwrite_never_replaces_what_is_not_a_run(self):
    folder = os.path.join(self.root, "my_photos")
    os.makedirs(folder)
    with open(os.path.join(folder, "holiday.jpg"), "w") as f:
      f.write("precious")
    with self.assertRaisesRegex(OutputDirError, "not a run of this project"):
      RunOutputs(folder, overwrite=True)
    self.assertTrue(os.path.isfile(os.path.join(folder, "holiday.jpg")))
    # A parent of runs is not a run either.
    runs = os.path.join(self.root, "runs")
    RunOutputs(os.path.join(runs, "a")).finish({})
    with self.assertRaisesRegex(OutputDirError, "not a run of this project"):
      RunOutputs(runs, overwrite=True)
    self.assertTrue(os.path.isfile(os.path.join(runs, "a", "results.json")))

  def test_a_foreign_staging_directory_is_never_deleted(self):
    output_dir = os.path.join(self.root, "out")
    os.makedirs(output_dir + ".partial")
    with open(os.path.join(output_dir + ".partial", "notes.txt"), "w") as f:
      f.write("mine")
    with self.assertRaisesRegex(OutputDirError, "not a run of this project"):
      RunOutputs(output_dir)
    self.assertTrue(os.path.isfile(
        os.path.join(output_dir + ".partial", "notes.txt")))

  def test_refuses_the_current_directory_its_parents_empty_and_protected(self):
    with mock.patch("os.getcwd", return_value=self.root):
      for output_dir in (".", self.root, os.path.dirname(self.root)):
        with self.assertRaisesRegex(OutputDirError, "current directory"):
          RunOutputs(output_dir, overwrite=True)
    for output_dir in ("", "  "):
      with self.assertRaisesRegex(OutputDirError, "--output_dir is empty"):
        RunOutputs(output_dir, overwrite=True)
    data = os.path.join(self.root, "data", "mnist")
    os.makedirs(data)
    for output_dir in (data, os.path.dirname(data)):
      with self.assertRaisesRegex(OutputDirError, "which this run reads"):
        RunOutputs(output_dir, overwrite=True, protected=[data])
    self.assertTrue(os.path.isdir(data))

  def test_a_second_concurrent_run_fails_at_once(self):
    output_dir = os.path.join(self.root, "busy")
    first = RunOutputs(output_dir)
    first.write_json("work.json", {"step": 1})
    with self.assertRaisesRegex(OutputDirError, "another run is writing"):
      RunOutputs(output_dir, overwrite=True)
    self.assertTrue(os.path.isfile(first.path("work.json")))
    first.finish({"run": 1})
    RunOutputs(output_dir, overwrite=True).finish({"run": 2})
    self.assertEqual(read_results(output_dir)["run"], 2)

  def test_what_appears_in_the_output_dir_during_a_run_is_kept(self):
    nest = os.path.join(self.root, "nest")
    outer = RunOutputs(nest)
    RunOutputs(os.path.join(nest, "inner")).finish({"run": "inner"})
    with self.assertRaisesRegex(OutputDirError, "was filled while this run "
                                "worked, so nothing was replaced"):
      outer.finish({"run": "outer"})
    self.assertEqual(read_results(os.path.join(nest, "inner"))["run"], "inner")
    self.assertTrue(os.path.isfile(outer.path("results.json")))
    outer.release()
    # The same with --overwrite: the directory now is not a run of ours.
    with open(os.path.join(self.root, "notes.txt"), "w") as f:
      f.write("x")
    run = os.path.join(self.root, "run")
    RunOutputs(run).finish({"run": 1})
    second = RunOutputs(run, overwrite=True)
    os.remove(os.path.join(run, MARKER))
    os.remove(os.path.join(run, "results.json"))
    os.rename(os.path.join(self.root, "notes.txt"),
              os.path.join(run, "notes.txt"))
    with self.assertRaisesRegex(OutputDirError, "was filled"):
      second.finish({"run": 2})
    self.assertTrue(os.path.isfile(os.path.join(run, "notes.txt")))
    second.release()

  def test_a_symlinked_output_dir_is_written_where_it_points(self):
    target = os.path.join(self.root, "target")
    link = os.path.join(self.root, "link")
    RunOutputs(target).finish({"run": 1})
    os.symlink(target, link)
    RunOutputs(link, overwrite=True).finish({"run": 2})
    self.assertEqual(read_results(target)["run"], 2)
    self.assertTrue(os.path.islink(link))
    os.remove(link)  # tf.test's clean-up would follow it
    loop = os.path.join(self.root, "loop")
    os.symlink(loop, loop)
    with self.assertRaisesRegex(OutputDirError, "symbolic link that loops"):
      RunOutputs(loop)
    os.remove(loop)

  def test_finish_can_record_other_flags_and_seed(self):
    output_dir = os.path.join(self.root, "merged")
    RunOutputs(output_dir).finish({}, recorded_flags={"seed": 3, "n": 4},
                                  seed=3)
    results = read_results(output_dir)
    self.assertEqual(results["flags"], {"seed": 3, "n": 4})
    self.assertEqual(results["seed"], 3)

  def test_failed_write_leaves_the_old_file(self):
    path = os.path.join(self.root, "data.json")
    write_json(path, {"a": 1})
    with self.assertRaises(TypeError):
      write_json(path, {"a": object()})
    with open(path) as f:
      self.assertEqual(json.load(f), {"a": 1})
    self.assertEqual(os.listdir(self.root), ["data.json"])

  def test_json_is_standard_json(self):
    path = os.path.join(self.root, "data.json")
    write_json(path, {"a": float("inf"), "b": [np.float32("nan"), 1.5]})
    with open(path) as f:
      text = f.read()
    self.assertNotIn("Infinity", text)
    self.assertNotIn("NaN", text)
    self.assertEqual(json.loads(text), {"a": None, "b": [None, 1.5]})


class MonitorTest(tf.test.TestCase):

  def test_prints_step_loss_rate_and_eta_at_log_boundaries(self):
    monitor = Monitor(total_steps=10, every=5, label="plain")
    with mock.patch("sys.stdout", new_callable=io.StringIO) as stdout:
      for first in (0, 3, 6, 9):
        count = min(3, 10 - first)
        monitor.record(first, [1.0 / (first + k + 1) for k in range(count)])
    lines = stdout.getvalue().splitlines()
    self.assertLen(lines, 2)  # crossing 5 (at 6) and the last step
    self.assertRegex(lines[0], r"^plain step  6/10  loss 0\.1667  .* steps/s"
                     r"  ETA \d+:\d\d:\d\d$")
    self.assertRegex(lines[1], r"^plain step 10/10  loss 0\.1000")

  def test_non_finite_loss_names_the_exact_step(self):
    guard = Guard()
    guard.check(0, [0.5, 0.4])
    with self.assertRaisesRegex(NonFiniteError, "nan at step 5"):
      guard.check(2, [0.3, 0.2, float("nan"), 0.1])
    with self.assertRaisesRegex(NonFiniteError, "inf at step 3"):
      Guard().check(0, np.float32([1, 1, np.inf]))

  def test_divergence_needs_patience_reads_in_a_row(self):
    guard = Guard(factor=10, patience=3)
    guard.check(0, [1.0, 0.9])
    guard.check(2, [50.0])
    guard.check(3, [50.0])
    guard.check(4, [0.5])  # back below: the count starts again
    guard.check(5, [50.0])
    guard.check(6, [50.0])
    with self.assertRaisesRegex(DivergenceError,
                                r"mean loss 50 up to step 8 .* 10x the first "
                                r"step's 1 for 3 reads"):
      guard.check(7, [50.0])

  def test_a_blown_up_last_read_stops_even_a_short_run(self):
    guard = Guard(factor=10, patience=3)
    guard.check(0, [1.0])
    with self.assertRaisesRegex(DivergenceError, "at the end of the run"):
      guard.check(1, [50.0], last=True)
    Guard(factor=10, patience=3).check(0, [1.0, 5.0], last=True)  # below 10x

  def test_losses_reach_tensorboard_in_one_compiled_call(self):
    directory = tempfile.mkdtemp(dir=self.get_temp_dir())
    writer = tf.summary.create_file_writer(directory)
    monitor = Monitor(total_steps=5, every=5)
    with mock.patch("sys.stdout", new_callable=io.StringIO):
      monitor.record(0, [1.0, 0.5])  # no default writer: nothing written
      with writer.as_default():
        monitor.record(2, [0.25, 0.125, 0.0625])
    writer.close()
    events = event_accumulator.EventAccumulator(
        directory, size_guidance={event_accumulator.TENSORS: 0})
    events.Reload()
    self.assertEqual(events.Tags()["tensors"], ["loss"])
    self.assertEqual(
        [(e.step, float(tf.make_ndarray(e.tensor_proto)))
         for e in events.Tensors("loss")],
        [(3, 0.25), (4, 0.125), (5, 0.0625)])
    self.assertEqual(monitor.write_losses.experimental_get_tracing_count(), 1)

  def test_a_run_that_learns_is_never_stopped(self):
    guard = Guard(factor=2, patience=1)
    for first, loss in enumerate(np.linspace(2.0, 0.1, 50)):
      guard.check(first, [loss * 1.9 if first == 0 else loss])

  def test_format_duration(self):
    self.assertEqual(format_duration(3725.4), "1:02:05")


CLI_PROGRAM = textwrap.dedent("""
    import contextlib, io, json, os, sys
    import tfscratch
    from absl import flags
    from tfscratch.lab import cli
    cli.define_learning_rate(0.1)
    cli.define_float("weight", 0.0, "A weight.", minimum=0)
    cli.define_run_flags("runs/x")
    def main(argv):
      print("ran", flags.FLAGS.learning_rate, flags.FLAGS.seed)
      if flags.FLAGS.weight == 7:
        open("/nonexistent-dir/file", "w")
      if flags.FLAGS.weight == 8:
        import tensorflow as tf
        tf.math.floormod(tf.constant(1), tf.constant(0))
    if os.environ.get("PARSE_EACH"):
      # One process parses many command lines (a process per case would
      # cost a TensorFlow import each): what each prints and its exit code.
      outcomes = []
      for arg in json.loads(os.environ["PARSE_EACH"]):
        flags.FLAGS.unparse_flags()
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
          try:
            cli.parse_flags(["program", arg])
            code = 0
          except SystemExit as exit_:
            code = exit_.code
        outcomes.append([code, stderr.getvalue()])
      print(json.dumps(outcomes))
    else:
      cli.run(main)
""")


class CliTest(tf.test.TestCase):

  def run_program(self, *args, env=None):
    return subprocess.run([sys.executable, "-c", CLI_PROGRAM, *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})

  def test_bad_values_give_one_line(self):
    cases = (
        ("--learning_rate=inf", "--learning_rate must be finite and > 0"),
        ("--learning_rate=nan", "--learning_rate must be finite and > 0"),
        ("--learning_rate=0", "--learning_rate must be finite and > 0"),
        ("--weight=-1", "--weight must be finite and >= 0"),
        ("--weight=nan", "--weight must be finite and >= 0"),
        ("--seed=4294967296", "seed"),
        ("--seed=-1", "seed"),
        ("--learning_rate=0.5", None),
    )
    result = self.run_program(
        env={"PARSE_EACH": json.dumps([flag for flag, _ in cases])})
    outcomes = json.loads(result.stdout)
    for (flag, message), (code, stderr) in zip(cases, outcomes):
      if message is None:
        self.assertEqual((code, stderr), (0, ""), flag)
        continue
      self.assertEqual(code, 1, flag)
      self.assertIn(message, stderr, flag)
      self.assertLen(stderr.strip().splitlines(), 1, stderr)
      self.assertTrue(stderr.startswith("error: "), stderr)
    # And through cli.run, as a program's user sees it:
    result = self.run_program("--learning_rate=inf")
    self.assertEqual(result.returncode, 1)
    self.assertEqual(result.stderr.strip(),
                     "error: flag --learning_rate=inf: --learning_rate must "
                     "be finite and > 0 (--helpfull lists every flag)")

  def test_help_exits_zero(self):
    result = self.run_program("--helpfull")
    self.assertEqual(result.returncode, 0, result.stderr)
    self.assertIn("--learning_rate", result.stdout)

  def test_good_values_run_and_os_errors_are_one_line(self):
    result = self.run_program("--learning_rate=0.5", "--seed=4294967295")
    self.assertEqual(result.returncode, 0, result.stderr)
    self.assertIn("ran 0.5 4294967295", result.stdout)
    result = self.run_program("--weight=7")
    self.assertEqual(result.returncode, 1)
    self.assertEqual(result.stderr.strip(),
                     "error: /nonexistent-dir/file: No such file or directory")

  def test_op_errors_and_stray_arguments_are_one_line(self):
    result = self.run_program("--weight=8")
    self.assertEqual(result.returncode, 1)
    self.assertRegex(result.stderr.strip(),
                     r"^error: TensorFlow: Integer division by zero.*"
                     r"SCRATCHNETS_TRACEBACK=1 to see the traceback\)$")
    result = self.run_program("extra")
    self.assertEqual(result.returncode, 1)
    self.assertEqual(result.stderr.strip(),
                     "error: unexpected arguments: extra (flags are written "
                     "--name=value; --helpfull lists them)")


OUTPUT_PROGRAM = textwrap.dedent("""
    import os, sys
    import tfscratch
    from absl import flags
    from tfscratch.lab import cli
    from tfscratch.lab.outputs import RunOutputs
    cli.define_run_flags("runs/x")
    def main(argv):
      outputs = RunOutputs(flags.FLAGS.output_dir,
                           overwrite=flags.FLAGS.overwrite)
      outputs.write_json("numbers.json", {"a": 1})
      outputs.finish({"a": 1})
    cli.run(main)
""")


class OutputDirCliTest(tf.test.TestCase):
  """Every output-dir failure is one line naming the path, exit code 1."""

  def run_program(self, output_dir, env=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-c", OUTPUT_PROGRAM, f"--output_dir={output_dir}"],
        capture_output=True, text=True, timeout=120, cwd=cwd,
        env={**os.environ, **(env or {})})

  def error_of(self, output_dir):
    """The one line ``cli.run`` would print for a run into ``output_dir``."""
    try:
      outputs = RunOutputs(output_dir)
      outputs.write_json("numbers.json", {"a": 1})
      outputs.finish({"a": 1})
    except OutputDirError as error:
      return str(error)
    except OSError as error:
      return cli.describe_os_error(error)
    return None

  def test_failures_name_the_path(self):
    root = tempfile.mkdtemp(dir=self.get_temp_dir())
    a_file = os.path.join(root, "a_file")
    with open(a_file, "w") as f:
      f.write("x")
    # Through a real program once: one line on stderr, exit code 1.
    assert_one_line_error(self, self.run_program(os.path.join(a_file, "run")),
                          a_file, "Not a directory")
    self.assertIn("/sys/scratchnets_run", self.error_of("/sys/scratchnets_run"))
    long_name = os.path.join(root, "r" * 250)  # + ".partial" > 255 bytes
    self.assertIn("File name too long", self.error_of(long_name))
    full = os.path.join(root, "full")
    with mock.patch("os.fsync",
                    side_effect=OSError(28, "No space left on device")):
      error = self.error_of(full)
    self.assertIn(full + ".partial", error)
    self.assertIn("No space left on device", error)
    self.assertIn("--output_dir is empty", self.error_of(""))
    here = os.getcwd()
    try:
      os.chdir(root)
      self.assertIn("current directory", self.error_of("."))
    finally:
      os.chdir(here)

  def test_interrupt_during_start_up_is_one_line(self):
    # During TensorFlow's import, and after it (the program's other imports
    # and flag definitions, before cli.run).
    for wait, program in ((0.7, "import tfscratch; import time; "
                                "time.sleep(60)"),
                          (None, "import tfscratch; import time; "
                                 "print('imported', flush=True); "
                                 "time.sleep(60)")):
      process = subprocess.Popen([sys.executable, "-c", program],
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
      if wait is None:
        process.stdout.readline()
      else:
        time.sleep(wait)  # inside TensorFlow's import, which takes seconds
      process.send_signal(signal.SIGINT)
      _, stderr = process.communicate(timeout=60)
      self.assertEqual(process.returncode, 130, stderr)
      self.assertEqual(stderr.strip(), "interrupted")


class StartupTest(tf.test.TestCase):

  def test_noise_is_dropped_and_real_errors_kept(self):
    captured = (
        "WARNING: All log messages before absl::InitializeLog() is called are "
        "written to STDERR\n"
        "I0000 00:00:1.2 2308 port.cc:153] oneDNN custom operations are on.\n"
        "I0000 00:00:1.2 2308 cudart_stub.cc:31] Could not find cuda drivers "
        "on your machine, GPU will not be used.\n"
        "To enable the following instructions: AVX2 FMA, in other operations\n"
        "E0000 00:00:1.5 2308 cuda_platform.cc:52] failed call to cuInit: "
        "UNKNOWN ERROR (303)\n"
        "E0000 00:00:1.6 2308 something.cc:1] a real failure\n")
    self.assertEqual(_startup.filter_lines(captured),
                     "E0000 00:00:1.6 2308 something.cc:1] a real failure\n")
    # With a CUDA driver installed, a failed cuInit is a real diagnostic.
    with_driver = "E0000 00:00:1.5 1 c.cc:52] failed call to cuInit: 999\n"
    self.assertEqual(_startup.filter_lines(with_driver), with_driver)

  def test_a_real_import_prints_nothing_and_the_switch_shows_all(self):
    program = "import tfscratch; print('ok')"
    quiet = subprocess.run([sys.executable, "-c", program],
                           capture_output=True, text=True, timeout=120)
    self.assertEqual((quiet.stdout, quiet.stderr), ("ok\n", ""))
    loud = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True,
        timeout=120, env={**os.environ, _startup.SHOW_ALL_ENV: "all"})
    self.assertEqual(loud.stdout, "ok\n")


class ConstraintsTest(tf.test.TestCase):

  def test_make_installs_the_pinned_versions(self):
    """make (and so CI) installs constraints.txt: the versions the published
    numbers were produced with. Elsewhere a developer may use other ones."""
    if not os.environ.get("CI"):
      self.skipTest("only CI is sure to install through make")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "constraints.txt")) as f:
      pinned = dict(line.strip().split("==") for line in f
                    if "==" in line and not line.startswith("#"))
    for name in ("tensorflow", "keras", "numpy", "absl-py", "matplotlib",
                 "tensorboard"):
      self.assertEqual(importlib.metadata.version(name), pinned[name], name)


if __name__ == "__main__":
  tf.test.main()
