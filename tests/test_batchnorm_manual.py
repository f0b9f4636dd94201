"""batchnorm_manual: BatchNorm against keras.layers.BatchNormalization and
tf.nn.batch_normalization, both nets against their keras.Sequential twins
(reference.py), the in-graph training loop (K steps per call equal one step
per call, batches gathered in the graph equal nn.ordered_batch, traced once),
one-example inference, learning on MNIST, and the command line (flag checks,
divergence guard, trace counts)."""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import functools
import json
import os
import subprocess
import sys
import textwrap
import types

import keras
import numpy as np
import tensorflow as tf

from batchnorm_manual import reference, train
from batchnorm_manual.batchnorm import BatchNorm
from batchnorm_manual.model import BatchNormNet, PlainNet, initial_weights
from tests.mnist_fixture import real_mnist
from tfscratch import loop, nn
from tfscratch.optimizers import SGD

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# float32 throughout: agreement to a few units in the 6th significant digit.
TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


def _pre_activations(rng, batch=32, features=7):
  """Like the blog's z_l: shifted and wide (mean ~3, std ~5), float32."""
  return tf.constant(rng.normal(3.0, 5.0, (batch, features)), tf.float32)


def _bn_pair(rng, features=7, momentum=0.9, epsilon=1e-3):
  """Our BatchNorm and a built Keras BatchNormalization with the same
  (random, non-trivial) gamma and beta."""
  ours = BatchNorm(features, momentum=momentum, epsilon=epsilon)
  theirs = keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon)
  theirs.build((None, features))
  gamma = rng.uniform(0.5, 2.0, features).astype(np.float32)
  beta = rng.normal(0.0, 1.0, features).astype(np.float32)
  for layer in (ours, theirs):
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
  return ours, theirs


class BatchNormTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.rng = np.random.default_rng(0)

  def test_defaults_are_keras_defaults(self):
    ours, theirs = BatchNorm(3), keras.layers.BatchNormalization()
    self.assertEqual((ours.momentum, ours.epsilon),
                     (theirs.momentum, theirs.epsilon))
    self.assertEqual((ours.momentum, ours.epsilon), (0.99, 1e-3))
    theirs.build((None, 3))
    for name in ("gamma", "beta", "moving_mean", "moving_variance"):
      self.assertAllEqual(getattr(ours, name), getattr(theirs, name))
    self.assertCountEqual([id(v) for v in ours.trainable_variables],
                          [id(ours.gamma), id(ours.beta)])

  def test_training_output_is_the_formula(self):
    """gamma (x - mean) / sqrt(var + eps) + beta with the BIASED batch
    variance, computed in float64 by NumPy."""
    ours, _ = _bn_pair(self.rng)
    x = _pre_activations(self.rng)
    y, (mean, variance) = ours(x, training=True)
    x64 = x.numpy().astype(np.float64)
    expected = (ours.gamma.numpy() * (x64 - x64.mean(0)) /
                np.sqrt(x64.var(0) + 1e-3) + ours.beta.numpy())
    self.assertAllClose(y, expected, **TOLERANCE)
    self.assertAllClose(mean, x64.mean(0), **TOLERANCE)
    self.assertAllClose(variance, x64.var(0), **TOLERANCE)  # ddof=0

  def test_training_output_matches_keras(self):
    ours, theirs = _bn_pair(self.rng)
    x = _pre_activations(self.rng)
    self.assertAllClose(ours(x, training=True)[0], theirs(x, training=True),
                        **TOLERANCE)

  def test_inference_output_matches_keras(self):
    ours, theirs = _bn_pair(self.rng)
    mean = self.rng.normal(3.0, 1.0, 7).astype(np.float32)
    variance = self.rng.uniform(5.0, 30.0, 7).astype(np.float32)
    for layer in (ours, theirs):
      layer.moving_mean.assign(mean)
      layer.moving_variance.assign(variance)
    x = _pre_activations(self.rng)
    y, used = ours(x, training=False)
    self.assertAllClose(y, theirs(x, training=False), **TOLERANCE)
    self.assertAllEqual(used, (mean, variance))

  def test_gradients_match_keras(self):
    """d loss / d (x, gamma, beta) in both modes, for a loss that weighs every
    output differently (a plain sum would have zero gradient wrt x)."""
    x = _pre_activations(self.rng)
    weights = tf.constant(self.rng.normal(size=(32, 7)), tf.float32)
    for training in (True, False):
      # A fresh pair each time: Keras' training-mode call has moved its
      # moving averages, ours has not.
      ours, theirs = _bn_pair(np.random.default_rng(5))
      for layer in (ours, theirs):
        layer.moving_mean.assign(tf.fill([7], 2.5))
        layer.moving_variance.assign(tf.fill([7], 20.0))
      gradients = []
      for layer, call in ((ours, lambda x: ours(x, training)[0]),
                          (theirs, lambda x: theirs(x, training=training))):
        with tf.GradientTape() as tape:
          tape.watch(x)
          loss = tf.reduce_sum(tf.sin(call(x)) * weights)
        gradients.append(tape.gradient(loss, [x, layer.gamma, layer.beta]))
      for our_gradient, their_gradient in zip(*gradients):
        self.assertAllClose(our_gradient, their_gradient, **TOLERANCE)
      # The gradient wrt x is not zero, so the comparison means something.
      self.assertGreater(float(tf.reduce_max(tf.abs(gradients[0][0]))), 0.01)

  def test_moving_statistics_match_keras_after_updates(self):
    ours, theirs = _bn_pair(self.rng, momentum=0.9)
    for _ in range(6):
      x = _pre_activations(self.rng)
      _, (mean, variance) = ours(x, training=True)
      ours.update_moving_statistics(mean, variance)
      theirs(x, training=True)
    self.assertAllClose(ours.moving_mean, theirs.moving_mean, **TOLERANCE)
    self.assertAllClose(ours.moving_variance, theirs.moving_variance,
                        **TOLERANCE)
    # Six steps of momentum 0.9 from (0, 1): well on the way to (~3, ~25).
    self.assertAllInRange(ours.moving_mean, 0.5, 3.0)
    self.assertAllInRange(ours.moving_variance, 8.0, 25.0)
    x = _pre_activations(self.rng)
    self.assertAllClose(ours(x, training=False)[0],
                        theirs(x, training=False), **TOLERANCE)

  def test_moving_average_keeps_momentum_of_the_old_value(self):
    """Keras' convention: momentum weighs the old value (PyTorch's the new)."""
    ours = BatchNorm(2, momentum=0.75)
    x = tf.constant([[1.0, 10.0], [3.0, 20.0]])
    _, (mean, variance) = ours(x, training=True)
    self.assertAllClose(mean, [2.0, 15.0])
    self.assertAllClose(variance, [1.0, 25.0])
    ours.update_moving_statistics(mean, variance)
    self.assertAllClose(ours.moving_mean, [0.25 * 2.0, 0.25 * 15.0])
    self.assertAllClose(ours.moving_variance,
                        [0.75 + 0.25 * 1.0, 0.75 + 0.25 * 25.0])

  def test_matches_tf_nn_batch_normalization(self):
    ours, _ = _bn_pair(self.rng, epsilon=1e-5)
    x = _pre_activations(self.rng)
    mean, variance = tf.nn.moments(x, axes=[0])
    expected = tf.nn.batch_normalization(x, mean, variance, ours.beta,
                                         ours.gamma, variance_epsilon=1e-5)
    self.assertAllClose(ours(x, training=True)[0], expected, **TOLERANCE)
    ours.moving_mean.assign(mean)
    ours.moving_variance.assign(variance)
    self.assertAllClose(ours(x, training=False)[0], expected, **TOLERANCE)

  def test_call_changes_no_variable(self):
    ours, _ = _bn_pair(self.rng)
    before = [v.numpy() for v in ours.variables]
    for training in (True, False):
      ours(_pre_activations(self.rng), training=training)
    for old, variable in zip(before, ours.variables):
      self.assertAllEqual(old, variable)

  def test_batch_of_one_outputs_beta_and_passes_no_gradient(self):
    """Why --batch_size 1 is refused and one-example batch-statistics
    inference fails: x - mean is exactly 0."""
    ours, _ = _bn_pair(self.rng)
    x = _pre_activations(self.rng, batch=1)
    with tf.GradientTape() as tape:
      tape.watch(x)
      y, (_, variance) = ours(x, training=True)
    self.assertAllEqual(y[0], ours.beta)
    self.assertAllEqual(variance, tf.zeros(7))
    self.assertAllEqual(tape.gradient(y, x), tf.zeros((1, 7)))

  def test_invalid_arguments(self):
    for kwargs in ({"momentum": 1.0}, {"momentum": -0.1}, {"epsilon": 0.0}):
      with self.assertRaises(ValueError):
        BatchNorm(3, **kwargs)


