"""Tests for tfscratch.lab.mnist: small IDX files of our own, then real MNIST."""
import tfscratch  # noqa: F401  (silences TensorFlow start-up)

import gzip
import os
import struct
import tempfile
from unittest import mock

import numpy as np
import tensorflow as tf

from tfscratch.lab.errors import DataError
from tfscratch.lab.mnist import load_mnist
from tfscratch.lab.mnist import MnistNotFoundError
from tfscratch.lab.mnist import read_idx
from tfscratch.lab.mnist import Split
from tests.mnist_fixture import real_mnist

_RNG = np.random.default_rng(0)
TRAIN_IMAGES = _RNG.integers(0, 256, (12, 28, 28), dtype=np.uint8)
TRAIN_IMAGES[0, 0, 0] = 0
TRAIN_IMAGES[0, 0, 1] = 255
TRAIN_LABELS = np.array([5, 0, 4, 1, 9, 2, 1, 3, 1, 4, 3, 5], dtype=np.uint8)
TEST_IMAGES = _RNG.integers(0, 256, (5, 28, 28), dtype=np.uint8)
TEST_LABELS = np.array([7, 2, 1, 0, 4], dtype=np.uint8)
ARRAYS = {
    "train-images-idx3-ubyte": TRAIN_IMAGES,
    "train-labels-idx1-ubyte": TRAIN_LABELS,
    "t10k-images-idx3-ubyte": TEST_IMAGES,
    "t10k-labels-idx1-ubyte": TEST_LABELS,
}


def idx_bytes(array, magic=None):
  """The IDX bytes of a uint8 array; ``magic`` replaces the first 4 bytes."""
  if magic is None:
    magic = bytes([0, 0, 0x08, array.ndim])
  return magic + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_mnist(directory, compress=True, replace=None):
  """Writes the four small IDX files to ``directory``; returns their paths.

  Args:
    compress: gzip the files and add ".gz" to their names.
    replace: {file name without .gz: the uncompressed bytes to write instead}.
  """
  replace = replace or {}
  paths = {}
  for name, array in ARRAYS.items():
    data = replace.get(name, idx_bytes(array))
    path = os.path.join(directory, name + (".gz" if compress else ""))
    with open(path, "wb") as f:
      f.write(gzip.compress(data) if compress else data)
    paths[name] = path
  return paths


class MnistTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    # Each test starts with no $MNIST_DATA_DIR (CI sets it for the real data)
    # and a Keras home without the cache file.
    environ = mock.patch.dict(os.environ, {"KERAS_HOME": self.make_dir()})
    environ.start()
    self.addCleanup(environ.stop)
    os.environ.pop("MNIST_DATA_DIR", None)

  def make_dir(self):
    """A new empty directory."""
    return tempfile.mkdtemp(dir=self.get_temp_dir())

  def assert_load_fails(self, data_dir, *fragments):
    """load_mnist(data_dir) raises DataError whose message has all fragments."""
    with self.assertRaises(DataError) as caught:
      load_mnist(data_dir)
    for fragment in fragments:
      self.assertIn(fragment, str(caught.exception))
    return caught.exception

  def test_loads_gzip_files(self):
    directory = self.make_dir()
    write_mnist(directory)
    mnist = load_mnist(directory, validation_size=3)

    self.assertEqual(mnist.source, directory)
    expected_images = TRAIN_IMAGES.reshape(12, 784).astype(np.float32) / 255
    for split, images, labels in [
        (mnist.train, expected_images[:9], TRAIN_LABELS[:9]),
        (mnist.validation, expected_images[9:], TRAIN_LABELS[9:]),
        (mnist.test, TEST_IMAGES.reshape(5, 784) / 255, TEST_LABELS)]:
      self.assertEqual(split.images.dtype, np.float32)
      self.assertEqual(split.labels.dtype, np.int64)
      self.assertEqual(split.images.shape, (len(labels), 784))
      self.assertLen(split, len(labels))
      self.assertAllClose(split.images, images)
      self.assertAllEqual(split.labels, labels)
    self.assertEqual(mnist.train.images.min(), 0.0)
    self.assertEqual(mnist.train.images.max(), 1.0)

  def test_loads_raw_files(self):
    directory = self.make_dir()
    write_mnist(directory, compress=False)
    mnist = load_mnist(directory, validation_size=0)
    self.assertAllClose(mnist.train.images * 255,
                        TRAIN_IMAGES.reshape(12, 784))
    self.assertAllEqual(mnist.test.labels, TEST_LABELS)

  def test_read_idx_detects_gzip_by_content_not_name(self):
    path = os.path.join(self.make_dir(), "labels")
    with open(path, "wb") as f:
      f.write(gzip.compress(idx_bytes(TRAIN_LABELS)))
    labels = read_idx(path)
    self.assertEqual(labels.dtype, np.uint8)
    self.assertAllEqual(labels, TRAIN_LABELS)

  def test_validation_first_takes_the_start_like_tensorflow_1(self):
    directory = self.make_dir()
    write_mnist(directory)
    mnist = load_mnist(directory, validation_size=3, validation_first=True)
    expected_images = TRAIN_IMAGES.reshape(12, 784).astype(np.float32) / 255
    self.assertAllEqual(mnist.validation.labels, TRAIN_LABELS[:3])
    self.assertAllEqual(mnist.train.labels, TRAIN_LABELS[3:])
    self.assertAllClose(mnist.train.images, expected_images[3:])
    self.assertAllClose(mnist.validation.images, expected_images[:3])

  def test_validation_size_zero_gives_empty_validation(self):
    directory = self.make_dir()
    write_mnist(directory)
    mnist = load_mnist(directory, validation_size=0)
    self.assertLen(mnist.train, 12)
    self.assertLen(mnist.validation, 0)
    self.assertEqual(mnist.validation.images.shape, (0, 784))
    self.assertEqual(mnist.validation.one_hot().shape, (0, 10))

  def test_validation_size_out_of_range(self):
    directory = self.make_dir()
    write_mnist(directory)
    for size in (-1, 12):
      with self.assertRaisesRegex(
          DataError, rf"holds 12 training images: too few to hold out {size} "
          "for validation"):
        load_mnist(directory, validation_size=size)

  def test_one_hot_and_take(self):
    split = Split(np.zeros((3, 784), np.float32), np.array([2, 0, 9]))
    self.assertAllEqual(split.one_hot(),
                        np.eye(10, dtype=np.float32)[[2, 0, 9]])
    self.assertEqual(split.one_hot().dtype, np.float32)
    self.assertAllEqual(split.take(2).labels, [2, 0])
    self.assertLen(split.take(0), 0)
    with self.assertRaisesRegex(DataError, "cannot take 4 examples"):
      split.take(4)

  def test_env_var_names_the_directory(self):
    directory = self.make_dir()
    write_mnist(directory)
    with mock.patch.dict(os.environ, {"MNIST_DATA_DIR": directory}):
      mnist = load_mnist(validation_size=5)
    self.assertEqual(mnist.source, directory)
    self.assertLen(mnist.train, 7)

  def test_data_dir_is_the_only_place_looked(self):
    good, empty = self.make_dir(), self.make_dir()
    write_mnist(good)
    with mock.patch.dict(os.environ, {"MNIST_DATA_DIR": good}):
      error = self.assert_load_fails(empty, f"data_dir {empty}")
    self.assertIsInstance(error, MnistNotFoundError)

  def test_env_var_is_the_only_place_looked(self):
    empty = self.make_dir()
    with mock.patch.dict(os.environ, {"MNIST_DATA_DIR": empty}):
      self.assert_load_fails(None, f"$MNIST_DATA_DIR={empty}",
                             "train-images-idx3-ubyte.gz")

  def test_an_empty_data_dir_is_named_as_such(self):
    self.assert_load_fails("", "--data_dir is empty")

  def test_empty_dir_names_every_missing_path(self):
    empty = self.make_dir()
    error = self.assert_load_fails(empty, empty, "4 of the 4 files")
    for name in ARRAYS:
      self.assertIn(os.path.join(empty, name + ".gz"), str(error))
      self.assertIn(os.path.join(empty, name), str(error))

  def test_missing_file(self):
    directory = self.make_dir()
    paths = write_mnist(directory)
    os.remove(paths["t10k-labels-idx1-ubyte"])
    error = self.assert_load_fails(
        directory, paths["t10k-labels-idx1-ubyte"],
        f"also tried {os.path.join(directory, 't10k-labels-idx1-ubyte')}",
        "1 of the 4")
    self.assertNotIn("train-images", str(error))

  def test_truncated_file(self):
    directory = self.make_dir()
    data = idx_bytes(TRAIN_IMAGES)
    write_mnist(directory, replace={"train-images-idx3-ubyte": data[:-10]})
    expected, found = len(data), len(data) - 10
    self.assert_load_fails(
        directory, "train-images-idx3-ubyte.gz", "truncated",
        f"expected {expected} bytes, found {found}")

  def test_trailing_bytes(self):
    directory = self.make_dir()
    data = idx_bytes(TEST_LABELS)
    write_mnist(directory, compress=False,
                replace={"t10k-labels-idx1-ubyte": data + b"\0\0\0"})
    self.assert_load_fails(
        directory, "t10k-labels-idx1-ubyte", "trailing bytes",
        f"expected {len(data)} bytes, found {len(data) + 3}")

  def test_wrong_magic(self):
    directory = self.make_dir()
    write_mnist(directory, replace={
        "train-labels-idx1-ubyte": idx_bytes(TRAIN_LABELS, b"\0\0\x0d\x01")})
    self.assert_load_fails(directory, "train-labels-idx1-ubyte.gz",
                           "magic number 0x00000d01")

  def test_labels_where_images_belong(self):
    directory = self.make_dir()
    write_mnist(directory, replace={
        "t10k-images-idx3-ubyte": idx_bytes(TEST_LABELS)})
    self.assert_load_fails(directory, "t10k-images-idx3-ubyte.gz",
                           "holds labels (magic number 0x00000801) where "
                           "images were expected", "swapped")

  def test_images_where_labels_belong_are_not_called_truncated(self):
    directory = self.make_dir()
    write_mnist(directory, replace={
        "train-labels-idx1-ubyte": idx_bytes(TRAIN_IMAGES)})
    error = self.assert_load_fails(
        directory, "train-labels-idx1-ubyte.gz", "holds images (magic number "
        "0x00000803) where labels were expected")
    self.assertNotIn("truncated", str(error))

  def test_a_directory_where_a_file_belongs(self):
    directory = self.make_dir()
    paths = write_mnist(directory)
    os.remove(paths["t10k-labels-idx1-ubyte"])
    os.makedirs(paths["t10k-labels-idx1-ubyte"])
    error = self.assert_load_fails(
        directory, f"{paths['t10k-labels-idx1-ubyte']} is a directory")
    self.assertNotIn("missing", str(error))

  def test_a_valid_file_with_no_images(self):
    directory = self.make_dir()
    write_mnist(directory, replace={
        "t10k-images-idx3-ubyte": idx_bytes(TEST_IMAGES[:0]),
        "t10k-labels-idx1-ubyte": idx_bytes(TEST_LABELS[:0])})
    self.assert_load_fails(directory, "t10k-images-idx3-ubyte.gz",
                           "holds no images")

  def test_wrong_image_dimensions(self):
    directory = self.make_dir()
    write_mnist(directory, replace={
        "train-images-idx3-ubyte": idx_bytes(TRAIN_IMAGES[:, :27, :])})
    self.assert_load_fails(directory, "train-images-idx3-ubyte.gz",
                           "(12, 27, 28)", "28x28")

  def test_corrupt_gzip(self):
    directory = self.make_dir()
    paths = write_mnist(directory)
    path = paths["train-images-idx3-ubyte"]
    with open(path, "rb") as f:
      data = f.read()
    with open(path, "wb") as f:
      f.write(data[:len(data) // 2])
    self.assert_load_fails(directory, path, "corrupt gzip")

  def test_count_mismatch(self):
    directory = self.make_dir()
    write_mnist(directory, replace={
        "train-labels-idx1-ubyte": idx_bytes(TRAIN_LABELS[:11])})
    self.assert_load_fails(
        directory, "train-images-idx3-ubyte.gz holds 12 images",
        "train-labels-idx1-ubyte.gz holds 11 labels")

  def test_label_out_of_range(self):
    directory = self.make_dir()
    labels = TEST_LABELS.copy()
    labels[3] = 10
    write_mnist(directory,
                replace={"t10k-labels-idx1-ubyte": idx_bytes(labels)})
    self.assert_load_fails(directory, "t10k-labels-idx1-ubyte.gz",
                           "label 10 at index 3", "0..9")

  def test_reads_the_keras_cache(self):
    cache_path = os.path.join(os.environ["KERAS_HOME"], "datasets",
                              "mnist.npz")
    os.makedirs(os.path.dirname(cache_path))
    np.savez(cache_path, x_train=TRAIN_IMAGES, y_train=TRAIN_LABELS,
             x_test=TEST_IMAGES, y_test=TEST_LABELS)
    with mock.patch.object(tf.keras.datasets.mnist, "load_data") as download:
      mnist = load_mnist(validation_size=2)
    download.assert_not_called()
    self.assertEqual(mnist.source, cache_path)
    self.assertAllEqual(mnist.validation.labels, TRAIN_LABELS[10:])

  def test_downloads_when_nothing_is_cached(self):
    arrays = (TRAIN_IMAGES, TRAIN_LABELS), (TEST_IMAGES, TEST_LABELS)
    with mock.patch.object(tf.keras.datasets.mnist, "load_data",
                           return_value=arrays):
      mnist = load_mnist(validation_size=2)
    self.assertIn("load_data", mnist.source)
    self.assertAllEqual(mnist.test.labels, TEST_LABELS)

  def test_not_found_anywhere_lists_every_place(self):
    cache_path = os.path.join(os.environ["KERAS_HOME"], "datasets",
                              "mnist.npz")
    with mock.patch.object(tf.keras.datasets.mnist, "load_data",
                           side_effect=OSError("no network")) as download:
      with self.assertRaises(MnistNotFoundError) as caught:
        load_mnist()
    download.assert_called_once()
    for fragment in ("MNIST_DATA_DIR", cache_path, "no network"):
      self.assertIn(fragment, str(caught.exception))

  def test_empty_env_var_counts_as_unset(self):
    with mock.patch.dict(os.environ, {"MNIST_DATA_DIR": ""}):
      with mock.patch.object(tf.keras.datasets.mnist, "load_data",
                             side_effect=OSError("no network")):
        self.assertRaisesRegex(MnistNotFoundError, "no network", load_mnist)


class RealMnistTest(tf.test.TestCase):
  """The real files: known label counts, first labels and the classic split."""

  def test_label_counts_and_first_labels(self):
    mnist = real_mnist(validation_size=0)
    self.assertEqual(mnist.train.images.shape, (60000, 784))
    self.assertEqual(mnist.test.images.shape, (10000, 784))
    self.assertLen(mnist.validation, 0)
    self.assertAllEqual(
        np.bincount(mnist.train.labels, minlength=10),
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    self.assertAllEqual(
        np.bincount(mnist.test.labels, minlength=10),
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    self.assertAllEqual(mnist.train.labels[:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
    self.assertEqual(mnist.train.images.min(), 0.0)
    self.assertEqual(mnist.train.images.max(), 1.0)

  def test_validation_is_the_last_5000_training_images(self):
    full = real_mnist(validation_size=0).train
    mnist = real_mnist(validation_size=5000)
    self.assertLen(mnist.train, 55000)
    self.assertLen(mnist.validation, 5000)
    self.assertLen(mnist.test, 10000)
    self.assertAllEqual(mnist.train.labels, full.labels[:55000])
    self.assertAllEqual(mnist.validation.labels, full.labels[55000:])
    self.assertAllEqual(mnist.validation.images, full.images[55000:])


if __name__ == "__main__":
  tf.test.main()
