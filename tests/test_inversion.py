"""The inversion experiment: logit and squash at their edges, the inverse
path's forward pass against NumPy, the compiled loops against one step per
call, and small real-MNIST runs that must actually learn. (The equivalence
checks, against tf.keras and finite differences, are in
test_equivalence_inversion.py.)"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import dataclasses
import os
import tempfile

import numpy as np
import tensorflow as tf

from inversion import model
from inversion import plots
from inversion import train
from tests.mnist_fixture import real_mnist
from tfscratch import loop
from tfscratch import optimizers
from tfscratch.lab.errors import NonFiniteError
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

  def test_inverse_step_trains_only_the_inverse_and_skips_empty_batches(self):
    classifier, inverse, x = self.tiny(tf.float32)
    before = [w.numpy() for w in classifier.weights + inverse.weights]
    confidence = tf.nn.softmax(classifier(x)).numpy().max(axis=1)
    # Batches of 2. Above the lower confidence of batch 0: it keeps 1
    # example; above every confidence: no example, the batch is skipped.
    pairs = lambda i: loop.ordered_indices(i, 2, len(x))  # noqa: E731
    step = train.inverse_step(inverse, optimizers.SGD(inverse.weights, 1e-3),
                              tf.constant(x), pairs,
                              float(confidence[:2].min()))
    total, distance, excess, kept = step(tf.constant(0)).numpy()
    self.assertEqual(kept, 1)
    self.assertAllClose(total, distance + excess)
    after = [w.numpy() for w in classifier.weights + inverse.weights]
    for frozen, now in zip(before[:6], after[:6]):
      self.assertAllEqual(frozen, now)
    for trained, now in zip(before[6:], after[6:]):
      self.assertGreater(np.abs(trained - now).max(), 0)
    skip = train.inverse_step(inverse, optimizers.SGD(inverse.weights, 1e-3),
                              tf.constant(x), pairs, float(confidence.max()))
    self.assertAllEqual(skip(tf.constant(1)), [0, 0, 0, 0])
    for unchanged, now in zip(after, classifier.weights + inverse.weights):
      self.assertAllEqual(unchanged, now)


class CompiledLoopTest(tf.test.TestCase):
  """K steps in one call of a compiled loop are K separate steps, bit for
  bit, and each compiled function is traced once. The batches are the
  blog's shuffled walk, over more than one epoch."""

  def test_classifier_steps(self):
    rng = np.random.default_rng(7)
    images = tf.constant(rng.random((96, 784)).astype(np.float32))
    labels = tf.constant(rng.integers(0, 10, 96))
    rows = train.batch_rows(train.Config(batch_size=32, seed=8), 96)
    weights, losses = [], []
    for per_call in (6, 1):  # 6 steps: epoch 0 in order, epoch 1 shuffled
      classifier = model.Classifier(seed=8)
      train_steps = loop.compile_steps(train.classifier_step(
          classifier, optimizers.Adagrad(classifier.weights, 0.05), images,
          labels, rows))
      losses.append(np.concatenate([train_steps(first, per_call)
                                    for first in range(0, 6, per_call)]))
      weights.append([w.numpy() for w in classifier.weights])
      self.assertEqual(loop.trace_counts(f=train_steps), {"f": 1})
    self.assertAllEqual(losses[0], losses[1])
    for k_steps, one_step in zip(*weights):
      self.assertAllEqual(k_steps, one_step)
    self.assertNotAllClose(weights[0][0], model.Classifier(seed=8).W1)

  def test_inverse_steps_match_one_call_per_step(self):
    """Also against calling the step from Python once per step, the code the
    README's numbers first came from (train.inverse_step explains why)."""
    classifier = model.Classifier(TINY_SIZES, seed=9)
    x = np.random.default_rng(10).random((12, TINY_SIZES[0]))
    x = tf.constant(x.astype(np.float32))
    # The median confidence: some batches of 3 are kept whole, some in
    # part, perhaps none.
    threshold = float(np.median(
        tf.nn.softmax(classifier(x)).numpy().max(axis=1)))
    batches = train.batch_rows(train.Config(batch_size=3, seed=9), 12)
    results = []
    for mode in ("6 per call", "1 per call", "python loop"):
      inverse = model.InversePath(classifier, seed=9)
      step = train.inverse_step(inverse,
                                optimizers.Adagrad(inverse.weights, 0.1), x,
                                batches, threshold)
      if mode == "python loop":
        rows = [step(tf.constant(i)).numpy() for i in range(6)]
      else:
        train_steps = loop.compile_steps(step)
        per_call = 6 if mode == "6 per call" else 1
        rows = [train_steps(first, per_call).numpy()
                for first in range(0, 6, per_call)]
        self.assertEqual(train_steps.experimental_get_tracing_count(), 1)
      results.append((np.concatenate(rows).reshape(6, 4),
                      [w.numpy() for w in inverse.weights]))
      self.assertEqual(step.experimental_get_tracing_count(), 1)
    kept = results[0][0][:, 3]
    self.assertGreater(kept.max(), 0)
    for rows, weights in results[1:]:
      self.assertAllEqual(rows, results[0][0])
      for mine, first in zip(weights, results[0][1]):
        self.assertAllEqual(mine, first)

  def test_code_and_pixel_steps(self):
    classifier = model.Classifier(TINY_SIZES, seed=11)
    one_hot = np.eye(3, dtype=np.float32)[[1, 2]]
    target = classifier.hidden(np.full((2, 9), 0.3, np.float32))[1]
    for name in ("codes", "pixels"):
      results = []
      for per_call in (4, 1):
        if name == "codes":
          variables = model.FreeCodes(2, TINY_SIZES[2])
          step = train.code_step(classifier, variables,
                                 optimizers.SGD([variables.z2], 1.0), one_hot)
        else:
          variables = model.SigmoidImages(2, 9, initial_logit=-1.0)
          step = train.pixel_step(
              variables, optimizers.Adam([variables.v], 0.1),
              lambda images: model.code_matching_loss(
                  classifier, images, target, 1e-2, 1e-3))
        train_steps = loop.compile_steps(step)
        losses = np.concatenate([train_steps(first, per_call)
                                 for first in range(0, 4, per_call)])
        results.append((losses, variables.trainable_variables[0].numpy()))
      self.assertAllEqual(results[0][0], results[1][0], msg=name)
      self.assertAllEqual(results[0][1], results[1][1], msg=name)
      self.assertLess(results[0][0][-1], results[0][0][0], msg=name)

  def test_chunks_end_at_every_boundary(self):
    self.assertEqual(list(train.chunks(10, 4)), [(0, 4), (4, 4), (8, 2)])
    self.assertEqual(list(train.chunks(10, 4, 3)),
                     [(0, 3), (3, 1), (4, 2), (6, 2), (8, 1), (9, 1)])
    self.assertEqual(list(train.chunks(3, 100)), [(0, 3)])
    # --log_every=10**9 still reads the losses every 10,000 steps.
    self.assertEqual(list(train.chunks(25_000, 10**9)),
                     [(0, 10_000), (10_000, 10_000), (20_000, 5_000)])

  def test_ordered_indices_wrap_like_the_numpy_batches(self):
    for step in (0, 1, 5, 12345):
      self.assertAllEqual(loop.ordered_indices(tf.constant(step), 3, 7),
                          (step * 3 + np.arange(3)) % 7)

  def test_batch_rows_follow_the_config(self):
    """shuffled: loop.shuffled_indices with the seed (seed, 5), which no
    weight uses; ordered: loop.ordered_indices; anything else refused."""
    for step in (0, 3, 4, 9):
      self.assertAllEqual(
          train.batch_rows(train.Config(batch_size=3, seed=4), 10)(step),
          loop.shuffled_indices(step, 3, 10, (4, 5)))
      self.assertAllEqual(
          train.batch_rows(train.Config(batch_size=3, batch_order="ordered"),
                           10)(step), loop.ordered_indices(step, 3, 10))
    self.assertNotAllEqual(train.batch_rows(train.Config(batch_size=3), 10)(3),
                           loop.ordered_indices(3, 3, 10))
    with self.assertRaisesRegex(ValueError, "batch_order must be one of"):
      train.batch_rows(train.Config(batch_order="random"), 10)