def _digit_like_batch(rng, batch=60):
  """Random (batch, 784) images in [0, 1], ~20% of pixels lit like a digit."""
  images = rng.random((batch, 784)) * (rng.random((batch, 784)) < 0.2)
  return (tf.constant(images, tf.float32),
          tf.constant(rng.integers(0, 10, batch), tf.int64))


def _digit_like_data(rng, num_train=150, num_test=40):
  """A small stand-in for Mnist: train and test splits of digit-like data."""
  splits = {}
  for name, count in (("train", num_train), ("test", num_test)):
    images, labels = _digit_like_batch(rng, count)
    splits[name] = types.SimpleNamespace(images=images.numpy(),
                                         labels=labels.numpy())
  return types.SimpleNamespace(**splits)


def _compiled_sgd_step(net, learning_rate=0.01):
  """One SGD step per call, as the experiment took them before its loop
  moved into the graph."""
  return tf.function(functools.partial(train.sgd_step, net,
                                       SGD(net.weights, learning_rate)))


class NetworkTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.rng = np.random.default_rng(1)
    self.weights = initial_weights(seed=3)

  def test_one_shared_standard_normal_draw(self):
    plain, batchnorm = PlainNet(self.weights), BatchNormNet(self.weights)
    self.assertEqual([w.shape for w in self.weights],
                     [(784, 100), (100, 100), (100, 100), (100, 10)])
    for plain_layer, bn_layer in zip(plain.hidden, batchnorm.hidden):
      self.assertAllEqual(plain_layer.W, bn_layer.W)
      self.assertIsNone(bn_layer.b)
    self.assertAllEqual(initial_weights(seed=3)[0], self.weights[0])
    values = np.concatenate([w.numpy().ravel() for w in self.weights])
    self.assertAllClose([values.mean(), values.std()], [0.0, 1.0], atol=0.01)

  def test_nets_match_keras_sequential_over_sgd_steps(self):
    """Same weights, same batches, 4 SGD steps on the summed cross-entropy:
    same losses, same weights (in the same order), same moving statistics,
    same inference logits."""
    for net_class in (PlainNet, BatchNormNet):
      with self.subTest(net=net_class.__name__):
        ours = net_class(self.weights)
        theirs = reference.keras_twin(ours)
        start = reference.keras_twin(net_class(self.weights))
        self.assertEqual([tuple(v.shape) for v in ours.weights],
                         [tuple(v.shape) for v in theirs.trainable_weights])
        our_step = _compiled_sgd_step(ours)
        their_step = tf.function(reference.keras_sgd_step(theirs, 0.01))
        for _ in range(4):
          images, labels = _digit_like_batch(self.rng)
          self.assertAllClose(our_step(images, labels),
                              their_step(images, labels), **TOLERANCE)
        changed = 0
        for mine, keras_weight, initial in zip(
            ours.weights, theirs.trainable_weights, start.trainable_weights):
          self.assertAllClose(mine, keras_weight, **TOLERANCE)
          changed += not np.allclose(mine, initial, rtol=0, atol=1e-4)
        self.assertEqual(changed, len(ours.weights))  # all of them learned
        if net_class is BatchNormNet:
          for norm, keras_bn in zip(ours.norms,
                                    reference.batchnorm_layers(theirs)):
            self.assertAllClose(norm.moving_mean, keras_bn.moving_mean,
                                **TOLERANCE)
            self.assertAllClose(norm.moving_variance,
                                keras_bn.moving_variance, **TOLERANCE)
        images, _ = _digit_like_batch(self.rng)
        self.assertAllClose(ours(images, training=False),
                            theirs(images, training=False), **TOLERANCE)

  def test_gradients_of_every_weight_match_keras(self):
    ours = BatchNormNet(self.weights, momentum=0.9, epsilon=1e-5)
    for norm in ours.norms:
      norm.gamma.assign(self.rng.uniform(0.5, 2.0, 100))
      norm.beta.assign(self.rng.normal(0.0, 1.0, 100))
    theirs = reference.keras_twin(ours)  # copies gamma and beta too
    images, labels = _digit_like_batch(self.rng)
    gradients = []
    for model, variables in ((lambda x: ours(x, training=True), ours.weights),
                             (lambda x: theirs(x, training=True),
                              theirs.trainable_weights)):
      with tf.GradientTape() as tape:
        loss = nn.summed_cross_entropy(model(images), labels)
      gradients.append(tape.gradient(loss, variables))
    for our_gradient, their_gradient in zip(*gradients):
      self.assertAllClose(our_gradient, their_gradient, **TOLERANCE)

  def test_one_at_a_time_is_the_model_on_batches_of_one(self):
    """The vectorised predictions equal a Python loop over batches of one;
    with batch statistics every example gets the class of sigmoid(beta).
    Each mode's compiled function is traced once, whatever the count."""
    net = BatchNormNet(self.weights)
    step = _compiled_sgd_step(net)
    for _ in range(20):
      step(*_digit_like_batch(self.rng))
    predict = {training: train.compile_predict_one_at_a_time(net, training)
               for training in (True, False)}
    images, _ = _digit_like_batch(self.rng, batch=12)
    for training in (True, False):
      looped = [int(tf.argmax(net(images[i:i + 1], training=training)[0]))
                for i in range(12)]
      self.assertAllEqual(predict[training](images), looped)
      self.assertAllEqual(predict[training](images[:5]), looped[:5])
      self.assertEqual(predict[training].experimental_get_tracing_count(), 1)
    # Whatever the image, the last BN layer outputs its beta.
    h = tf.sigmoid(net.norms[-1].beta[tf.newaxis])
    self.assertAllEqual(predict[True](images),
                        [int(tf.argmax(net.readout(h)[0]))] * 12)


