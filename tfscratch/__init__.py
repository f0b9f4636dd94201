"""tfscratch: the small toolbox every scratchnets experiment shares.

Importing this package first silences TensorFlow's start-up chatter (CUDA
probing on a machine without a GPU, CPU-feature notices) so that a program's
own output is what the user reads. Every experiment's ``__main__`` and the test
suite import ``tfscratch`` before anything else touches TensorFlow.

Modules:
  cli         common absl flags (--seed, --output_dir, --overwrite) and ``run``
  errors      the exceptions that end a run with a one-line message
  figures     matplotlib helpers: atomic PNG saving, image grids
  mnist       the MNIST loader (IDX files, validated)
  optimizers  SGD, Adagrad and Adam written out by hand
  outputs     the run directory: results.json, TensorBoard, atomic writes
  progress    progress lines with step, loss, steps/s and ETA
  seeding     one seed for Python, NumPy and TensorFlow
"""
import os
import sys


def _import_tensorflow_quietly():
  """Imports TensorFlow with file descriptor 2 pointed at /dev/null.

  TensorFlow 2.x logs from C++ before absl logging is initialised, so
  TF_CPP_MIN_LOG_LEVEL alone no longer hides the CUDA probe. Listing the
  devices inside the silenced block makes the probe happen here, not at the
  first op. A failed import still raises after stderr is restored.
  """
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  sys.stderr.flush()
  saved_stderr = os.dup(2)
  devnull = os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, 2)
  try:
    import tensorflow as tf
    tf.config.list_physical_devices()
  finally:
    os.dup2(saved_stderr, 2)
    os.close(saved_stderr)
    os.close(devnull)


_import_tensorflow_quietly()
