"""The output directory of a run: results.json, figures, TensorBoard logs.

Rules that keep a user's data safe:

* Nothing is ever half-written. While a run works, everything goes to a
  staging directory ``<output_dir>.partial``; ``finish`` moves it into place
  with renames, so ``--output_dir`` holds either the previous complete run or
  the new complete run, never a mixture. Single files are written atomically
  (``files.write_atomically``).
* Only a run of this project is ever replaced or deleted. Every run directory
  carries a marker file (``MARKER``); ``--overwrite`` replaces a directory
  only if it holds that marker (or is empty), and a staging directory is
  cleared only if it holds it too. The current directory, the home
  directory, any parent of either, and any ``protected`` path (a data
  directory, the shards being merged) or a parent of one are refused outright.
* One run at a time per output directory. A run holds an exclusive lock on
  ``<output_dir>.lock`` from start to finish (released by the OS even if the
  process is killed), so a second run into the same directory fails at once
  instead of deleting the first one's staging directory.
* A symbolic link is followed: the run is written where it points.
"""
import fcntl
import json
import os
import platform
import shutil
import sys
import time

from absl import flags
import keras
import numpy as np
import tensorflow as tf

from tfscratch.lab.errors import OutputDirError
from tfscratch.lab.files import write_json
from tfscratch.lab.figures import save_figure

MARKER = ".scratchnets-run"


def program_flags():
  """The values of the flags the program itself defined (not absl's or
  TensorFlow's own)."""
  values = {}
  for module, module_flags in flags.FLAGS.flags_by_module_dict().items():
    if module.split(".")[0] in ("absl", "tensorflow", "keras"):
      continue
    for flag in module_flags:
      values[flag.name] = flag.value
  return values


def versions():
  return {
      "python": platform.python_version(),
      "tensorflow": tf.__version__,
      "keras": keras.__version__,
      "numpy": np.__version__,
  }


def is_project_run(path):
  """True if ``path`` is a directory this project wrote: it holds the marker,
  or (runs written before the marker existed) a results.json with the
  ``command`` and ``versions`` keys every run of ours records."""
  if not os.path.isdir(path) or os.path.islink(path):
    return False
  if os.path.isfile(os.path.join(path, MARKER)):
    return True
  try:
    with open(os.path.join(path, "results.json"), encoding="utf-8") as f:
      results = json.load(f)
  except (OSError, ValueError):
    return False
  return isinstance(results, dict) and {"command", "versions"} <= set(results)


def _is_within(path, parent):
  """True if ``path`` is ``parent`` or inside it (both absolute, resolved)."""
  return os.path.commonpath([path, parent]) == parent


def check_output_dir(output_dir, protected=()):
  """The resolved output directory, or OutputDirError if it must not be used.

  ``protected``: paths that must survive the run (input data, shards being
  merged); the output directory may be neither one of them nor a parent.
  """
  if not output_dir or not output_dir.strip():
    raise OutputDirError("--output_dir is empty; name a new directory for the "
                         "run, e.g. --output_dir=runs/mine")
  resolved = os.path.realpath(output_dir)
  if os.path.islink(resolved):  # realpath stops at a link that loops
    raise OutputDirError(f"--output_dir={output_dir} is a symbolic link that "
                         "loops; point it at a directory or remove it")
  cwd = os.path.realpath(os.getcwd())
  home = os.path.realpath(os.path.expanduser("~"))
  for place, what in ((cwd, "the current directory"),
                      (home, "the home directory")):
    if _is_within(place, resolved):
      raise OutputDirError(
          f"--output_dir={output_dir} is {what} or a parent of it; a run "
          "needs a directory of its own, e.g. --output_dir=runs/mine")
  for path in protected:
    if path and _is_within(os.path.realpath(path), resolved):
      raise OutputDirError(
          f"--output_dir={output_dir} would replace {path}, which this run "
          "reads; choose another --output_dir")
  if os.path.exists(resolved) and not os.path.isdir(resolved):
    raise OutputDirError(f"{resolved} exists and is not a directory")
  parent = os.path.dirname(resolved)
  while not os.path.exists(parent):
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent):
    raise OutputDirError(f"{parent}: Not a directory (it is a file), so "
                         f"--output_dir={output_dir} cannot be created")
  return resolved


