"""mnist_probes through the harness (tests/equivalence.py), in float64: the
MLP against its keras.Sequential twin (reference.py); the auxiliary-head step
and the probe's objectives, which have no Keras twin, against NumPy values
and central-difference gradients.

``check_objective`` takes the implementation as an argument: the tests pass
mnist_probes.probe, ``make exercise NAME=probe`` the learner's
exercises/probe.py.
"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import numpy as np
import tensorflow as tf

from mnist_probes import probe
from mnist_probes import reference
from mnist_probes import train
from mnist_probes.model import AuxiliaryHead
from mnist_probes.model import MLP
from tests import equivalence
from tfscratch import nn
from tfscratch import optimizers

SIZES = (8, 5, 4, 3, 3)  # inputs, three tanh layers, classes
BATCH = 6
NAMES = [f"{kind}_{layer}" for layer in range(1, 5) for kind in ("W", "b")]


def _batch(seed, features=SIZES[0], classes=SIZES[-1]):
  rng = np.random.default_rng(seed)
  return (tf.constant(rng.normal(size=(BATCH, features))),
          tf.constant(rng.integers(0, classes, BATCH)))


def _numpy_objective(theta, features, labels, inverse_c):
  """(sum_i -log softmax(x_i W + b)[y_i] + ||W||^2 / (2 C)) / n, in NumPy."""
  n, d = features.shape
  weights = theta[:-3].reshape(d, 3)
  logits = features @ weights + theta[-3:]
  shifted = logits - logits.max(axis=1, keepdims=True)
  log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
  log_loss = -log_softmax[np.arange(n), labels].sum()
  return (log_loss + 0.5 * inverse_c * np.sum(weights ** 2)) / n


def _numpy_ovr_objective(theta, features, labels, inverse_c):
  """The 2016 one-vs-rest objective / n (intercept penalised), in NumPy."""
  n, d = features.shape
  weights, bias = theta[:-3].reshape(d, 3), theta[-3:]
  signs = 2.0 * np.eye(3)[labels] - 1.0
  log_loss = np.logaddexp(0.0, -signs * (features @ weights + bias)).sum()
  return (log_loss + 0.5 * inverse_c * (np.sum(weights ** 2) +
                                        np.sum(bias ** 2))) / n


def _assert_objective(objective_and_gradient, numpy_objective):
  features, labels = _batch(seed=1, features=4)
  theta0 = np.random.default_rng(2).normal(size=4 * 3 + 3)
  for inverse_c in (1.0, 0.3):  # scikit-learn's default C = 1, and another
    value, gradient = objective_and_gradient(
        tf.constant(theta0), features, labels, tf.constant(inverse_c,
                                                           tf.float64))
    expected = numpy_objective(theta0, features.numpy(), labels.numpy(),
                               inverse_c)
    equivalence.assert_forward({"objective": value}, {"objective": expected})
    equivalence.assert_matches_finite_differences(
        "objective", gradient,
        lambda theta, c=inverse_c: numpy_objective(
            theta, features.numpy(), labels.numpy(), c), theta0)


def check_objective(impl):
  """The multinomial probe's objective / n against NumPy, and the gradient
  it returns against central differences of the NumPy objective, at C = 1
  and C = 1 / 0.3 (float64)."""
  _assert_objective(impl.objective_and_gradient, _numpy_objective)


class ProbeObjectiveTest(tf.test.TestCase):

  def test_objective(self):
    """The exercise ``probe`` on the package's own function."""
    check_objective(probe)

  def test_one_vs_rest_objective(self):
    _assert_objective(probe.ovr_objective_and_gradient, _numpy_ovr_objective)


