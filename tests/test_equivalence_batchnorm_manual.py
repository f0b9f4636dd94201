"""batchnorm_manual through the harness (tests/equivalence.py), in float64:
BatchNorm against keras.layers.BatchNormalization, both nets against their
keras.Sequential twins (reference.py), Keras' default momentum and epsilon
and others.

``check_normalize`` and ``check_moving_average`` take the implementation as
an argument: the tests pass batchnorm_manual.batchnorm, ``make exercise
NAME=batchnorm`` the learner's exercises/batchnorm.py.
"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import keras
import numpy as np
import tensorflow as tf

from batchnorm_manual import batchnorm
from batchnorm_manual import reference
from batchnorm_manual import train
from batchnorm_manual.model import BatchNormNet
from batchnorm_manual.model import PlainNet
from tests import equivalence
from tfscratch import nn
from tfscratch import optimizers

FEATURES, BATCH = 5, 8
# (momentum, epsilon): Keras' defaults, then others.
SETTINGS = ((0.99, 1e-3), (0.9, 1e-2))


def _pre_activations(seed):
  """Like the blog's z_l: shifted and wide (mean ~3, std ~5)."""
  return tf.constant(np.random.default_rng(seed).normal(3.0, 5.0,
                                                        (BATCH, FEATURES)))


def _keras_batchnorm(momentum, epsilon, seed):
  """A built float64 BatchNormalization with random gamma, beta and moving
  statistics (none of them trivial)."""
  rng = np.random.default_rng(seed)
  layer = keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon,
                                          dtype="float64")
  layer.build((None, FEATURES))
  layer.gamma.assign(rng.uniform(0.5, 2.0, FEATURES))
  layer.beta.assign(rng.normal(0.0, 1.0, FEATURES))
  layer.moving_mean.assign(rng.normal(3.0, 1.0, FEATURES))
  layer.moving_variance.assign(rng.uniform(5.0, 30.0, FEATURES))
  return layer


def check_normalize(impl):
  """y = gamma (x - mean) / sqrt(variance + epsilon) + beta against Keras'
  BatchNormalization, in training mode (the batch's moments) and inference
  mode (the moving averages): values, and gradients with respect to x, gamma
  and beta (through the moments too), at two momentum/epsilon settings."""
  weights = tf.constant(np.random.default_rng(9).normal(size=(BATCH,
                                                             FEATURES)))
  for momentum, epsilon in SETTINGS:
    for training in (True, False):
      theirs = _keras_batchnorm(momentum, epsilon, seed=1)
      x = _pre_activations(seed=2)
      gamma = tf.Variable(theirs.gamma.numpy())
      beta = tf.Variable(theirs.beta.numpy())

      def ours_y():
        if training:
          mean, variance = tf.nn.moments(x, axes=[0])
        else:
          mean, variance = theirs.moving_mean, theirs.moving_variance
        return impl.normalize(x, mean, variance, gamma, beta, epsilon)

      def theirs_y():
        return theirs(x, training=training)

      what = "training" if training else "inference"
      equivalence.assert_forward({f"y ({what})": ours_y()},
                                 {f"y ({what})": theirs_y()})
      # sin(y) weighted: a plain sum would have a zero gradient wrt x.
      equivalence.assert_gradients(
          lambda: tf.reduce_sum(tf.sin(ours_y()) * weights),
          {"x": x, "gamma": gamma, "beta": beta},
          lambda: tf.reduce_sum(tf.sin(theirs_y()) * weights),
          {"x": x, "gamma": theirs.gamma, "beta": theirs.beta})


