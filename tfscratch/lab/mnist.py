"""MNIST: 70,000 handwritten digits, read from IDX files and checked.

The IDX format
--------------
Each of the four MNIST files is one IDX file, usually gzip-compressed::

  bytes 0-1   two zero bytes
  byte  2     element type; 0x08 = unsigned byte (all MNIST files)
  byte  3     number of dimensions: 1 for labels, 3 for images
  then        one big-endian uint32 per dimension: the size of that
              dimension (labels: count; images: count, rows, columns)
  then        the elements, row-major, one byte each

Read as one big-endian uint32, the first four bytes are the "magic number":
0x00000801 for a label file, 0x00000803 for an image file. A file's length
must be exactly the header plus the product of the sizes. Compression is
recognised by content, not by name: gzip data starts with 1f 8b, an IDX file
with 00 00.

Where the data comes from
-------------------------
``load_mnist`` looks in exactly one of these places, in this order:

1. the ``data_dir`` argument, if given;
2. else the directory in ``$MNIST_DATA_DIR``, if set and not empty;
3. else the Keras cache, ``$KERAS_HOME/datasets/mnist.npz`` (KERAS_HOME
   defaults to ~/.keras);
4. else ``tf.keras.datasets.mnist.load_data()``, which downloads MNIST.

A directory the user named (1 or 2) is the only place looked: if it lacks a
file, loading fails naming it rather than quietly reading other data. A
directory holds the four standard names, each gzip-compressed (``.gz``) or
raw (the ``.gz`` file wins if both are there)::

  train-images-idx3-ubyte   train-labels-idx1-ubyte
  t10k-images-idx3-ubyte    t10k-labels-idx1-ubyte

Nothing is cached between calls: each call reads the files again.
"""
import dataclasses
import gzip
import math
import os
import struct
import zipfile
import zlib

import numpy as np
import tensorflow as tf

from tfscratch.lab.errors import DataError
from tfscratch.nn import IMAGE_SIZE, NUM_CLASSES

DATA_DIR_ENV = "MNIST_DATA_DIR"
FILE_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_GZIP_MAGIC = b"\x1f\x8b"
_UNSIGNED_BYTE = 0x08


class MnistNotFoundError(DataError):
  """No MNIST where ``load_mnist`` looked; the message lists each place."""


@dataclasses.dataclass(frozen=True)
class Split:
  """One part of MNIST (train, validation or test).

  Attributes:
    images: float32 array (n, 784), pixels scaled from 0..255 to [0, 1], each
      28x28 image flattened row by row.
    labels: int64 array (n,), the digits 0..9.
  """
  images: np.ndarray
  labels: np.ndarray

  def __len__(self):
    return len(self.labels)

  def one_hot(self):
    """The labels as float32 (n, 10): 1.0 at the digit, 0.0 elsewhere."""
    return np.eye(NUM_CLASSES, dtype=np.float32)[self.labels]

  def take(self, count):
    """The first ``count`` examples as a new Split."""
    if not 0 <= count <= len(self):
      raise DataError(
          f"cannot take {count} examples from a split of {len(self)}")
    return Split(self.images[:count], self.labels[:count])


@dataclasses.dataclass(frozen=True)
class Mnist:
  """The three splits and where they were read from.

  ``validation`` holds 0 examples when ``load_mnist`` got validation_size=0.
  """
  train: Split
  validation: Split
  test: Split
  source: str


_KINDS = {1: "labels", 3: "images"}  # IDX dimensions -> what MNIST stores


