"""Writing files so that a crash never leaves half of one behind.

Each file is written to a temporary name in the same directory, flushed to
disk, then renamed over the target: ``os.replace`` is atomic on POSIX, so a
reader sees the old file or the new one, never a mixture.
"""
import json
import math
import os
import tempfile

import numpy as np


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
  except BaseException as error:
    if os.path.exists(temporary):
      os.remove(temporary)
    if isinstance(error, OSError) and error.filename is None:
      # A full disk fails in write or fsync, whose errors name no file.
      raise OSError(error.errno, error.strerror, path) from error
    raise


def to_plain(value):
  """``value`` with NumPy scalars/arrays turned into Python ones and every
  NaN or infinity into None, so that the JSON written is standard JSON
  (which has no NaN or Infinity) and any reader can load it."""
  if isinstance(value, dict):
    return {key: to_plain(item) for key, item in value.items()}
  if isinstance(value, (list, tuple)):
    return [to_plain(item) for item in value]
  if isinstance(value, np.ndarray):
    return to_plain(value.tolist())
  if isinstance(value, np.generic):
    value = value.item()
  if isinstance(value, float) and not math.isfinite(value):
    return None
  return value


def write_json(path, data):
  """Writes ``data`` as indented, standard JSON, atomically."""
  text = json.dumps(to_plain(data), indent=2, sort_keys=True,
                    allow_nan=False) + "\n"
  write_atomically(path, lambda f: f.write(text.encode("utf-8")))
