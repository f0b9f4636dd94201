"""The output directory of a run: results.json, figures, TensorBoard logs.

Nothing is ever half-written. While a run works, everything goes to a staging
directory ``<output_dir>.partial``; ``finish`` moves it into place with
renames, so ``--output_dir`` holds either the previous complete run or the new
complete run, never a mixture. Single files are written to a temporary name
and renamed (``os.replace`` is atomic on POSIX), so a crash never leaves a
truncated results.json or checkpoint behind.
"""
import json
import os
import platform
import shutil
import sys
import tempfile
import time

from absl import flags
import keras
import numpy as np
import tensorflow as tf

from tfscratch.errors import OutputDirError


def _current_umask():
  umask = os.umask(0)
  os.umask(umask)
  return umask


def write_atomically(path, write):
  """Calls ``write(file_object)`` on a temporary file, then renames it to path."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  handle, temporary = tempfile.mkstemp(
      dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
  try:
    with os.fdopen(handle, "wb") as f:
      write(f)
      f.flush()
      os.fsync(f.fileno())
    # mkstemp creates the file private (0600); give it the usual permissions.
    os.chmod(temporary, 0o666 & ~_current_umask())
    os.replace(temporary, path)
  except BaseException:
    if os.path.exists(temporary):
      os.remove(temporary)
    raise


def _to_json(value):
  """Lets json.dump write NumPy scalars and arrays."""
  if isinstance(value, np.generic):
    return value.item()
  if isinstance(value, np.ndarray):
    return value.tolist()
  raise TypeError(f"cannot write {type(value).__name__} to JSON")


def write_json(path, data):
  """Writes ``data`` as indented JSON, atomically."""
  text = json.dumps(data, indent=2, sort_keys=True, default=_to_json) + "\n"
  write_atomically(path, lambda f: f.write(text.encode("utf-8")))


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
    overwrite: replace a finished run already in ``output_dir``. Without it
      an existing, non-empty ``output_dir`` is an error.
    resume: keep what an interrupted run left in the staging directory
      instead of starting from an empty one.
  """

  def __init__(self, output_dir, overwrite=False, resume=False):
    self.output_dir = os.path.abspath(output_dir)
    if (os.path.isdir(self.output_dir) and os.listdir(self.output_dir)
        and not overwrite):
      raise OutputDirError(
          f"{self.output_dir} already holds a run; pass --overwrite to replace "
          "it (it stays intact until the new run finishes) or choose another "
          "--output_dir")
    if os.path.exists(self.output_dir) and not os.path.isdir(self.output_dir):
      raise OutputDirError(f"{self.output_dir} exists and is not a directory")
    self.staging_dir = self.output_dir + ".partial"
    if os.path.isdir(self.staging_dir) and not resume:
      shutil.rmtree(self.staging_dir)
    os.makedirs(self.staging_dir, exist_ok=True)
    self.start_time = time.time()
    self.summary_writer = tf.summary.create_file_writer(
        os.path.join(self.staging_dir, "tensorboard"))
    print(f"writing to {self.staging_dir} (moved to {self.output_dir} when "
          "the run finishes); TensorBoard: tensorboard --logdir "
          f"{self.staging_dir}", flush=True)

  def path(self, name):
    """The path of file ``name`` inside the (staging) run directory."""
    return os.path.join(self.staging_dir, name)

  def write_json(self, name, data):
    write_json(self.path(name), data)

  def save_figure(self, figure, name):
    from tfscratch.figures import save_figure
    save_figure(figure, self.path(name))

  def finish(self, metrics):
    """Writes results.json (metrics + flags, seed, versions, wall time) and
    moves the staging directory to ``output_dir``. Returns the results."""
    self.summary_writer.close()
    run_flags = program_flags()
    results = dict(metrics)
    results.update({
        "flags": run_flags,
        "seed": run_flags.get("seed"),
        "versions": versions(),
        "wall_time_seconds": round(time.time() - self.start_time, 3),
        "command": " ".join(sys.orig_argv),
    })
    self.write_json("results.json", results)
    previous = self.output_dir + ".previous"
    if os.path.isdir(previous):
      shutil.rmtree(previous)
    if os.path.isdir(self.output_dir):
      os.rename(self.output_dir, previous)
    os.rename(self.staging_dir, self.output_dir)
    if os.path.isdir(previous):
      shutil.rmtree(previous)
    print(f"results: {os.path.join(self.output_dir, 'results.json')}",
          flush=True)
    return results