def read_idx(path, expected=None):
  """Reads one IDX file, gzip-compressed or raw, into a uint8 array.

  Only the two kinds of IDX file MNIST uses are accepted: unsigned bytes in 1
  dimension (labels) or 3 dimensions (images).

  Args:
    path: the file. Compression is detected from the first two bytes.
    expected: "labels" or "images" to refuse the other kind (a swapped file
      is named as such, not reported as truncated); None accepts both.
  Returns:
    A uint8 array with the shape the header gives.
  Raises:
    DataError: naming ``path``, when the file cannot be read, is corrupt
      gzip, has another magic number, or is not exactly as long as its
      header says.
  """
  path = os.fspath(path)
  try:
    with open(path, "rb") as f:
      data = f.read()
  except OSError as error:
    raise DataError(f"{path}: cannot read: {error.strerror}") from error
  compressed = data[:2] == _GZIP_MAGIC
  if compressed:
    try:
      data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
      raise DataError(f"{path}: corrupt gzip data: {error}") from error
  if len(data) < 4:
    raise DataError(f"{path}: {len(data)} bytes, too short for an IDX header")
  magic = int.from_bytes(data[:4], "big")
  ndim = data[3]
  if data[:2] != b"\0\0" or data[2] != _UNSIGNED_BYTE or ndim not in (1, 3):
    raise DataError(
        f"{path}: magic number 0x{magic:08x} is not that of an MNIST IDX file "
        "(0x00000801 for labels, 0x00000803 for images)")
  if expected is not None and _KINDS[ndim] != expected:
    wanted = {"labels": "0x00000801", "images": "0x00000803"}[expected]
    raise DataError(
        f"{path}: holds {_KINDS[ndim]} (magic number 0x{magic:08x}) where "
        f"{expected} were expected (magic number {wanted}); are two MNIST "
        "files swapped or misnamed?")
  header_size = 4 + 4 * ndim
  if len(data) < header_size:
    raise DataError(f"{path}: {len(data)} bytes, too short for the "
                    f"{header_size}-byte header of a {ndim}-D IDX file")
  shape = struct.unpack(f">{ndim}I", data[4:header_size])
  expected = header_size + math.prod(shape)
  if len(data) != expected:
    problem = "truncated" if len(data) < expected else "trailing bytes"
    decompressed = " (after decompression)" if compressed else ""
    raise DataError(
        f"{path}: {problem}: the header gives shape {shape}, so expected "
        f"{expected} bytes, found {len(data)}{decompressed}")
  return np.frombuffer(data, np.uint8, offset=header_size).reshape(shape).copy()


def load_mnist(data_dir=None, validation_size=5000, validation_first=False):
  """Loads MNIST from the first place in the search order (module docstring).

  Args:
    data_dir: a directory (str or path) with the four IDX files; None to search
      $MNIST_DATA_DIR, the Keras cache, then the Keras download.
    validation_size: how many training images form the validation split
      (the classic 55,000/5,000 split by default); 0 for none.
    validation_first: take the validation images from the *start* of the
      training file, as TensorFlow 1's tutorial reader (``read_data_sets``)
      did, and with it every 2016 R2RT post: its ``mnist.train`` was images
      5,000-59,999, so the blogs' "first 1,000 training images" are images
      5,000-5,999 of the file. False (default): from the end.
  Returns:
    A Mnist whose train split holds 60,000 - validation_size training images
    (the first ones, or the last ones with validation_first) and whose test
    split holds the 10,000 test images.
  Raises:
    MnistNotFoundError: the files are not where the search looked.
    DataError: a file is corrupt or inconsistent, or validation_size is not
      in [0, number of training images).
  """
  if data_dir is not None:
    data_dir = os.fspath(data_dir)
    if not data_dir.strip():
      raise MnistNotFoundError(
          "--data_dir is empty; name the directory with the four MNIST IDX "
          f"files, or leave it out to use ${DATA_DIR_ENV} or the Keras cache")
    arrays, source = _read_directory(data_dir, f"data_dir {data_dir}")
  elif os.environ.get(DATA_DIR_ENV):
    directory = os.environ[DATA_DIR_ENV]
    arrays, source = _read_directory(directory,
                                     f"${DATA_DIR_ENV}={directory}")
  else:
    arrays, source = _read_keras()
  return _split(arrays, validation_size, validation_first, source)


def _read_directory(directory, description):
  """Reads the four IDX files in ``directory``; returns (arrays, directory).

  ``description`` says how the directory was chosen, for error messages.
  """
  if not os.path.isdir(directory):
    raise MnistNotFoundError(
        f"MNIST not found: {description} is not a directory")
  paths = {}
  missing = []
  for key, name in FILE_NAMES.items():
    tried = [os.path.join(directory, name + ".gz"),
             os.path.join(directory, name)]
    found = [path for path in tried if os.path.isfile(path)]
    folders = [path for path in tried if os.path.isdir(path)]
    if not found and folders:
      raise DataError(f"{folders[0]} is a directory; expected the IDX file "
                      f"{name} (gzip or raw) there")
    if found:
      paths[key] = found[0]
    else:
      missing.append(f"{tried[0]} (also tried {tried[1]})")
  if missing:
    raise MnistNotFoundError(
        f"MNIST not found: {description} lacks {len(missing)} of the 4 "
        f"files: missing {', '.join(missing)}")
  arrays = {key: read_idx(path, expected=key.split("_")[1])
            for key, path in paths.items()}
  _check(arrays, paths)
  return arrays, directory


