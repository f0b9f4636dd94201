"""Which 55,000 images are "the training set".

The blog read MNIST with TensorFlow 1's tutorial reader (``read_data_sets``
of ``tensorflow/examples/tutorials/mnist``), which set aside the *first*
5,000 training images for validation and kept images 5,000-59,999 as
``mnist.train``. So the blog's "first 1,000 training images" are images
5,000-5,999 of the training file, and its SGD walk starts at image 5,000.
(Checked: scikit-learn's 2016 default probe on the pixels of images
5,000-5,999 scores exactly the blog's 0.828; on images 0-999 it scores 0.842.)
"""
from tfscratch.lab.mnist import load_mnist

SPLITS = ("blog", "first")


def load_train_test(data_dir, split="blog"):
  """The 55,000 training and 10,000 test images.

  Args:
    data_dir: as for ``load_mnist`` (None: $MNIST_DATA_DIR, then Keras).
    split: "blog": training images 5,000-59,999 (TensorFlow 1's
      ``read_data_sets``, which the blog used); "first": images 0-54,999
      (``load_mnist``'s default split).
  Returns:
    (train, test, source): two ``Split``s and where MNIST was read from.
  """
  if split not in SPLITS:
    raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
  mnist = load_mnist(data_dir, validation_first=split == "blog")
  return mnist.train, mnist.test, mnist.source
