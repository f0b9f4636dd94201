"""The blog's data: 1,000 training images walked in order, and the test set.

The blog read MNIST with the old TensorFlow tutorial loader, which held out
the FIRST 5,000 images of the training file as validation, so its
``mnist.train.images[0:1000]`` are images 5,000..5,999 of the file. We take
the same images (``train_offset=5000``); the held-out 5,000 serve as a
validation set, used only to choose learning rates for other optimizers.
"""
import dataclasses

import numpy as np

from tfscratch.nn import ordered_batch

BATCH_SIZE = 50
BLOG_TRAIN_OFFSET = 5000
BLOG_TRAIN_SIZE = 1000


def blog_data(mnist, train_size=BLOG_TRAIN_SIZE,
              train_offset=BLOG_TRAIN_OFFSET):
  """Cuts the blog's images out of MNIST.

  Args:
    mnist: MNIST with every training image in ``train`` (a
      ``tfscratch.lab.mnist.Mnist`` loaded with validation_size=0).
    train_size: how many training images.
    train_offset: index, in the training file, of the first one.
  Returns:
    The same type: train = images train_offset.. train_offset+train_size-1;
    validation = images 0..min(5000, train_offset)-1 (never trained on);
    test = the 10,000 test images.
  Raises:
    ValueError: the range does not fit in the training file.
  """
  images, labels = mnist.train.images, mnist.train.labels
  if not 0 <= train_offset <= len(labels) - train_size:
    raise ValueError(
        f"training images {train_offset}..{train_offset + train_size - 1} do "
        f"not fit in the {len(labels)} images of the training file")
  stop = min(BLOG_TRAIN_OFFSET, train_offset)
  train = slice(train_offset, train_offset + train_size)
  return dataclasses.replace(
      mnist,
      train=dataclasses.replace(mnist.train, images=images[train],
                                labels=labels[train]),
      validation=dataclasses.replace(mnist.train, images=images[:stop],
                                     labels=labels[:stop]))


def batches(train, lit, batch_size=BATCH_SIZE):
  """Every distinct training batch, stacked for the training loop.

  Step i of every phase uses batch i mod K (K = n / batch_size): images
  batch_size * i mod n onward, in file order, exactly as the blog's
  ``start = (50*i) % 1000``.

  Args:
    train: the training split; its size is a multiple of ``batch_size``.
    lit: the pixel indices the stack trains on (``StackedNetworks.lit``).
  Returns:
    (images float32 (K, batch_size, P), labels int64 (K, batch_size)).
  """
  if len(train) % batch_size:
    raise ValueError(f"{len(train)} training images are not a whole number "
                     f"of batches of {batch_size}")
  images = train.images[:, lit]
  pairs = [ordered_batch(images, train.labels, batch_size, step)
           for step in range(len(train) // batch_size)]
  return (np.stack([x for x, _ in pairs]), np.stack([y for _, y in pairs]))