def _variables(learner):
  return [v.numpy() for v in learner.net.variables]


class TrainingLoopTest(tf.test.TestCase):
  """train.py: the loop in the graph changes no number, and traces once."""

  def setUp(self):
    super().setUp()
    self.data = _digit_like_data(np.random.default_rng(2))

  def test_batches_gathered_in_graph_are_ordered_batches(self):
    """Step i trains on nn.ordered_batch(..., i), wrapping round the data."""
    images = np.arange(7 * 3, dtype=np.float32).reshape(7, 3)
    labels = np.arange(7, dtype=np.int64)
    seen = tf.Variable(tf.zeros([4, 3]))

    def step(batch_images, batch_labels):
      seen.assign(batch_images)
      return tf.cast(tf.reduce_sum(batch_labels * 10**tf.range(
          4, dtype=tf.int64)), tf.float32)

    train_steps = loop.compile_walk(
        step, (tf.constant(images), tf.constant(labels)), batch_size=4)
    for i in range(5):
      self.assertEqual(int(train_steps(i, 1)[0]),
                       sum(label * 10**k for k, label in enumerate(
                           nn.ordered_batch(images, labels, 4, i)[1])))
      self.assertAllEqual(seen, nn.ordered_batch(images, labels, 4, i)[0])
    # Far along, where i * batch_size no longer fits in 32 bits.
    i = 2**31 // 4 + 5
    train_steps(i, 1)
    self.assertAllEqual(seen, nn.ordered_batch(images, labels, 4, i)[0])

  def test_k_steps_per_call_equal_one_step_per_call(self):
    """Bit for bit, for both nets: 7 steps in one call of the compiled loop,
    7 calls of one step, and 7 host-fed calls of a compiled single step on
    nn.ordered_batch (how the experiment ran before the loop moved into the
    graph)."""
    config = train.Config(batch_size=60)
    in_one_call, one_per_call = (train.build(config, self.data)
                                 for _ in range(2))
    for name in train.NETS:
      with self.subTest(net=name):
        host_fed = {"plain": PlainNet, "batchnorm": BatchNormNet}[name](
            initial_weights(config.seed))
        host_step = _compiled_sgd_step(host_fed)
        losses = in_one_call[name].train_steps(0, 7).numpy()
        for i in range(7):
          self.assertEqual(
              one_per_call[name].train_steps(i, 1).numpy()[0], losses[i])
          self.assertEqual(host_step(*nn.ordered_batch(
              self.data.train.images, self.data.train.labels, 60, i)).numpy(),
                           losses[i])
        for a, b, c in zip(_variables(in_one_call[name]),
                           _variables(one_per_call[name]),
                           [v.numpy() for v in host_fed.variables]):
          self.assertAllEqual(a, b)
          self.assertAllEqual(a, c)
        self.assertFalse(np.array_equal(_variables(in_one_call[name])[0],
                                        in_one_call[name].initial_values[0]))

  def test_train_evaluates_on_schedule_restarts_and_traces_once(self):
    config = train.Config(steps=7, eval_every=3, learning_rate=0.05)
    learners = train.build(config, self.data)
    logged, evaluated = [], []
    first = train.train(config, learners["batchnorm"], 0.05,
                        log=lambda step, losses: logged.append(
                            (step, len(losses))),
                        on_eval=lambda e: evaluated.append(e.step),
                        look_inside=True)
    self.assertEqual(first.steps, [0, 3, 6, 7])
    self.assertEqual(evaluated, first.steps)
    self.assertEqual(logged, [(0, 3), (3, 3), (6, 1)])
    self.assertLen(first.losses, 7)
    self.assertLen(first.percentiles, 4)
    self.assertLen(first.accuracy_as_one_batch, 4)
    self.assertIsNone(first.diverged_at)
    # restart: a second run repeats the first exactly, another learning
    # rate differs, and nothing was traced again.
    again = train.train(config, learners["batchnorm"], 0.05)
    self.assertAllEqual(again.losses, first.losses)
    self.assertEqual(again.accuracy, first.accuracy)
    self.assertEqual(again.percentiles, [])  # not asked to look inside
    other = train.train(config, learners["batchnorm"], 0.5)
    self.assertNotAllClose(other.losses[1:], first.losses[1:])
    train.train(config, learners["plain"], 0.05)
    train.single_example_accuracy(learners["batchnorm"],
                                  self.data.test.images,
                                  self.data.test.labels)
    counts = train.trace_counts(learners)
    self.assertEqual(set(counts), {
        "plain.train_steps", "plain.evaluate", "batchnorm.train_steps",
        "batchnorm.evaluate", "batchnorm.evaluate_as_one_batch",
        "batchnorm.predict_one_at_a_time.batch_statistics",
        "batchnorm.predict_one_at_a_time.population_statistics"})
    self.assertEqual(set(counts.values()), {1})

  def test_non_finite_loss_stops_the_net_and_names_the_step(self):
    config = train.Config(steps=20, eval_every=10)
    learner = train.build(config, self.data)["plain"]
    curve = train.train(config, learner, np.inf)
    self.assertIsNotNone(curve.diverged_at)
    self.assertFalse(np.isfinite(curve.losses[curve.diverged_at - 1]))
    self.assertTrue(np.isfinite(curve.losses[:curve.diverged_at - 1]).all())
    self.assertEqual(curve.steps, [0])

  def test_sweep_reuses_the_main_run(self):
    config = train.Config(steps=4, eval_every=2, learning_rate=0.01,
                          lr_sweep=(0.01, 0.2))
    learners = train.build(config, self.data)
    main_run = train.train_both(config, learners, 0.01)
    runs = train.sweep(config, learners, main_run)
    self.assertEqual(list(runs), ["0.01", "0.2"])
    self.assertIs(runs["0.01"], main_run)
    self.assertEqual(set(runs["0.2"]), set(train.NETS))
    self.assertEqual(train.steps_to_reach(train.Curve(
        steps=[0, 2, 4], accuracy=[0.1, 0.92, 0.96])),
                     {"0.90": 2, "0.95": 4})