class RunOutputs:
  """Where one run writes, staged so an existing run is never half-replaced.

  Usage::

    outputs = RunOutputs(FLAGS.output_dir, overwrite=FLAGS.overwrite)
    with outputs.summary_writer.as_default():
      tf.summary.scalar("loss", loss, step=step)
    outputs.save_figure(figure, "loss.png")
    outputs.finish({"final_loss": 0.52})   # writes results.json, then swaps

  Args:
    output_dir: the directory the finished run ends up in.
    overwrite: replace an earlier run of this project in ``output_dir``.
      Without it an existing, non-empty ``output_dir`` is an error; with it,
      a directory that is not a run of this project still is.
    resume: keep what an interrupted run left in the staging directory
      instead of starting from an empty one.
    protected: paths the run reads, which the output may not replace.
  """

  def __init__(self, output_dir, overwrite=False, resume=False, protected=()):
    self.output_dir = check_output_dir(output_dir, protected)
    self.overwrite = overwrite
    self.staging_dir = self.output_dir + ".partial"
    self._lock = _lock(self.output_dir + ".lock")
    try:
      self._prepare(overwrite, resume)
    except BaseException:
      self.release()
      raise
    self.start_time = time.time()
    self.summary_writer = tf.summary.create_file_writer(
        os.path.join(self.staging_dir, "tensorboard"))
    print(f"writing to {self.staging_dir} (moved to {self.output_dir} when "
          "the run finishes); TensorBoard: tensorboard --logdir "
          f"{self.output_dir}/tensorboard (while running: "
          f"{self.staging_dir}/tensorboard)", flush=True)

  def _prepare(self, overwrite, resume):
    if os.path.isdir(self.output_dir) and os.listdir(self.output_dir):
      if not overwrite:
        raise OutputDirError(
            f"{self.output_dir} already holds a run; pass --overwrite to "
            "replace it (it stays intact until the new run finishes) or "
            "choose another --output_dir")
      if not is_project_run(self.output_dir):
        raise OutputDirError(
            f"{self.output_dir} is not empty and is not a run of this project; "
            "--overwrite replaces only runs this project wrote. Choose "
            "another --output_dir")
    if os.path.lexists(self.staging_dir):
      if not is_project_run(self.staging_dir):
        raise OutputDirError(
            f"{self.staging_dir} exists and is not a run of this project; "
            "move it away or choose another --output_dir")
      if not resume:
        shutil.rmtree(self.staging_dir)
    os.makedirs(self.staging_dir, exist_ok=True)
    marker = os.path.join(self.staging_dir, MARKER)
    if not os.path.exists(marker):
      write_json(marker, {"program": sys.argv[0], "created": time.time()})

  def release(self):
    """Closes the TensorBoard writer and releases the output directory's lock,
    leaving the staging directory as it is (``finish`` does this too)."""
    if getattr(self, "summary_writer", None) is not None:
      self.summary_writer.close()
    if self._lock is not None:
      self._lock.close()
      self._lock = None

  def path(self, name):
    """The path of file ``name`` inside the (staging) run directory."""
    return os.path.join(self.staging_dir, name)

  def write_json(self, name, data):
    write_json(self.path(name), data)

  def save_figure(self, figure, name):
    save_figure(figure, self.path(name))

  def finish(self, metrics, recorded_flags=None, seed=None):
    """Writes results.json (metrics + flags, seed, versions, wall time) and
    moves the staging directory to ``output_dir``. Returns the results.

    ``recorded_flags``/``seed``: what produced the numbers, when that is not
    this process's own flags (a merge records its shards' settings).
    """
    self.summary_writer.close()
    run_flags = program_flags() if recorded_flags is None else recorded_flags
    results = dict(metrics)
    results.update({
        "flags": run_flags,
        "seed": run_flags.get("seed") if seed is None else seed,
        "versions": versions(),
        "wall_time_seconds": round(time.time() - self.start_time, 3),
        "command": " ".join(sys.orig_argv),
    })
    self.write_json("results.json", results)
    # Checked again now: something may have been put into output_dir while
    # this run worked (another run into a directory inside it, a user's
    # files); that is not this run's to replace.
    if (os.path.isdir(self.output_dir) and os.listdir(self.output_dir) and
        not (self.overwrite and is_project_run(self.output_dir))):
      raise OutputDirError(
          f"{self.output_dir} was filled while this run worked, so nothing "
          f"was replaced; this run's results are in {self.staging_dir}")
    if os.path.lexists(self.output_dir) and not os.path.isdir(self.output_dir):
      raise OutputDirError(
          f"{self.output_dir} appeared (not a directory) while this run "
          f"worked, so nothing was replaced; this run's results are in "
          f"{self.staging_dir}")
    previous = self.output_dir + ".previous"
    if os.path.lexists(previous):
      if not is_project_run(previous):
        raise OutputDirError(
            f"{previous} is in the way and is not a run of this project; "
            f"move it away, then rerun (this run is kept in {self.staging_dir})")
      shutil.rmtree(previous)
    if os.path.isdir(self.output_dir):
      os.rename(self.output_dir, previous)
    os.rename(self.staging_dir, self.output_dir)
    if os.path.isdir(previous):
      shutil.rmtree(previous)
    self.release()
    print(f"results: {os.path.join(self.output_dir, 'results.json')}",
          flush=True)
    return results


def _lock(path):
  """Opens ``path`` and takes an exclusive lock on it, or OutputDirError."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  handle = open(path, "a+", encoding="utf-8")  # pylint: disable=consider-using-with
  try:
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError as error:
    handle.close()
    raise OutputDirError(
        f"another run is writing to {path[:-len('.lock')]} (it holds {path}); "
        "wait for it to finish, or give each concurrent run (each shard) its "
        "own --output_dir") from error
  return handle
