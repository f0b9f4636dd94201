"""The blog's data: 1,000 training images walked in order, and the test set.

The blog read MNIST with the old TensorFlow tutorial loader, which held out
the FIRST 5,000 images of the training file as validation, so its
``mnist.train.images[0:1000]`` are images 5,000..5,999 of the file. We take
the same images (``train_offset=5000``); the held-out 5,000 serve as a
validation set, used only to choose learning rates for other optimizers.
"""
import dataclasses

import numpy as np

from tfscratch.lab.errors import DataError
from tfscratch.lab.mnist import load_mnist
from tfscratch.lab.mnist import Split
from tfscratch.nn import ordered_batch

BATCH_SIZE = 50
BLOG_TRAIN_OFFSET = 5000
BLOG_TRAIN_SIZE = 1000


@dataclasses.dataclass(frozen=True)
class ExperimentData:
  """train: the images trained on; validation: MNIST training-file images
  0..4,999 (never trained on); test: the 10,000 test images."""
  train: Split
  validation: Split
  test: Split
  source: str


def load_data(data_dir=None, train_size=BLOG_TRAIN_SIZE,
              train_offset=BLOG_TRAIN_OFFSET):
  """Loads MNIST and cuts out the training images the blog used.

  Args:
    train_size: how many training images (a multiple of BATCH_SIZE).
    train_offset: index, in the 60,000-image training file, of the first one.
  Raises:
    DataError: the range does not fit in the training file or does not hold
      whole batches (and the loader's own errors for missing/corrupt files).
  """
  if train_size <= 0 or train_size % BATCH_SIZE:
    raise DataError(f"train_size={train_size} must be a positive multiple of "
                    f"the batch size {BATCH_SIZE}")
  mnist = load_mnist(data_dir, validation_size=0)
  available = len(mnist.train)
  if not 0 <= train_offset <= available - train_size:
    raise DataError(
        f"training images {train_offset}..{train_offset + train_size - 1} do "
        f"not fit in the {available} images of the training file")
  images, labels = mnist.train.images, mnist.train.labels
  validation_stop = min(BLOG_TRAIN_OFFSET, train_offset)
  return ExperimentData(
      train=Split(images[train_offset:train_offset + train_size],
                  labels[train_offset:train_offset + train_size]),
      validation=Split(images[:validation_stop], labels[:validation_stop]),
      test=mnist.test,
      source=mnist.source)


def batches(train, lit):
  """Every distinct training batch, stacked for the training loop.

  Step i of every phase uses batch i mod K (K = n / 50): images 50 i mod n
  onward, in file order, exactly as the blog's ``start = (50*i) % 1000``.

  Args:
    train: the training Split; its size is a multiple of BATCH_SIZE.
    lit: the pixel indices the model trains on (``StackedNetworks.lit``).
  Returns:
    (images float32 (K, 50, P), labels int64 (K, 50)).
  """
  images = train.images[:, lit]
  pairs = [ordered_batch(images, train.labels, BATCH_SIZE, step)
           for step in range(len(train) // BATCH_SIZE)]
  return (np.stack([x for x, _ in pairs]), np.stack([y for _, y in pairs]))
