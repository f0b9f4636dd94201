"""The inversion experiment: logit and squash against NumPy, the classifier
against tf.keras, the inverse path's gradients against finite differences,
and small real-MNIST runs that must actually learn."""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from inversion import model
from inversion import plots
from tests.mnist_fixture import real_mnist
from tfscratch import optimizers
from tfscratch.lab.errors import NonFiniteError
from tfscratch.nn import ordered_batch
from tfscratch.lab.outputs import RunOutputs

TINY_SIZES = (9, 5, 4, 3)  # 3x3 "images", two hidden layers, 3 classes


def numpy_logit(p):
  return np.log(p / (1 - p))


def numpy_squash(p):
  """The blog's squash, line for line, in NumPy (rows with a spread only)."""
  shifted = p - p.min(axis=1, keepdims=True)
  scaled = shifted / shifted.max(axis=1, keepdims=True)
  return (scaled - 0.5) * 0.99 + 0.5


def numpy_sigmoid(z):
  return 1 / (1 + np.exp(-z))


def keras_twin(classifier):
  """A tf.keras.Sequential computing the same function, weights copied."""
  n_in, n_1, n_2, n_out = classifier.layer_sizes
  twin = keras.Sequential([
      keras.Input((n_in,)),
      keras.layers.Dense(n_1, activation="sigmoid"),
      keras.layers.Dense(n_2, activation="sigmoid"),
      keras.layers.Dense(n_out),
  ])
  twin.set_weights([w.numpy() for w in classifier.weights])
  return twin


class LogitSquashTest(tf.test.TestCase):

  def test_logit_matches_numpy(self):
    p = np.array([1e-7, 1e-3, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999, 1 - 1e-7])
    self.assertAllClose(model.logit(p), numpy_logit(p), rtol=1e-12, atol=0)
    p32 = np.linspace(0.01, 0.99, 99).astype(np.float32)
    self.assertAllClose(model.logit(p32), numpy_logit(p32.astype(np.float64)),
                        rtol=1e-5, atol=1e-6)

  def test_logit_inverts_sigmoid(self):
    z = np.linspace(-15, 15, 61)
    self.assertAllClose(model.logit(tf.sigmoid(z)), z, rtol=1e-9, atol=1e-9)

  def test_logit_at_the_ends_is_infinite(self):
    self.assertAllEqual(model.logit(np.array([0.0, 1.0])),
                        [-np.inf, np.inf])

  def test_squash_matches_numpy(self):
    p = np.random.default_rng(0).normal(scale=5, size=(7, 30))
    self.assertAllClose(model.squash(p), numpy_squash(p), rtol=1e-12, atol=0)
    p32 = p.astype(np.float32)
    self.assertAllClose(model.squash(p32), numpy_squash(p32.astype(np.float64)),
                        rtol=1e-6, atol=1e-7)

  def test_squash_maps_each_row_onto_0_005_to_0_995(self):
    p = np.random.default_rng(1).normal(size=(4, 10)).astype(np.float32)
    squashed = model.squash(p).numpy()
    self.assertAllClose(squashed.min(axis=1), [0.005] * 4, rtol=0, atol=1e-7)
    self.assertAllClose(squashed.max(axis=1), [0.995] * 4, rtol=0, atol=1e-7)
    # Affine per row: the order of the values is kept.
    self.assertAllEqual(np.argsort(squashed, axis=1), np.argsort(p, axis=1))

  def test_squash_edges_stay_strictly_inside_and_logit_stays_finite(self):
    edge_rows = [
        [3.0, 3.0, 3.0, 3.0],            # constant: 0 / 0 in the blog
        [0.0, 0.0, 0.0, 0.0],
        [-1e30, 1e30, 0.0, 5.0],         # huge but finite range
        [1.0, 1.0 + 1e-6, 1.0, 1.0],     # tiny range
        [-7.0, -7.5, -9.0, -8.0],        # all negative
        [1e-38, 0.0, 0.0, 0.0],          # spread of a subnormal
    ]
    for dtype in (np.float32, np.float64):
      p = np.array(edge_rows, dtype)
      squashed = model.squash(p).numpy()
      self.assertEqual(squashed.dtype, dtype)
      self.assertTrue(np.all(squashed > 0) and np.all(squashed < 1),
                      f"{dtype.__name__}: {squashed}")
      self.assertTrue(np.all(np.isfinite(model.logit(squashed))))
      self.assertAllClose(squashed[0], [0.5] * 4)
      self.assertAllClose(squashed[1], [0.5] * 4)
      self.assertAllClose(squashed[2], [0.005, 0.995, 0.5, 0.5], atol=1e-6)
    # A single column is a constant row too.
    self.assertAllClose(model.squash(np.array([[2.0], [-4.0]])), [[0.5], [0.5]])

  def test_squash_gradient_is_finite_on_a_constant_row(self):
    p = tf.constant([[1.0, 1.0, 1.0], [0.0, 1.0, 3.0]])
    with tf.GradientTape() as tape:
      tape.watch(p)
      value = tf.reduce_sum(model.squash(p) * [[1.0, 2.0, 3.0]])
    gradient = tape.gradient(value, p).numpy()
    self.assertTrue(np.all(np.isfinite(gradient)), gradient)
    self.assertAllEqual(gradient[0], [0.0, 0.0, 0.0])