class LearningTest(tf.test.TestCase):
  """Small real-MNIST runs of each stage: every one must beat a baseline."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    mnist = real_mnist(validation_size=5000)
    cls.train = mnist.train
    cls.test = mnist.test.take(1000)
    cls.images = tf.constant(cls.train.images)
    cls.classifier = model.Classifier(seed=0)
    # staticmethod: a tf.function stored on a class would become a method.
    cls.predict = staticmethod(train.make_predict(cls.classifier))
    config = train.Config(steps=300, batch_size=200, learning_rate=0.05,
                          eval_every=300, log_every=100)
    cls.log = Log()
    cls.accuracy, _ = train.train_classifier(
        cls.classifier, cls.images, tf.constant(cls.train.labels),
        train.batch_rows(config, len(cls.train)), cls.test, cls.predict,
        config, cls.log)

  def test_classifier_learns_and_logs_every_step(self):
    self.assertGreater(self.accuracy, 0.85)
    self.assertEqual(self.log.steps(), list(range(300)))
    self.assertEqual(self.log.scalars, [(300, "test_accuracy",
                                         self.accuracy)])
    self.assertLess(np.mean(self.log.losses[-50:]),
                    0.3 * np.mean(self.log.losses[:10]))

  def test_inverse_beats_the_mean_image(self):
    inverse = model.InversePath(self.classifier, seed=0)
    config = train.Config(steps=0, batch_size=500, inverse_steps=150,
                          log_every=50)
    log = Log()
    rows = train.batch_rows(config, len(self.train))
    fraction, traces = train.train_inverse(inverse, self.images, rows,
                                           config, log)
    # The classifier is frozen: the share of each batch it is confident
    # about (softmax above 0.8) can be counted here, batch by batch.
    confident = [np.mean(tf.reduce_max(tf.nn.softmax(self.classifier(
        tf.gather(self.images, rows(i)))), axis=1).numpy() > 0.8)
                 for i in range(150)]
    self.assertAllClose(fraction, np.mean(confident), rtol=1e-6)
    self.assertGreater(fraction, 0.5)
    self.assertEqual(traces, {"inverse_steps": 1, "inverse_step": 1})
    self.assertEqual(log.steps(), list(range(150)))
    self.assertEqual({name for _, name, _ in log.scalars},
                     {"l1_distance_per_example", "excess",
                      "confident_fraction"})
    x_inv = inverse(self.classifier.hidden(self.test.images)[1])[0].numpy()
    error = np.abs(self.test.images - x_inv).mean()
    mean_image = self.train.images[:10000].mean(axis=0)
    baseline = np.abs(self.test.images - mean_image).mean()
    self.assertLess(error, 0.85 * baseline)
    agree = (self.predict(x_inv).numpy() ==
             self.predict(self.test.images).numpy())
    self.assertGreater(agree.mean(), 0.7)

  def test_an_inverse_with_nothing_to_learn_from_is_an_error(self):
    untrained = model.Classifier(seed=1)  # no softmax output near 0.99
    inverse = model.InversePath(untrained, seed=1)
    config = train.Config(steps=0, batch_size=100, inverse_steps=3,
                          confidence=0.99)
    with self.assertRaisesRegex(train.NoConfidentExamples,
                                r"confidence above --confidence=0.99 in 3 "):
      train.train_inverse(inverse, self.images,
                          train.batch_rows(config, len(self.train)), config)

  def test_generated_codes_become_confident(self):
    log = Log()
    config = train.Config(generate_steps=300, log_every=100)
    _, confidence, _ = train.generate_digits(self.classifier, config, log)
    self.assertLess(log.losses[-1], 0.2 * log.losses[0])
    self.assertGreater(confidence.min(), 0.9)

  def test_gradient_inversion_matches_the_code(self):
    originals = self.test.images[:50]
    _, targets = self.classifier.hidden(originals)
    config = train.Config(inversion_steps=150, initial_pixel=0.05,
                          tv_weight=1e-4, l2_weight=0.0, log_every=50)
    images, traces = train.invert_by_gradient(self.classifier, targets,
                                              config)
    start = np.mean(model.code_error(
        self.classifier, np.full((50, 784), 0.05, np.float32), targets))
    end = np.mean(model.code_error(self.classifier, images, targets))
    self.assertLess(end, 0.05 * start)
    agree = (self.predict(images).numpy() ==
             self.predict(originals).numpy())
    self.assertGreater(agree.mean(), 0.9)
    self.assertEqual(traces, {"gradient_inverse_steps": 1})

  def test_class_images_become_confident(self):
    config = train.Config(inversion_steps=100, class_tv_weight=1e-4,
                          log_every=100)
    images, confidence, _ = train.class_conditional_images(self.classifier,
                                                           config)
    self.assertEqual(images.shape, (9, 784))
    self.assertGreater(confidence.min(), 0.99)


class TrainTest(tf.test.TestCase):
  """``train.train`` end to end on a tiny config."""

  CONFIG = train.Config(steps=5, batch_size=100, confidence=0.1,
                        eval_every=2, inverse_steps=4, generate_steps=3,
                        inversion_steps=2, num_eval=36, log_every=3)

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.mnist = real_mnist(validation_size=5000)
    cls.logs = {}

    def logger(stage, total_steps):
      cls.logs[stage] = Log(total_steps)
      return cls.logs[stage]

    cls.results = train.train(cls.CONFIG, cls.mnist, logger)

  def test_every_stage_logs_every_step_and_traces_once(self):
    """Each of its steps once, so the guard in __main__ sees them all."""
    self.assertEqual(list(self.logs), ["classifier", "inverse", "generate",
                                       "gradient_inverse", "class_images"])
    for stage, log in self.logs.items():
      self.assertEqual(log.steps(), list(range(log.total_steps)), stage)
    # Calls end at every multiple of log_every (3) and eval_every (2).
    self.assertEqual(self.logs["classifier"].firsts, [0, 2, 3, 4])
    self.assertEqual([step for step, _, _ in self.logs["classifier"].scalars],
                     [2, 4, 5])
    self.assertEqual(set(self.results.trace_counts.values()), {1})
    self.assertLen(self.results.trace_counts, 7)
    self.assertEqual(self.results.learned.shape, (36, 784))
    self.assertEqual(self.results.gradient.shape, (36, 784))
    self.assertEqual(self.results.features.shape, (100, 784))
    self.assertIsInstance(self.results.test_accuracy, float)

  def test_the_same_config_gives_the_same_numbers(self):
    again = train.train(self.CONFIG, self.mnist)
    for field in dataclasses.fields(train.Results):
      mine, other = (getattr(self.results, field.name),
                     getattr(again, field.name))
      if isinstance(mine, np.ndarray):
        self.assertAllEqual(mine, other, msg=field.name)
      else:
        self.assertEqual(mine, other, msg=field.name)

  def test_runs_eagerly(self):
    """What --run_eagerly does: every tf.function runs as plain Python."""
    tf.config.run_functions_eagerly(True)
    try:
      results = train.train(self.CONFIG, self.mnist)
    finally:
      tf.config.run_functions_eagerly(False)
    # Nothing was traced, and Python computed what the graphs did.
    self.assertEqual(results.trace_counts,
                     {name: 0 for name in self.results.trace_counts})
    self.assertEqual(results.test_accuracy, self.results.test_accuracy)
    for name in ("learned", "gradient", "generated_confidence",
                 "class_image_confidence"):
      self.assertAllClose(getattr(results, name),
                          getattr(self.results, name), rtol=1e-3, atol=1e-4,
                          msg=name)


class ExamplesTest(tf.test.TestCase):

  def test_example_classes_report_the_softmax_of_each_image(self):
    classifier = model.Classifier(TINY_SIZES, seed=12)
    rng = np.random.default_rng(13)
    originals, other = rng.random((2, 5, 9)).astype(np.float32)
    labels = np.array([0, 1, 2, 0, 1])
    examples = train.example_classes(classifier, originals, labels,
                                     {"other": other}, indices=(1, 3))
    self.assertEqual(list(examples), ["test_image_1", "test_image_3"])
    for index in (1, 3):
      example = examples[f"test_image_{index}"]
      self.assertEqual(example["label"], labels[index])
      for name, images in (("original", originals), ("other", other)):
        logits = classifier(images[index:index + 1]).numpy()[0]
        softmax = np.exp(logits) / np.exp(logits).sum()
        self.assertEqual(example[name]["class"], np.argmax(softmax))
        self.assertAllClose(example[name]["probability"], softmax.max())
        self.assertAllClose(example[name]["label_probability"],
                            softmax[labels[index]])


class Log:
  """A stand-in for __main__'s log: remembers what a stage reported."""

  def __init__(self, total_steps=None):
    self.total_steps = total_steps
    self.firsts, self.losses, self.scalars = [], [], []

  def __call__(self, first_step, losses, **scalars):
    self.firsts.append(first_step)
    self.losses.extend(np.asarray(losses).tolist())
    for name, value in scalars.items():
      if np.ndim(value) == 0:
        self.scalars.append((first_step + len(losses), name, value))
      else:
        self.scalars.append((first_step, name, len(value)))

  def steps(self):
    """The 0-based steps whose losses arrived, in order."""
    return list(range(self.firsts[0], self.firsts[0] + len(self.losses)))


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