class MLPTest(tf.test.TestCase):
  """The MLP against reference.keras_twin (float64)."""

  def _pair(self):
    model = MLP(SIZES, seed=1, dtype=tf.float64)
    with equivalence.keras_floatx():
      twin = reference.keras_twin(model)
    return model, twin

  def test_forward_and_gradients(self):
    """Logits and every hidden layer; gradients w.r.t. every weight and the
    images."""
    model, twin = self._pair()
    images, labels = _batch(seed=3)
    logits, layers = model(images)
    hidden, keras_layers = images, {}
    for l, layer in enumerate(twin.layers[:-1]):
      hidden = layer(hidden)
      keras_layers[f"h_{l + 1}"] = hidden
    equivalence.assert_forward(
        {"logits": logits,
         **{f"h_{l}": layers[l] for l in range(1, len(layers))}},
        {"logits": twin(images), **keras_layers})
    equivalence.assert_gradients(
        lambda: nn.summed_cross_entropy(model(images)[0], labels),
        {"images": images, **dict(zip(NAMES, model.weights))},
        lambda: nn.summed_cross_entropy(twin(images), labels),
        {"images": images, **dict(zip(NAMES, twin.trainable_variables))})

  def test_sgd_steps(self):
    """K steps of train.sgd_step against reference.keras_sgd_step
    (keras.optimizers.SGD), at two learning rates."""
    for hyperparameters in equivalence.OPTIMIZER_CASES["sgd"]:
      model, twin = self._pair()
      sgd = optimizers.SGD(model.weights, **hyperparameters)
      keras_sgd = equivalence.KERAS_OPTIMIZERS["sgd"](**hyperparameters)
      equivalence.assert_optimizer_steps(
          lambda k: train.sgd_step(model, sgd, *_batch(seed=10 + k)),
          lambda k: reference.keras_sgd_step(twin, keras_sgd,
                                             *_batch(seed=10 + k)),
          dict(zip(NAMES, model.weights)),
          dict(zip(NAMES, twin.trainable_variables)))


class AuxiliaryStepTest(tf.test.TestCase):
  """train.aux_sgd_step: cross-entropy + aux_weight * L1 of a linear head on
  layer 1. No Keras twin: central differences of the loss (every weight of
  the net and the head), and K steps against keras SGD applied to them."""

  def setUp(self):
    super().setUp()
    self.images, self.labels = _batch(seed=4)
    # Off-centre targets: the L1 gradient of the head's bias, a sum of
    # signs, must not cancel to 0.
    self.targets = tf.constant(np.random.default_rng(5).normal(
        loc=1.0, scale=3.0, size=(BATCH, 2)))

  def _pair(self):
    return (MLP(SIZES, seed=2, dtype=tf.float64),
            AuxiliaryHead(SIZES[1], 2, seed=2, dtype=tf.float64))

  def _loss(self, model, head, images=None):
    """The loss aux_sgd_step descends, written out from its parts."""
    logits, layers = model(self.images if images is None else images)
    return (nn.summed_cross_entropy(logits, self.labels) +
            0.7 * tf.reduce_sum(tf.abs(head(layers[1]) - self.targets)))

  def test_gradients_and_steps(self):
    model, head = self._pair()
    names = NAMES + ["A", "c"]
    variables = dict(zip(names, model.weights + head.weights))
    images = tf.Variable(self.images)
    equivalence.assert_gradients_match_finite_differences(
        lambda: self._loss(model, head, images),
        {"images": images, **variables})
    twin_model, twin_head = self._pair()
    twin_variables = dict(zip(names, twin_model.weights + twin_head.weights))
    hyperparameters = equivalence.OPTIMIZER_CASES["sgd"][0]
    sgd = optimizers.SGD(model.weights + head.weights, **hyperparameters)
    keras_sgd = equivalence.keras_optimizer("sgd", hyperparameters,
                                            twin_variables.values())
    twin_loss = lambda: self._loss(twin_model, twin_head)  # noqa: E731
    equivalence.assert_optimizer_steps(
        lambda k: train.aux_sgd_step(model, head, sgd, 0.7, self.images,
                                     self.labels, self.targets)[0],
        lambda k: equivalence.finite_difference_step(twin_loss,
                                                     twin_variables,
                                                     keras_sgd),
        variables, twin_variables,
        tolerance=equivalence.FINITE_DIFFERENCE_STEPS)


if __name__ == "__main__":
  tf.test.main()