class MnistLearningTest(tf.test.TestCase):

  def test_both_nets_learn_and_one_example_inference(self):
    """300 blog steps: both nets far above chance (BN ahead); one example at
    a time, batch statistics give every image the same class, the moving
    averages give exactly the full-batch inference accuracy."""
    mnist = real_mnist(validation_size=5000)
    config = train.Config(steps=300, eval_every=300, lr_sweep=())
    learners = train.build(config, mnist)
    curves = train.train_both(config, learners, config.learning_rate,
                              look_inside=True)
    chance_loss = 60 * np.log(10)  # summed cross-entropy of uniform logits
    for name, curve in curves.items():
      self.assertEqual(curve.steps, [0, 300])
      self.assertLess(np.mean(curve.losses[-50:]), chance_loss / 2, name)
    accuracy = {name: curve.accuracy[-1] for name, curve in curves.items()}
    self.assertGreater(accuracy["plain"], 0.7)
    self.assertGreater(accuracy["batchnorm"], accuracy["plain"])

    single, classes = train.single_example_accuracy(
        learners["batchnorm"], mnist.test.images, mnist.test.labels)
    self.assertLen(classes, 1)
    self.assertAllClose(single["batch_statistics"],
                        np.mean(mnist.test.labels == classes[0]))
    self.assertAllClose(single["population_statistics"],
                        accuracy["batchnorm"], atol=2e-4)


