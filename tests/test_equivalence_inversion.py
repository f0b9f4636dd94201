"""inversion through the harness (tests/equivalence.py), in float64: the
classifier against its Keras twin; everything without a twin (logit, squash,
the learned inverse, the code and pixel objectives, the image prior)
against NumPy values and central-difference gradients, with K steps whose
reference applies keras.optimizers to those finite-difference gradients.

``check_logit`` and ``check_squash`` take the implementation as an argument:
``make exercise NAME=squash`` runs them on exercises/squash.py.
"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import numpy as np
import tensorflow as tf

from inversion import model
from inversion import reference
from inversion import train
from tests import equivalence
from tests.test_inversion import numpy_sigmoid
from tests.test_inversion import numpy_squash
from tfscratch import loop
from tfscratch import optimizers

SIZES = (9, 5, 4, 3)  # 3x3 "images", two hidden layers, 3 classes
BATCH = 6


def check_logit(impl):
  """logit(p) = log(p / (1 - p)): values against NumPy and the gradient
  1 / (p (1 - p)) against central differences (float64)."""
  p = np.random.default_rng(0).uniform(0.02, 0.98, size=(4, 5))
  equivalence.assert_forward({"logit": impl.logit(tf.constant(p))},
                             {"logit": np.log(p / (1 - p))})
  weights = tf.constant(np.random.default_rng(1).normal(size=p.shape))
  variable = tf.Variable(p)
  equivalence.assert_gradients_match_finite_differences(
      lambda: tf.reduce_sum(impl.logit(variable) * weights), {"p": variable})


def check_squash(impl):
  """squash: each row rescaled onto [0.005, 0.995]; values against NumPy,
  gradients (through the row min and max) against central differences; a
  constant row maps to 0.5 with a finite gradient."""
  p = np.random.default_rng(2).normal(scale=3, size=(4, 6))
  equivalence.assert_forward({"squash": impl.squash(tf.constant(p))},
                             {"squash": numpy_squash(p)})
  weights = tf.constant(np.random.default_rng(3).normal(size=p.shape))
  variable = tf.Variable(p)
  equivalence.assert_gradients_match_finite_differences(
      lambda: tf.reduce_sum(impl.squash(variable) * weights), {"p": variable})
  constant = tf.Variable(np.full((1, 3), 2.0))
  with tf.GradientTape() as tape:
    squashed = impl.squash(constant)
  equivalence.assert_forward({"squash of a constant row": squashed},
                             {"squash of a constant row": np.full((1, 3), 0.5)})
  if not np.all(np.isfinite(tape.gradient(squashed, constant))):
    raise AssertionError("squash of a constant row has a non-finite gradient")


class LogitSquashTest(tf.test.TestCase):
  """The exercise ``squash`` on the package's own functions."""

  def test_logit(self):
    check_logit(model)

  def test_squash(self):
    check_squash(model)


def _classifier(seed=5):
  return model.Classifier(SIZES, seed=seed, dtype=tf.float64)


def _images(seed=6, count=BATCH):
  return tf.constant(np.random.default_rng(seed).random((count, SIZES[0])))


def _named(variables):
  """{name: variable} by the variables' own names (W1, b1, ...)."""
  return {v.name.split(":")[0]: v for v in variables}


class ClassifierTest(tf.test.TestCase):
  """The classifier against reference.keras_classifier (float64)."""

  def setUp(self):
    super().setUp()
    self.classifier = _classifier()
    with equivalence.keras_floatx():
      self.twin = reference.keras_classifier(self.classifier)
    self.images = _images()
    self.labels = tf.constant(np.random.default_rng(7).integers(0, 3, BATCH))

  def _loss(self, network, images):
    return tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=self.labels, logits=network(images)))

  def test_forward_and_gradients(self):
    equivalence.assert_forward({"logits": self.classifier(self.images)},
                               {"logits": self.twin(self.images)})
    names = [v.name.split(":")[0] for v in self.classifier.weights]
    equivalence.assert_gradients(
        lambda: self._loss(self.classifier, self.images),
        {"images": self.images, **_named(self.classifier.weights)},
        lambda: self._loss(self.twin, self.images),
        {"images": self.images,
         **dict(zip(names, self.twin.trainable_variables))})

  def test_adagrad_steps(self):
    """K steps of train.classifier_step against keras.optimizers.Adagrad, at
    Keras' defaults and at another initial accumulator and epsilon."""
    names = [v.name.split(":")[0] for v in self.classifier.weights]
    start = [w.numpy() for w in self.classifier.weights]
    for hyperparameters in equivalence.OPTIMIZER_CASES["adagrad"]:
      for ours, theirs, value in zip(self.classifier.weights,
                                     self.twin.trainable_variables, start):
        ours.assign(value)  # each case from the same weights
        theirs.assign(value)
      step = train.classifier_step(
          self.classifier,
          optimizers.Adagrad(self.classifier.weights, **hyperparameters),
          self.images, self.labels,
          lambda i: loop.ordered_indices(i, BATCH, BATCH))
      keras_optimizer = equivalence.keras_optimizer(
          "adagrad", hyperparameters, self.twin.trainable_variables)

      def keras_step(k):
        del k
        with tf.GradientTape() as tape:
          loss = self._loss(self.twin, self.images)
        keras_optimizer.apply(tape.gradient(loss,
                                            self.twin.trainable_variables))
        return loss

      equivalence.assert_optimizer_steps(
          lambda k: step(tf.constant(k)), keras_step,
          _named(self.classifier.weights),
          dict(zip(names, self.twin.trainable_variables)))