def check_moving_average(impl):
  """K training batches: moving = moving momentum + batch statistic (1 -
  momentum), for the mean and the (biased) variance, against the moving
  statistics Keras' BatchNormalization keeps, at two momenta."""
  for momentum, epsilon in SETTINGS:
    theirs = _keras_batchnorm(momentum, epsilon, seed=3)
    ours = {name: tf.Variable(getattr(theirs, name).numpy())
            for name in ("moving_mean", "moving_variance")}

    def ours_step(k):
      mean, variance = tf.nn.moments(_pre_activations(seed=10 + k), axes=[0])
      for name, statistic in (("moving_mean", mean),
                              ("moving_variance", variance)):
        ours[name].assign(impl.moving_average(ours[name], statistic,
                                              momentum))

    def theirs_step(k):
      theirs(_pre_activations(seed=10 + k), training=True)

    equivalence.assert_optimizer_steps(
        ours_step, theirs_step, ours,
        {"moving_mean": theirs.moving_mean,
         "moving_variance": theirs.moving_variance})


class BatchNormTest(tf.test.TestCase):

  def test_normalize(self):
    """The exercise ``batchnorm`` on the package's own functions."""
    check_normalize(batchnorm)

  def test_moving_average(self):
    check_moving_average(batchnorm)

  def test_layer_matches_keras(self):
    """The BatchNorm module: training and inference outputs, gradients
    w.r.t. x, gamma and beta, and K SGD steps on gamma and beta with the
    moving averages updated after each (keras.optimizers.SGD on the Keras
    layer, whose training call updates its own)."""
    weights = tf.constant(np.random.default_rng(9).normal(size=(BATCH,
                                                               FEATURES)))
    for momentum, epsilon in SETTINGS:
      theirs = _keras_batchnorm(momentum, epsilon, seed=4)
      ours = batchnorm.BatchNorm(FEATURES, momentum, epsilon,
                                 dtype=tf.float64)
      for name in ("gamma", "beta", "moving_mean", "moving_variance"):
        getattr(ours, name).assign(getattr(theirs, name))
      x = _pre_activations(seed=5)
      # Inference first: Keras' training-mode calls move its moving averages.
      for training in (False, True):
        equivalence.assert_forward({"y": ours(x, training)[0]},
                                   {"y": theirs(x, training=training)})
        equivalence.assert_gradients(
            lambda: tf.reduce_sum(tf.sin(ours(x, training)[0]) * weights),
            {"x": x, "gamma": ours.gamma, "beta": ours.beta},
            lambda: tf.reduce_sum(tf.sin(theirs(x, training=training)) *
                                  weights),
            {"x": x, "gamma": theirs.gamma, "beta": theirs.beta})
      # theirs' training-mode calls above moved its moving averages.
      for name in ("moving_mean", "moving_variance"):
        getattr(theirs, name).assign(getattr(ours, name))
      hyperparameters = equivalence.OPTIMIZER_CASES["sgd"][1]
      ours_sgd = optimizers.SGD([ours.gamma, ours.beta], **hyperparameters)
      keras_sgd = equivalence.keras_optimizer(
          "sgd", hyperparameters, [theirs.gamma, theirs.beta])

      def ours_step(k):
        x = _pre_activations(seed=20 + k)
        with tf.GradientTape() as tape:
          y, (mean, variance) = ours(x, training=True)
          loss = tf.reduce_sum(tf.sin(y) * weights)
        ours_sgd.apply(tape.gradient(loss, [ours.gamma, ours.beta]))
        ours.update_moving_statistics(mean, variance)
        return loss

      def theirs_step(k):
        x = _pre_activations(seed=20 + k)
        with tf.GradientTape() as tape:
          loss = tf.reduce_sum(tf.sin(theirs(x, training=True)) * weights)
        keras_sgd.apply(tape.gradient(loss, [theirs.gamma, theirs.beta]))
        return loss

      names = ("gamma", "beta", "moving_mean", "moving_variance")
      equivalence.assert_optimizer_steps(
          ours_step, theirs_step,
          {name: getattr(ours, name) for name in names},
          {name: getattr(theirs, name) for name in names})


def _small_weights(seed):
  """W_1..W_4 of a 784-6-5-4-10 net (784 inputs and 10 classes: the twins'
  fixed shapes), N(0, 1) as the experiment draws them."""
  rng = np.random.default_rng(seed)
  sizes = (nn.NUM_PIXELS, 6, 5, 4, nn.NUM_CLASSES)
  return [rng.normal(size=shape) for shape in zip(sizes[:-1], sizes[1:])]