class PriorTest(tf.test.TestCase):

  def test_total_variation_by_loops(self):
    images = np.random.default_rng(2).random((3, 16))
    expected = []
    for image in images.reshape(3, 4, 4):
      total = 0.0
      for i in range(4):
        for j in range(4):
          if i + 1 < 4:
            total += (image[i + 1, j] - image[i, j]) ** 2
          if j + 1 < 4:
            total += (image[i, j + 1] - image[i, j]) ** 2
      expected.append(total)
    self.assertAllClose(model.total_variation(images), expected, rtol=1e-12)
    self.assertAllClose(model.squared_norm(images),
                        (images ** 2).sum(axis=1), rtol=1e-12)
    self.assertAllClose(model.total_variation(np.full((2, 9), 0.3)), [0, 0])

  def test_sigmoid_images_stay_inside_the_unit_interval(self):
    images = model.SigmoidImages(2, 4, initial_logit=-3.0)
    self.assertAllClose(images(), np.full((2, 4), numpy_sigmoid(-3.0)))
    images.v.assign([[-1e4, 1e4, 0.0, 20.0], [-20.0, 1.0, -1.0, 3.0]])
    x = images().numpy()
    self.assertTrue(np.all((x >= 0) & (x <= 1)))


class KerasEquivalenceTest(tf.test.TestCase):
  """The hand-written classifier is the Keras Sequential with copied weights."""

  def setUp(self):
    super().setUp()
    self.classifier = model.Classifier(seed=3)
    self.twin = keras_twin(self.classifier)
    rng = np.random.default_rng(4)
    self.images = rng.random((32, 784)).astype(np.float32)
    self.labels = rng.integers(0, 10, 32)

  def test_logits_match_keras(self):
    ours = self.classifier(self.images)
    self.assertAllClose(ours, self.twin(self.images), rtol=1e-6, atol=1e-6)
    # Not a trivial match: the logits differ across examples and classes.
    self.assertGreater(np.std(ours.numpy()), 0.05)

  def test_input_and_weight_gradients_match_keras(self):
    def gradients(network, variables):
      images = tf.constant(self.images)
      with tf.GradientTape() as tape:
        tape.watch(images)
        loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=self.labels, logits=network(images)))
      return tape.gradient(loss, [images] + variables)

    ours = gradients(self.classifier, self.classifier.weights)
    theirs = gradients(self.twin, self.twin.trainable_variables)
    self.assertEqual(len(ours), len(theirs))
    for mine, reference in zip(ours, theirs):
      self.assertAllClose(mine, reference, rtol=1e-5, atol=1e-6)
    self.assertGreater(np.abs(ours[0].numpy()).max(), 1e-3)

  def test_adagrad_training_matches_keras(self):
    """Three classifier steps, hand-written Adagrad vs keras.optimizers."""
    optimizer = optimizers.Adagrad(self.classifier.weights, 0.01)
    step = model.make_classifier_train_step(self.classifier, optimizer, 32)
    keras_optimizer = keras.optimizers.Adagrad(learning_rate=0.01)

    @tf.function
    def keras_step(images, labels):
      with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=self.twin(images)))
      variables = self.twin.trainable_variables
      keras_optimizer.apply_gradients(
          zip(tape.gradient(loss, variables), variables))
      return loss

    initial = [w.numpy() for w in self.classifier.weights]
    for _ in range(3):
      ours = step(self.images, self.labels)
      theirs = keras_step(self.images, self.labels)
      self.assertAllClose(ours, theirs, rtol=1e-5, atol=1e-5)
    for mine, reference in zip(self.classifier.weights,
                               self.twin.trainable_variables):
      self.assertAllClose(mine, reference, rtol=1e-5, atol=1e-6)
    self.assertGreater(np.abs(self.classifier.W3.numpy() - initial[4]).max(),
                       1e-3)