class InversePathTest(tf.test.TestCase):
  """The learned inverse and inverse_loss: no Keras twin, so central
  differences (gradients) and Adagrad steps on them (reference)."""

  def setUp(self):
    super().setUp()
    self.classifier = _classifier()
    self.x = _images()
    self.l2 = tf.Variable(self.classifier.hidden(self.x)[1])

  def test_gradients_of_the_weights_and_the_inputs(self):
    """With respect to W1_inv, W2_inv, the code l2 and the target x."""
    inverse = model.InversePath(self.classifier, seed=5)
    x = tf.Variable(self.x)
    equivalence.assert_gradients_match_finite_differences(
        lambda: model.inverse_loss(x, *inverse(self.l2))[0],
        {"W1_inv": inverse.W1_inv, "W2_inv": inverse.W2_inv, "l2": self.l2,
         "x": x})

  def test_adagrad_steps(self):
    """K steps of train.inverse_step (every example kept: confidence 0)
    against keras Adagrad (non-default) on central-difference gradients."""
    hyperparameters = equivalence.OPTIMIZER_CASES["adagrad"][1]
    ours, twin = (model.InversePath(self.classifier, seed=5)
                  for _ in range(2))
    step = train.inverse_step(
        ours, optimizers.Adagrad(ours.weights, **hyperparameters), self.x,
        lambda i: loop.ordered_indices(i, BATCH, BATCH), confidence=0.0)
    variables = {"W1_inv": twin.W1_inv, "W2_inv": twin.W2_inv}
    keras_optimizer = equivalence.keras_optimizer(
        "adagrad", hyperparameters, variables.values())
    twin_loss = lambda: model.inverse_loss(self.x, *twin(self.l2))[0]  # noqa: E731
    equivalence.assert_optimizer_steps(
        # The step's own tf.function takes seconds to trace: run it eagerly.
        lambda k: step.python_function(tf.constant(k))[0],
        lambda k: equivalence.finite_difference_step(
            twin_loss, variables, keras_optimizer),
        {"W1_inv": ours.W1_inv, "W2_inv": ours.W2_inv}, variables,
        tolerance=equivalence.FINITE_DIFFERENCE_STEPS)