def _batch(seed):
  """Digit-like images (about 1 in 8 pixels lit) and labels."""
  rng = np.random.default_rng(seed)
  images = rng.random((BATCH, nn.NUM_PIXELS)) * (
      rng.random((BATCH, nn.NUM_PIXELS)) < 0.12)
  return tf.constant(images), tf.constant(rng.integers(0, 10, BATCH))


def _variable_names(net):
  if isinstance(net, BatchNormNet):
    return [f"{kind}_{l + 1}" for l in range(3)
            for kind in ("W", "gamma", "beta")] + ["W_4", "b_4"]
  return [f"{kind}_{l + 1}" for l in range(4) for kind in ("W", "b")]


class NetworksTest(tf.test.TestCase):
  """PlainNet and BatchNormNet against reference.keras_twin."""

  def _pair(self, net_class, **settings):
    ours = net_class(_small_weights(seed=1), dtype=tf.float64, **settings)
    rng = np.random.default_rng(2)
    for norm in getattr(ours, "norms", []):
      norm.gamma.assign(rng.uniform(0.5, 2.0, norm.gamma.shape))
      norm.beta.assign(rng.normal(0.0, 1.0, norm.beta.shape))
      norm.moving_mean.assign(rng.normal(0.0, 3.0, norm.gamma.shape))
      norm.moving_variance.assign(rng.uniform(5.0, 30.0, norm.gamma.shape))
    with equivalence.keras_floatx():
      theirs = reference.keras_twin(ours)
    return ours, theirs

  def _assert_nets_match(self, net_class, **settings):
    images, labels = _batch(seed=3)
    ours, theirs = self._pair(net_class, **settings)
    names = _variable_names(ours)
    # Inference first: Keras' training-mode calls move its moving averages.
    for training in (False, True):
      equivalence.assert_forward(
          {"logits": ours(images, training=training)},
          {"logits": theirs(images, training=training)})
      equivalence.assert_gradients(
          lambda: nn.summed_cross_entropy(ours(images, training=training),
                                          labels),
          {"images": images, **dict(zip(names, ours.weights))},
          lambda: nn.summed_cross_entropy(theirs(images, training=training),
                                          labels),
          {"images": images, **dict(zip(names, theirs.trainable_weights))})
    ours, theirs = self._pair(net_class, **settings)  # fresh moving averages
    ours_step = train.sgd_step
    sgd = optimizers.SGD(ours.weights, learning_rate=0.01)
    keras_step = reference.keras_sgd_step(theirs, 0.01)
    statistics = {}
    for i, (norm, keras_norm) in enumerate(zip(
        getattr(ours, "norms", []), reference.batchnorm_layers(theirs))):
      for name in ("moving_mean", "moving_variance"):
        statistics[f"{name}_{i + 1}"] = (getattr(norm, name),
                                         getattr(keras_norm, name))
    equivalence.assert_optimizer_steps(
        lambda k: ours_step(ours, sgd, *_batch(seed=10 + k)),
        lambda k: keras_step(*_batch(seed=10 + k)),
        {**dict(zip(names, ours.weights)),
         **{name: pair[0] for name, pair in statistics.items()}},
        {**dict(zip(names, theirs.trainable_weights)),
         **{name: pair[1] for name, pair in statistics.items()}})

  def test_plain_net(self):
    """Logits, gradients w.r.t. every weight and the images, and K steps of
    train.sgd_step against reference.keras_sgd_step (keras SGD)."""
    self._assert_nets_match(PlainNet)

  def test_batchnorm_net(self):
    """As for the plain net, in training and inference mode, the moving
    statistics compared after every step, at Keras' default momentum and
    epsilon and at others."""
    for momentum, epsilon in SETTINGS:
      self._assert_nets_match(BatchNormNet, momentum=momentum,
                              epsilon=epsilon)


if __name__ == "__main__":
  tf.test.main()