class InversePathTest(tf.test.TestCase):

  def tiny(self, dtype=tf.float64):
    classifier = model.Classifier(TINY_SIZES, seed=5, dtype=dtype)
    inverse = model.InversePath(classifier, seed=5)
    x = np.random.default_rng(6).random((6, TINY_SIZES[0]))
    return classifier, inverse, x.astype(dtype.as_numpy_dtype)

  def test_forward_matches_numpy(self):
    classifier, inverse, x = self.tiny()
    w = [v.numpy() for v in classifier.weights]
    l1 = numpy_sigmoid(x @ w[0] + w[1])
    l2 = numpy_sigmoid(l1 @ w[2] + w[3])
    l1_inv = (numpy_logit(l2) - w[3]) @ inverse.W2_inv.numpy()
    x_inv = ((numpy_logit(numpy_squash(l1_inv)) - w[1]) @
             inverse.W1_inv.numpy())
    ours_x_inv, ours_l1_inv = inverse(classifier.hidden(x)[1])
    self.assertAllClose(ours_l1_inv, l1_inv, rtol=1e-9, atol=1e-12)
    self.assertAllClose(ours_x_inv, x_inv, rtol=1e-9, atol=1e-12)
    total, distance, excess = model.inverse_loss(x, ours_x_inv, ours_l1_inv)
    self.assertAllClose(distance, np.abs(x - x_inv).sum(), rtol=1e-12)
    self.assertAllClose(excess, 0.5 * l1_inv.min() ** 2 +
                        0.5 * (l1_inv.max() - 1) ** 2, rtol=1e-12)
    self.assertAllClose(total, distance + excess, rtol=1e-12)

  def test_weight_gradients_match_finite_differences(self):
    classifier, inverse, x = self.tiny()
    _, l2 = classifier.hidden(x)

    def loss():
      return model.inverse_loss(x, *inverse(l2))[0]

    with tf.GradientTape() as tape:
      value = loss()
    analytic = tape.gradient(value, inverse.weights)
    epsilon = 1e-6
    for variable, gradient in zip(inverse.weights, analytic):
      numeric = np.zeros(variable.shape)
      original = variable.numpy()
      for index in np.ndindex(*variable.shape):
        for sign in (1, -1):
          shifted = original.copy()
          shifted[index] += sign * epsilon
          variable.assign(shifted)
          numeric[index] += sign * loss().numpy() / (2 * epsilon)
      variable.assign(original)
      self.assertAllClose(gradient, numeric, rtol=1e-5, atol=1e-7,
                          msg=variable.name)
      self.assertGreater(np.abs(numeric).max(), 1e-2)

  def test_inverse_step_trains_only_the_inverse_and_traces_once(self):
    classifier, inverse, x = self.tiny(tf.float32)
    before = [w.numpy() for w in classifier.weights + inverse.weights]
    # SGD's learning rate is float32, so the step runs in float32.
    step = model.make_inverse_train_step(
        inverse, optimizers.SGD(inverse.weights, 1e-3))
    for count in (6, 3, 5):
      step(x[:count])
    after = [w.numpy() for w in classifier.weights + inverse.weights]
    for frozen, now in zip(before[:6], after[:6]):
      self.assertAllEqual(frozen, now)
    for trained, now in zip(before[6:], after[6:]):
      self.assertGreater(np.abs(trained - now).max(), 0)
    self.assertEqual(step.experimental_get_tracing_count(), 1)