class CodeObjectivesTest(tf.test.TestCase):
  """code_class_loss (FreeCodes), code_matching_loss and class_image_loss
  (SigmoidImages), the image prior: central differences with respect to the
  optimised variable and every classifier weight the loss reads; K steps
  against keras.optimizers on central-difference gradients."""

  def setUp(self):
    super().setUp()
    self.classifier = _classifier()
    self.one_hot = np.eye(SIZES[3])[[1, 2, 0]]
    self.target_codes = tf.Variable(self.classifier.hidden(_images(8, 3))[1])
    self.labels = tf.constant([1, 2, 0], tf.int64)

  def _codes(self):
    codes = model.FreeCodes(3, SIZES[2], dtype=tf.float64)
    codes.z2.assign(np.random.default_rng(9).normal(size=codes.z2.shape))
    return codes

  def _images(self):
    images = model.SigmoidImages(3, SIZES[0], dtype=tf.float64)
    images.v.assign(np.random.default_rng(10).normal(size=images.v.shape))
    return images

  def _code_matching(self, x):
    return model.code_matching_loss(self.classifier, x, self.target_codes,
                                    tv_weight=0.3, l2_weight=0.2)

  def _class_image(self, x):
    return model.class_image_loss(self.classifier, x, self.labels,
                                  tv_weight=0.3, l2_weight=0.2)

  def test_objectives_match_numpy(self):
    """The values of code_class_loss, code_matching_loss (code_error and
    image_prior) and class_image_loss, written out in NumPy."""
    w = [v.numpy() for v in self.classifier.weights]
    z2 = self._codes().z2.numpy()
    x = self._images()().numpy()
    targets = self.target_codes.numpy()
    logits = numpy_sigmoid(z2) @ w[4] + w[5]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    l2 = numpy_sigmoid(numpy_sigmoid(x @ w[0] + w[1]) @ w[2] + w[3])
    grid = x.reshape(-1, 3, 3)
    prior = (0.3 * ((np.diff(grid, axis=1) ** 2).sum(axis=(1, 2)) +
                    (np.diff(grid, axis=2) ** 2).sum(axis=(1, 2))) +
             0.2 * (x ** 2).sum(axis=1))
    image_logits = l2 @ w[4] + w[5]
    log_softmax = image_logits - np.log(np.exp(image_logits).sum(
        axis=1, keepdims=True))
    equivalence.assert_forward(
        {"code_class_loss": model.code_class_loss(
            self.classifier, tf.constant(z2), tf.constant(self.one_hot)),
         "code_matching_loss": self._code_matching(tf.constant(x)),
         "class_image_loss": self._class_image(tf.constant(x))},
        {"code_class_loss": np.abs(self.one_hot - p).sum(),
         "code_matching_loss": (((l2 - targets) ** 2).sum(axis=1) /
                                (targets ** 2).sum(axis=1) + prior).sum(),
         "class_image_loss": (-log_softmax[np.arange(3), self.labels.numpy()]
                              + prior).sum()})

  def test_code_class_loss_gradients_and_sgd_steps(self):
    codes = self._codes()
    one_hot = tf.constant(self.one_hot)
    c = self.classifier
    equivalence.assert_gradients_match_finite_differences(
        lambda: model.code_class_loss(c, codes(), one_hot),
        {"z2": codes.z2, "W3": c.W3, "b3": c.b3})
    ours, twin = self._codes(), self._codes()
    hyperparameters = equivalence.OPTIMIZER_CASES["sgd"][1]
    step = train.code_step(c, ours, optimizers.SGD([ours.z2],
                                                   **hyperparameters),
                           self.one_hot)
    keras_optimizer = equivalence.keras_optimizer("sgd", hyperparameters,
                                                  [twin.z2])
    twin_loss = lambda: model.code_class_loss(c, twin(), one_hot)  # noqa: E731
    equivalence.assert_optimizer_steps(
        lambda k: step(tf.constant(k)),
        lambda k: equivalence.finite_difference_step(
            twin_loss, {"z2": twin.z2}, keras_optimizer),
        {"z2": ours.z2}, {"z2": twin.z2},
        tolerance=equivalence.FINITE_DIFFERENCE_STEPS)

  def test_pixel_objectives_gradients_and_adam_steps(self):
    c = self.classifier
    for loss_fn, case in ((self._code_matching, 1), (self._class_image, 0)):
      images = self._images()
      equivalence.assert_gradients_match_finite_differences(
          lambda: loss_fn(images()),
          {"v": images.v, **_named(c.weights[:4]),
           **({"W3": c.W3, "b3": c.b3} if loss_fn == self._class_image else
              {"target codes": self.target_codes})})
      ours, twin = self._images(), self._images()
      hyperparameters = equivalence.OPTIMIZER_CASES["adam"][case]
      step = train.pixel_step(ours, optimizers.Adam([ours.v],
                                                    **hyperparameters),
                              loss_fn)
      keras_optimizer = equivalence.keras_optimizer("adam", hyperparameters,
                                                    [twin.v])
      twin_loss = lambda: loss_fn(twin())  # noqa: E731
      equivalence.assert_optimizer_steps(
          lambda k: step(tf.constant(k)),
          lambda k: equivalence.finite_difference_step(
              twin_loss, {"v": twin.v}, keras_optimizer) / 3,
          {"v": ours.v}, {"v": twin.v},
          tolerance=equivalence.FINITE_DIFFERENCE_STEPS)

  def test_image_prior_gradient(self):
    """tv_weight TV(x) + l2_weight |x|^2 (total_variation, squared_norm)
    with respect to the pixels."""
    x = tf.Variable(np.random.default_rng(11).random((2, SIZES[0])))
    equivalence.assert_gradients_match_finite_differences(
        lambda: tf.reduce_sum(model.image_prior(x, 0.7, 0.4)), {"x": x})
    equivalence.assert_gradients_match_finite_differences(
        lambda: tf.reduce_sum(model.total_variation(x)), {"x": x})


if __name__ == "__main__":
  tf.test.main()