def _read_keras():
  """Reads the Keras cache file, else downloads; returns (arrays, source)."""
  keras_home = os.environ.get("KERAS_HOME") or os.path.expanduser("~/.keras")
  cache_path = os.path.join(keras_home, "datasets", "mnist.npz")
  if os.path.isfile(cache_path):
    return _read_npz(cache_path), cache_path
  try:
    (train_images, train_labels), (test_images, test_labels) = (
        tf.keras.datasets.mnist.load_data())
  # Keras reports a failed download as a bare Exception, so catch them all.
  except Exception as error:  # pylint: disable=broad-except
    raise MnistNotFoundError(
        "MNIST not found. Looked at: "
        f"${DATA_DIR_ENV} (not set or empty); "
        f"the Keras cache {cache_path} (no such file); "
        f"the Keras download (failed: {error}). "
        f"Pass data_dir or set {DATA_DIR_ENV} to a directory with the four "
        "MNIST IDX files.") from error
  source = "tf.keras.datasets.mnist.load_data() (download)"
  arrays = {"train_images": train_images, "train_labels": train_labels,
            "test_images": test_images, "test_labels": test_labels}
  _check(arrays, {key: f"{source}[{key}]" for key in arrays})
  return arrays, source


def _read_npz(path):
  """Reads the Keras cache file (arrays x_train, y_train, x_test, y_test)."""
  npz_keys = {"train_images": "x_train", "train_labels": "y_train",
              "test_images": "x_test", "test_labels": "y_test"}
  try:
    with np.load(path) as npz:
      missing = sorted(set(npz_keys.values()) - set(npz.files))
      if missing:
        raise DataError(f"{path}: no array named {', '.join(missing)}; "
                        "delete the file to download MNIST again")
      arrays = {key: npz[name] for key, name in npz_keys.items()}
  except (OSError, ValueError, zipfile.BadZipFile, zlib.error) as error:
    raise DataError(f"{path}: not a readable .npz file ({error}); delete it "
                    "to download MNIST again") from error
  _check(arrays, {key: f"{path}[{name}]" for key, name in npz_keys.items()})
  return arrays


def _check(arrays, names):
  """Checks shapes, types, counts and label values.

  Args:
    arrays: train_images, train_labels, test_images, test_labels.
    names: for each array, the file (or file[array]) to name in errors.
  """
  for part in ("train", "test"):
    images = arrays[f"{part}_images"]
    labels = arrays[f"{part}_labels"]
    images_name = names[f"{part}_images"]
    labels_name = names[f"{part}_labels"]
    if images.dtype != np.uint8 or images.shape[1:] != (IMAGE_SIZE,
                                                        IMAGE_SIZE):
      raise DataError(
          f"{images_name}: images of shape {images.shape} ({images.dtype}), "
          f"expected uint8 images of {IMAGE_SIZE}x{IMAGE_SIZE} pixels, shape "
          f"(n, {IMAGE_SIZE}, {IMAGE_SIZE})")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
      raise DataError(
          f"{labels_name}: labels of shape {labels.shape} ({labels.dtype}), "
          "expected integers of shape (n,)")
    if len(images) == 0:
      raise DataError(f"{images_name}: holds no images")
    if len(images) != len(labels):
      raise DataError(
          f"{images_name} holds {len(images)} images but {labels_name} holds "
          f"{len(labels)} labels; the counts must match")
    bad = np.flatnonzero((labels < 0) | (labels >= NUM_CLASSES))
    if bad.size:
      raise DataError(
          f"{labels_name}: label {labels[bad[0]]} at index {bad[0]} is "
          f"outside 0..{NUM_CLASSES - 1} ({bad.size} such labels)")


def _split(arrays, validation_size, validation_first, source):
  """Scales the images, splits off validation, and builds the Mnist."""
  num_train = len(arrays["train_labels"])
  if not 0 <= validation_size < num_train:
    raise DataError(
        f"{source} holds {num_train} training images: too few to hold out "
        f"{validation_size} for validation and train on the rest (MNIST has "
        "60,000)")
  train = _to_split(arrays["train_images"], arrays["train_labels"])
  if validation_first:
    kept, held_out = slice(validation_size, None), slice(None, validation_size)
  else:
    kept = slice(None, num_train - validation_size)
    held_out = slice(num_train - validation_size, None)
  return Mnist(
      train=Split(train.images[kept], train.labels[kept]),
      validation=Split(train.images[held_out], train.labels[held_out]),
      test=_to_split(arrays["test_images"], arrays["test_labels"]),
      source=source)


def _to_split(images, labels):
  """uint8 images (n, 28, 28) and labels (n,) -> Split of float32, int64."""
  images = images.reshape(len(images), -1).astype(np.float32) / 255.0
  return Split(images, labels.astype(np.int64))
