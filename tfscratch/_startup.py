"""Imports TensorFlow without burying the program's output in start-up noise.

TensorFlow 2.x logs from C++ before absl logging is initialised, so
TF_CPP_MIN_LOG_LEVEL alone does not hide the CUDA probe on a machine without
a GPU. Instead, file descriptor 2 points at a temporary file while TensorFlow
is imported and lists its devices (which makes the probe happen here rather
than at the first op). Afterwards the captured lines are sorted:

* informational and warning lines (``I0000 ...``, ``W0000 ...``) and the
  CPU-feature notice are dropped;
* the failed ``cuInit`` of a machine that has no CUDA driver at all is
  dropped too: TensorFlow said just before that it found none;
* anything else (an error from a GPU driver that IS installed, a fatal
  message, a Python warning) is written to stderr as it was.

A failed import raises as usual, with everything captured written out first.
Set ``SCRATCHNETS_TF_LOGS=all`` to see every line TensorFlow prints.
"""
import os
import re
import signal
import sys
import tempfile

SHOW_ALL_ENV = "SCRATCHNETS_TF_LOGS"
_ABSL_PREFIX = re.compile(r"^([IWEF])\d{4} ")
_NOISE = (
    "WARNING: All log messages before absl::InitializeLog() is called",
    "To enable the following instructions:",
)
_NO_DRIVER = "Could not find cuda drivers"
_CUINIT = "failed call to cuInit"


def keep_line(line, no_cuda_driver):
  """True for a captured stderr line that a user should see."""
  match = _ABSL_PREFIX.match(line)
  if match:
    if match.group(1) in "IW":
      return False
    return not (no_cuda_driver and _CUINIT in line)
  return not any(line.startswith(noise) for noise in _NOISE) and bool(
      line.strip())


def filter_lines(text):
  """The lines of ``text`` that ``keep_line`` keeps, joined again."""
  lines = text.splitlines(keepends=True)
  no_cuda_driver = any(_NO_DRIVER in line for line in lines)
  return "".join(line for line in lines if keep_line(line, no_cuda_driver))


def import_tensorflow_quietly():
  """Imports TensorFlow as the module docstring says. Ctrl-C while it loads
  (several seconds) ends the program with one line and exit code 130."""
  try:
    _import()
  except KeyboardInterrupt:
    _interrupted()
  # Until a program reaches tfscratch.lab.cli.run (which restores Python's
  # KeyboardInterrupt), Ctrl-C ends it the same way: its other imports and
  # flag definitions have nothing to keep. Not under a test runner, which
  # handles Ctrl-C itself.
  if "pytest" not in sys.modules:
    signal.signal(signal.SIGINT, lambda signum, frame: _interrupted())


def _interrupted():
  print("interrupted", file=sys.stderr, flush=True)
  sys.exit(130)  # the shell's code for "ended by Ctrl-C"


def _import():
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  if os.environ.get(SHOW_ALL_ENV) == "all":
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    tf.config.list_physical_devices()
    return
  sys.stderr.flush()
  saved_stderr = os.dup(2)
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      import tensorflow as tf  # pylint: disable=import-outside-toplevel
      tf.config.list_physical_devices()
    finally:
      os.dup2(saved_stderr, 2)
      os.close(saved_stderr)
      captured.seek(0)
      kept = filter_lines(captured.read().decode("utf-8", "replace"))
      if kept:
        sys.stderr.write(kept)
        sys.stderr.flush()
