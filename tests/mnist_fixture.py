"""The real MNIST for tests: loaded once per validation_size, skipped if absent.

Usage in a test module::

  from tests.mnist_fixture import real_mnist

  mnist = real_mnist(validation_size=0)
"""
import functools
import os
import unittest

from tfscratch.lab.mnist import DATA_DIR_ENV
from tfscratch.lab.mnist import load_mnist
from tfscratch.lab.mnist import MnistNotFoundError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_MNIST_DIR = os.path.normpath(
    os.path.join(REPO_ROOT, "..", "shared", "data", "mnist"))


@functools.lru_cache(maxsize=None)
def real_mnist(validation_size=5000):
  """Loads the real MNIST with load_mnist(), once per validation_size.

  Looks in $MNIST_DATA_DIR if set, else ../shared/data/mnist beside the repo
  if that exists, else where load_mnist looks by default (the Keras cache,
  then the download).

  Raises:
    MnistNotFoundError: nothing found and $CI is set, so the test fails.
    unittest.SkipTest: nothing found outside CI; the reason is the loader's
      message.
  """
  data_dir = None
  if not os.environ.get(DATA_DIR_ENV) and os.path.isdir(SHARED_MNIST_DIR):
    data_dir = SHARED_MNIST_DIR
  try:
    return load_mnist(data_dir, validation_size=validation_size)
  except MnistNotFoundError as error:
    if os.environ.get("CI"):
      raise
    raise unittest.SkipTest(str(error)) from error