class LearningTest(tf.test.TestCase):
  """Small real-MNIST runs: every stage must beat a computed baseline."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    mnist = real_mnist(validation_size=5000)
    cls.train = mnist.train
    cls.test = mnist.test.take(1000)
    cls.classifier = model.Classifier(seed=0)
    optimizer = optimizers.Adagrad(cls.classifier.weights, 0.05)
    step = model.make_classifier_train_step(cls.classifier, optimizer, 200)
    for i in range(300):
      step(*ordered_batch(cls.train.images, cls.train.labels, 200, i))

  def test_classifier_learns(self):
    predictions = np.argmax(self.classifier(self.test.images).numpy(), axis=1)
    self.assertGreater(np.mean(predictions == self.test.labels), 0.85)

  def test_inverse_beats_the_mean_image(self):
    inverse = model.InversePath(self.classifier, seed=0)
    optimizer = optimizers.Adagrad(inverse.weights, 0.01)
    step = model.make_inverse_train_step(inverse, optimizer)
    probabilities = model.make_probabilities(self.classifier)
    for i in range(150):
      images, _ = ordered_batch(self.train.images, self.train.labels, 500, i)
      confident = probabilities(images).numpy().max(axis=1) > 0.8
      step(images[confident])
    x_inv = inverse(self.classifier.hidden(self.test.images)[1])[0].numpy()
    error = np.abs(self.test.images - x_inv).mean()
    mean_image = self.train.images[:10000].mean(axis=0)
    baseline = np.abs(self.test.images - mean_image).mean()
    self.assertLess(error, 0.85 * baseline)
    agree = (np.argmax(self.classifier(x_inv).numpy(), axis=1) ==
             np.argmax(self.classifier(self.test.images).numpy(), axis=1))
    self.assertGreater(agree.mean(), 0.7)

  def test_generated_codes_become_confident(self):
    codes = model.FreeCodes(9, 100)
    one_hot = np.eye(10, dtype=np.float32)[1:]
    step = model.make_code_step(self.classifier, codes,
                                optimizers.SGD([codes.z2], 1.0), one_hot)
    first = float(step())
    for _ in range(299):
      loss = float(step())
    self.assertLess(loss, 0.2 * first)
    probabilities = tf.nn.softmax(
        self.classifier.readout(tf.sigmoid(codes()))).numpy()
    self.assertAllEqual(np.argmax(probabilities, axis=1), np.arange(1, 10))
    self.assertGreater(probabilities[np.arange(9), np.arange(1, 10)].min(),
                       0.9)

  def test_gradient_inversion_matches_the_code(self):
    originals = self.test.images[:50]
    _, targets = self.classifier.hidden(originals)
    images = model.SigmoidImages(50, 784, initial_logit=-3.0)
    step = model.make_pixel_step(
        images, optimizers.Adam([images.v], 0.1),
        lambda x: model.code_matching_loss(self.classifier, x, targets,
                                           1e-4, 0.0))
    start = np.mean(model.code_error(self.classifier, images(), targets))
    for _ in range(150):
      step()
    end = np.mean(model.code_error(self.classifier, images(), targets))
    self.assertLess(end, 0.05 * start)
    agree = (np.argmax(self.classifier(images()).numpy(), axis=1) ==
             np.argmax(self.classifier(originals).numpy(), axis=1))
    self.assertGreater(agree.mean(), 0.9)
    self.assertEqual(step.experimental_get_tracing_count(), 1)

  def test_class_images_become_confident(self):
    labels = tf.constant([3, 7], tf.int64)
    images = model.SigmoidImages(2, 784, initial_logit=-3.0)
    step = model.make_pixel_step(
        images, optimizers.Adam([images.v], 0.1),
        lambda x: model.class_image_loss(self.classifier, x, labels, 1e-4,
                                         0.0))
    for _ in range(100):
      step()
    probabilities = tf.nn.softmax(self.classifier(images())).numpy()
    self.assertGreater(probabilities[[0, 1], [3, 7]].min(), 0.99)


class PlotsTest(tf.test.TestCase):

  def test_display_range_stretches_each_image(self):
    images = np.array([[-2.0, 0.0, 2.0], [5.0, 5.0, 5.0], [0.2, 0.4, 0.3]])
    self.assertAllClose(plots.display_range(images),
                        [[0, 0.5, 1], [0, 0, 0], [0, 1, 0.5]])

  def test_non_finite_images_are_refused_naming_the_step(self):
    images = np.zeros((4, 784), np.float32)
    images[2, 10] = np.nan
    with self.assertRaisesRegex(NonFiniteError,
                                r"1 of 3136 .* after code generation step 42"):
      plots.require_finite(images, "generated digits", "code generation", 42)
    with tempfile.TemporaryDirectory() as directory:
      outputs = RunOutputs(os.path.join(directory, "run"))
      with self.assertRaises(NonFiniteError):
        plots.save_grids(outputs, "bad", [("digits", images)], columns=2,
                         stage="inverse training", step=7)
      plots.save_grids(outputs, "good", [("digits", images[:2])], columns=2,
                       stage="inverse training", step=7)
      outputs.summary_writer.close()
      self.assertFalse(os.path.exists(outputs.path("bad.png")))
      with open(outputs.path("good.png"), "rb") as f:
        self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


if __name__ == "__main__":
  tf.test.main()