def _run_main(*flags, output_dir, timeout=300):
  return subprocess.run(
      [sys.executable, "-m", "batchnorm_manual", f"--output_dir={output_dir}",
       *flags], cwd=REPO, capture_output=True, text=True, timeout=timeout)


class CommandLineTest(tf.test.TestCase):

  def assertOneLineError(self, result, pattern):
    """A non-zero exit, ``pattern`` found on stderr, and no traceback."""
    self.assertNotEqual(result.returncode, 0, result.stdout)
    self.assertNotIn("Traceback", result.stderr)
    self.assertRegex(result.stderr, pattern)

  def test_short_run_writes_results_and_figures(self):
    real_mnist()  # skips (or fails in CI) without MNIST
    output_dir = os.path.join(self.get_temp_dir(), "run")
    # --momentum 0.9: moving averages that catch up within a short run.
    result = _run_main("--steps=120", "--eval_every=40", "--momentum=0.9",
                       "--lr_sweep=0.01,0.5", output_dir=output_dir)
    self.assertEqual(result.returncode, 0, result.stderr)
    with open(os.path.join(output_dir, "results.json")) as f:
      results = json.load(f)
    self.assertIsInstance(results["test_accuracy"], float)
    self.assertEqual(results["test_accuracy"],
                     results["test_accuracy_per_net"]["batchnorm"])
    self.assertEqual(set(results["test_accuracy_per_net"]),
                     {"plain", "batchnorm"})
    self.assertIsInstance(results["final_loss"], float)
    self.assertEqual(set(results["single_example_accuracy"]),
                     {"batch_statistics", "population_statistics"})
    self.assertGreater(results["test_accuracy"], 0.5)
    self.assertLess(results["single_example_accuracy"]["batch_statistics"],
                    0.2)
    self.assertAlmostEqual(
        results["single_example_accuracy"]["population_statistics"],
        results["test_accuracy"], delta=2e-4)
    self.assertEqual(set(results["steps_to_accuracy"]), {"0.01", "0.5"})
    for entry in results["steps_to_accuracy"].values():
      self.assertEqual(set(entry["plain"]), {"0.90", "0.95"})
      self.assertEqual(entry["steps_trained"], 120)
    self.assertEqual(results["curves"]["steps"], [0, 40, 80, 120])
    self.assertEqual(results["curves"]["lr_sweep"]["0.5"]["steps"],
                     [0, 40, 80, 120])
    self.assertLen(results["curves"]["sigmoid_input_percentiles"]["plain"], 4)
    # Every compiled function traced once, through the main run, the
    # one-example inference and the sweep.
    self.assertLen(results["trace_counts"], 9)  # 7 + two loss writers
    self.assertEqual(set(results["trace_counts"].values()), {1},
                     results["trace_counts"])
    for name in ("accuracy.png", "sigmoid_input.png", "lr_sweep.png"):
      with open(os.path.join(output_dir, name), "rb") as f:
        self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
    self.assertTrue(os.listdir(os.path.join(output_dir, "tensorboard")))

  def test_run_eagerly(self):
    real_mnist()
    output_dir = os.path.join(self.get_temp_dir(), "eager")
    result = _run_main("--run_eagerly", "--steps=4", "--eval_every=2",
                       "--lr_sweep=", output_dir=output_dir)
    self.assertEqual(result.returncode, 0, result.stderr)
    with open(os.path.join(output_dir, "results.json")) as f:
      self.assertIsInstance(json.load(f)["test_accuracy"], float)

  def test_divergence_exits_with_one_line_and_publishes_nothing(self):
    """A learning rate of 10,000 blows the loss up: the guard stops the run
    (exit 1, one line) before any number is written."""
    real_mnist()
    output_dir = os.path.join(self.get_temp_dir(), "diverged")
    result = _run_main("--learning_rate=1e4", "--steps=400", "--eval_every=20",
                       "--lr_sweep=", output_dir=output_dir)
    self.assertEqual(result.returncode, 1, result.stderr)
    self.assertOneLineError(
        result, r"(^|\n)error: plain net (diverged|loss became)[^\n]*\n$")
    self.assertFalse(os.path.exists(os.path.join(output_dir, "results.json")))

  def test_batch_larger_than_the_training_set_is_refused(self):
    real_mnist()
    output_dir = os.path.join(self.get_temp_dir(), "big_batch")
    result = _run_main("--batch_size=60000", "--steps=2", "--lr_sweep=",
                       output_dir=output_dir)
    self.assertEqual(result.returncode, 1, result.stderr)
    self.assertOneLineError(
        result, r"(^|\n)error: --batch_size=60000 is more than the 55,000 "
        r"training images[^\n]*\n$")
    self.assertFalse(os.path.exists(output_dir))

  def test_flags_are_checked_before_anything_runs(self):
    """Every float flag finite, --steps bounded (it sizes what the run keeps
    in memory), --batch_size at least 2 with the reason. The validators are
    checked in one process (starting TensorFlow for each flag would cost
    seconds apiece); test_batch_larger_than_the_training_set_is_refused
    shows the command line's one-line message."""
    script = textwrap.dedent("""
        import sys
        from absl import flags
        import batchnorm_manual.__main__  # defines the flags
        for argv in sys.argv[1:]:
          flags.FLAGS.unparse_flags()
          try:
            flags.FLAGS(["prog", argv])
            print(argv, "ACCEPTED")
          except flags.Error as error:
            print(argv, "REFUSED", str(error).replace(chr(10), " "))
        """)
    refused = ["--momentum=nan", "--momentum=1", "--momentum=inf",
               "--epsilon=inf", "--epsilon=0", "--epsilon=nan",
               "--learning_rate=inf", "--learning_rate=nan",
               "--learning_rate=-inf", "--lr_sweep=0.1,inf", "--lr_sweep=nan",
               "--steps=1000000000", "--steps=1000001",
               "--divergence_factor=nan", "--batch_size=1"]
    accepted = ["--momentum=0", "--epsilon=1e-5", "--steps=1000000",
                "--lr_sweep="]
    result = subprocess.run([sys.executable, "-c", script, *refused,
                             *accepted], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    self.assertEqual(result.returncode, 0, result.stderr)
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    for argv in refused:
      name = argv[2:].split("=")[0]
      self.assertRegex(lines[argv], rf"^REFUSED .*--{name}", argv)
    self.assertIn("must be finite", lines["--learning_rate=inf"])
    self.assertIn("1000000", lines["--steps=1000000000"])
    self.assertRegex(lines["--batch_size=1"],
                     "--batch_size must be at least 2: the variance")
    for argv in accepted:
      self.assertEqual(lines[argv], "ACCEPTED")

  def test_missing_mnist_is_a_one_line_error(self):
    """The loader's message (its own tests cover corrupt files), exit 1, no
    traceback, no output directory."""
    data_dir = os.path.join(self.get_temp_dir(), "no_mnist_here")
    output_dir = os.path.join(self.get_temp_dir(), "out")
    result = _run_main(f"--data_dir={data_dir}", output_dir=output_dir)
    self.assertEqual(result.returncode, 1, result.stderr)
    self.assertRegex(result.stderr,
                     r"(^|\n)error: MNIST not found: data_dir .*no_mnist_here")
    self.assertNotIn("Traceback", result.stderr)
    self.assertFalse(os.path.exists(output_dir))


if __name__ == "__main__":
  tf.test.main()
