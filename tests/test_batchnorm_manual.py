"""batchnorm_manual: BatchNorm against its formula, Keras' defaults and
tf.nn.batch_normalization (the float64 equivalence with Keras, both nets
included, is in test_equivalence_batchnorm_manual.py), the in-graph
training loop (K steps per call equal one step per call, batches
gathered in the graph follow the 2016 next_batch, traced once), the post
versions' presets, the sweep's seeds and the claims'
summary, one-example inference, learning on MNIST, and the command line
(flag checks, divergence guard, trace counts)."""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import dataclasses
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

from batchnorm_manual import claims, data, train
from batchnorm_manual.batchnorm import BatchNorm
from batchnorm_manual.model import BatchNormNet, PlainNet, initial_weights
from tests.mnist_fixture import real_mnist
from tests.cli_checks import assert_one_line_error
from tfscratch import loop
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

  def test_batches_follow_the_2016_next_batch(self):
    """build's walk is tfscratch.loop's 2016 next_batch walk (pinned against
    that reader in tests/test_tfscratch.py) seeded by (seed, 1000), which
    no weight uses; at full size: 916 batches of 60 an epoch, the last 40
    images left out of epoch 0, epoch 1 a permutation."""
    self.assertEqual(data.walk_seed(7), (7, 1000))
    learner = train.build(train.Config(seed=7, batch_size=60),
                          _digit_like_data(np.random.default_rng(0)))["plain"]
    self.assertAllEqual([learner.walk(i) for i in range(6)],
                        [loop.shuffled_indices(i, 60, 150, (7, 1000))
                         for i in range(6)])
    big = loop.make_walk("shuffled", 60, 55_000, data.walk_seed(0))
    self.assertAllEqual(big(915), np.arange(54_900, 54_960))
    self.assertAllEqual(big(916),
                        loop.epoch_order(1, 55_000, (0, 1000)).numpy()[:60])
    self.assertNotAllEqual(big(916), np.arange(60))

  def test_k_steps_per_call_equal_one_step_per_call(self):
    """Bit for bit, for both nets: 7 steps in one call of the compiled loop
    and 7 calls of one step. Against 7 host-fed calls of a compiled single
    step on the rows of the 2016 next_batch (2 batches of 60 an epoch of
    150: 3 reshuffles), to float32 rounding: on the reshuffled batches the
    BN net's loss can differ in its last bit (the in-order walk is bit for
    bit; we have not pinned down which kernel orders its sums differently).
    """
    config = train.Config(batch_size=60)
    walk = loop.make_walk("shuffled", 60, 150, data.walk_seed(config.seed))
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
          rows = walk(i).numpy()
          self.assertAllClose(host_step(self.data.train.images[rows],
                                        self.data.train.labels[rows]),
                              losses[i], rtol=1e-6, atol=0)
        for a, b, c in zip(_variables(in_one_call[name]),
                           _variables(one_per_call[name]),
                           [v.numpy() for v in host_fed.variables]):
          self.assertAllEqual(a, b)
          self.assertAllClose(a, c, **TOLERANCE)
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
    self.assertLen(first.post_figure_means, 4)
    self.assertLen(first.post_figure_means[0], 5)
    # The BN net's layer-2 inputs normalised with the test set's own
    # statistics have mean beta: the post's "With BN" curves are beta_2.
    self.assertAllClose(first.post_figure_means[-1],
                        learners["batchnorm"].net.norms[1].beta[:5],
                        atol=1e-5)
    self.assertLen(first.train_loss, 4)
    self.assertLen(first.test_loss, 4)
    self.assertIsNone(first.diverged_at)
    # restart: a second run repeats the first exactly, another learning
    # rate differs, and nothing was traced again.
    again = train.train(config, learners["batchnorm"], 0.05)
    self.assertAllEqual(again.losses, first.losses)
    self.assertEqual(again.accuracy, first.accuracy)
    self.assertEqual(again.percentiles, [])  # not asked to look inside
    other = train.train(config, learners["batchnorm"], 0.5)
    self.assertNotAllClose(other.losses[1:], first.losses[1:])
    train.train(config, learners["plain"], 0.05, look_inside=True)
    train.single_example_accuracy(learners["batchnorm"],
                                  self.data.test.images,
                                  self.data.test.labels)
    counts = train.trace_counts(learners)
    self.assertEqual(set(counts), {
        "plain.train_steps", "plain.evaluate", "batchnorm.train_steps",
        "batchnorm.evaluate", "batchnorm.evaluate_as_one_batch",
        "plain.measure", "batchnorm.measure",
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

  def test_sweep_reuses_the_main_run_and_restarts_each_seed_exactly(self):
    """Seed 1 of the sweep, reached by restarts of seed 0's compiled nets,
    is bit for bit a fresh build with --seed=1 (weights and shuffles)."""
    config = train.Config(steps=4, eval_every=2, learning_rate=0.01,
                          lr_sweep=(0.01, 0.2), sweep_seeds=2)
    learners = train.build(config, self.data)
    main_run = train.train_both(config, learners, 0.01)
    runs = train.sweep(config, learners, main_run)
    self.assertEqual(list(runs), [0, 1])
    self.assertEqual(list(runs[1]), ["0.01", "0.2"])
    self.assertIs(runs[0]["0.01"], main_run)
    self.assertEqual(set(runs[0]["0.2"]), set(train.NETS))
    fresh_config = dataclasses.replace(config, seed=1, steps=7)
    fresh = train.build(fresh_config, self.data)
    for name in train.NETS:
      # 7 steps: past the epoch boundary (2 batches of 60 from 150).
      restarted = train.train(fresh_config, learners[name], 0.01, seed=1)
      self.assertAllEqual(restarted.losses, train.train(
          fresh_config, fresh[name], 0.01).losses)
      self.assertNotAllClose(restarted.losses[1:], train.train(
          fresh_config, learners[name], 0.01, seed=0).losses[1:])
    counts = train.trace_counts(learners)
    for name in train.NETS:  # (evaluate: only when looking inside)
      self.assertEqual((counts[f"{name}.train_steps"],
                        counts[f"{name}.measure"]), (1, 1))
    self.assertEqual(train.steps_to_reach(train.Curve(
        steps=[0, 2, 4], accuracy=[0.1, 0.92, 0.96])),
                     {"0.90": 2, "0.93": 4, "0.95": 4})

  def test_presets_give_each_post_versions_setting(self):
    self.assertEqual(train.preset("2016"), train.Config())
    revised = train.preset("revised", seed=3)
    self.assertEqual(
        (revised.post_version, revised.hidden_sizes, revised.steps,
         revised.momentum, revised.learning_rate, revised.batch_size,
         revised.seed),
        ("revised", (100, 100), 40_000, 0.999, 0.01, 60, 3))
    learners = train.build(dataclasses.replace(revised, steps=2), self.data)
    for name, learner in learners.items():
      self.assertEqual([tuple(v.shape) for v in learner.net.weights
                        if len(v.shape) == 2],
                       [(784, 100), (100, 100), (100, 10)], name)
    self.assertEqual([norm.momentum for norm in
                      learners["batchnorm"].net.norms], [0.999, 0.999])
    with self.assertRaisesRegex(ValueError, "post_version"):
      train.preset("2017")


def _curve(accuracy, diverged_at=None, gap=0.01):
  """A Curve evaluated every 500 steps with these test accuracies."""
  return train.Curve(
      steps=list(range(0, 500 * len(accuracy), 500)), accuracy=accuracy,
      train_accuracy=[a + gap for a in accuracy],
      train_loss=[0.1] * len(accuracy), test_loss=[0.1 + gap] * len(accuracy),
      diverged_at=diverged_at)


class ClaimsTest(tf.test.TestCase):

  def test_summary_of_hand_made_curves(self):
    """Two seeds: the plain net best at 0.01 (reaches 90% at step 1000 or
    1500), BN best at 0.1 (500 both times; one seed diverged at 0.5, so 0.5
    is never a best rate): ratios 2 and 3."""
    flat = [0.1] * 5
    runs = {seed: {
        "0.01": {"plain": _curve([0.1, 0.5, 0.9 if seed else 0.8, 0.92,
                                  0.94], gap=0.03),
                 "batchnorm": _curve([0.1, 0.8, 0.9, 0.93, 0.95])},
        "0.1": {"plain": _curve(flat),
                "batchnorm": _curve([0.1, 0.9, 0.95, 0.96, 0.97])},
        "0.5": {"plain": _curve(flat),
                "batchnorm": _curve([0.1, 0.95, 0.97, 0.98, 0.99],
                                    diverged_at=None if seed else 3)}}
            for seed in (0, 1)}
    summary = claims.summarize(runs)
    self.assertEqual(summary["best_rate"], {"plain": "0.01",
                                            "batchnorm": "0.1"})
    table = summary["learning_rates"]
    self.assertEqual(table["0.5"]["batchnorm"]["diverged"], 1)
    # Mean of the evaluations in the last 1,000 steps: 1000, 1500, 2000.
    self.assertAllClose(table["0.1"]["batchnorm"]["final_accuracy"]["mean"],
                        np.mean([0.95, 0.96, 0.97]))
    speed = summary["speed_up"]["0.90"]
    self.assertEqual(speed["best_rate"], {"plain": "0.01",
                                          "batchnorm": "0.1"})
    self.assertEqual((speed["ratio"]["min"], speed["ratio"]["max"]),
                     (2.0, 3.0))
    self.assertAllClose(speed["ratio"]["std"], np.std([2, 3], ddof=1))
    self.assertNotIn("ratio", summary["speed_up"]["0.95"])  # plain: never
    gaps = summary["regularisation"]
    self.assertAllClose(gaps["plain"]["accuracy_gap"]["mean"], 0.03)
    self.assertAllClose(gaps["batchnorm"]["loss_gap"]["mean"], 0.01)
    self.assertEqual(summary["regularisation_at_0.01"]["batchnorm"]
                     ["learning_rate"], "0.01")


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
    self.assertEqual(results["post_version"], "2016")
    self.assertEqual(results["settings"]["hidden_sizes"], [100, 100, 100])
    self.assertEqual(results["settings"]["split"], "blog")
    self.assertEqual(results["settings"]["batch_order"], "shuffled")
    self.assertEqual(results["settings"]["training_images"], 55_000)
    self.assertEqual(set(results["single_example_accuracy_first_100"]),
                     {"batch_statistics", "population_statistics"})
    self.assertEqual(set(results["steps_to_accuracy"]), {"0.01", "0.5"})
    for entry in results["steps_to_accuracy"].values():
      self.assertEqual(set(entry["plain"]), {"0.90", "0.93", "0.95"})
      self.assertEqual(entry["steps_trained"], 120)
    self.assertEqual(results["curves"]["steps"], [0, 40, 80, 120])
    self.assertEqual(set(results["curves"]["lr_sweep"]), {"0"})
    self.assertEqual(results["curves"]["lr_sweep"]["0"]["0.5"]["steps"],
                     [0, 40, 80, 120])
    self.assertEqual(set(results["claims"]["learning_rates"]), {"0.01", "0.5"})
    self.assertLen(results["curves"]["train_loss"]["plain"], 4)
    self.assertLen(
        results["curves"]["post_figure_sigmoid_input_means"]["plain"], 4)
    self.assertLen(results["curves"]["sigmoid_input_percentiles"]["plain"], 4)
    # Every compiled function traced once, through the main run, the
    # one-example inference and the sweep.
    self.assertLen(results["trace_counts"], 11)  # 9 + two loss writers
    self.assertEqual(set(results["trace_counts"].values()), {1},
                     results["trace_counts"])
    for name in ("accuracy.png", "sigmoid_input.png", "lr_sweep.png",
                 "post_sigmoid_means.png", "claims.png"):
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
      results = json.load(f)
    self.assertIsInstance(results["test_accuracy"], float)
    # Eagerly, every tf.function ran as Python: none was traced.
    self.assertIn("batchnorm.train_steps", results["trace_counts"])
    self.assertEqual(set(results["trace_counts"].values()), {0},
                     results["trace_counts"])
    self.assertEqual(results["curves"]["steps"], [0, 2, 4])

  def test_divergence_exits_with_one_line_and_publishes_nothing(self):
    """A learning rate of 10,000 blows the loss up: the guard stops the run
    (exit 1, one line) before any number is written."""
    real_mnist()
    output_dir = os.path.join(self.get_temp_dir(), "diverged")
    result = _run_main("--learning_rate=1e4", "--steps=400", "--eval_every=20",
                       "--lr_sweep=", output_dir=output_dir)
    assert_one_line_error(self, result, "error: plain net ")
    self.assertRegex(result.stderr, r"^error: plain net (diverged|loss became)")
    self.assertFalse(os.path.exists(os.path.join(output_dir, "results.json")))

  def test_batch_larger_than_the_training_set_is_refused(self):
    real_mnist()
    output_dir = os.path.join(self.get_temp_dir(), "big_batch")
    result = _run_main("--batch_size=60000", "--steps=2", "--lr_sweep=",
                       output_dir=output_dir)
    assert_one_line_error(self, result, "error: --batch_size=60000 is more "
                          "than the 55,000 training images")
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
        import batchnorm_manual.__main__ as main  # defines the flags
        for argv in sys.argv[1:]:
          flags.FLAGS.unparse_flags()
          try:
            flags.FLAGS(["prog", *argv.split()])
            config = main.config_from_flags()
            print(argv, "ACCEPTED", config.post_version, config.steps,
                  config.momentum, *config.hidden_sizes)
          except flags.Error as error:
            print(argv, "REFUSED", str(error).replace(chr(10), " "))
        """)
    refused = ["--momentum=nan", "--momentum=1", "--momentum=inf",
               "--epsilon=inf", "--epsilon=0", "--epsilon=nan",
               "--learning_rate=inf", "--learning_rate=nan",
               "--learning_rate=-inf", "--lr_sweep=0.1,inf", "--lr_sweep=nan",
               "--steps=1000000000", "--steps=1000001",
               "--divergence_factor=nan", "--batch_size=1",
               "--post_version=2017", "--post_version=", "--split=last",
               "--batch_order=random", "--sweep_seeds=0",
               "--sweep_seeds=101"]
    accepted = ["--momentum=0", "--epsilon=1e-5", "--steps=1000000",
                "--lr_sweep=", "--sweep_seeds=100"]
    presets = {  # argv: (post_version, steps, momentum, hidden sizes)
        "--post_version=2016": "2016 10000 0.99 100 100 100",
        "--post_version=revised": "revised 40000 0.999 100 100",
        "--post_version=revised --steps=5": "revised 5 0.999 100 100",
        "--post_version=revised --momentum=0.9": "revised 40000 0.9 100 100"}
    result = subprocess.run([sys.executable, "-c", script, *refused,
                             *accepted, *presets], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    self.assertEqual(result.returncode, 0, result.stderr)
    lines = {}
    for line in result.stdout.splitlines():
      argv = max((a for a in (*refused, *accepted, *presets)
                  if line.startswith(a + " ")), key=len)
      lines[argv] = line[len(argv) + 1:]
    for argv in refused:
      name = argv[2:].split("=")[0]
      self.assertRegex(lines[argv], rf"^REFUSED .*--{name}", argv)
    self.assertIn("must be finite", lines["--learning_rate=inf"])
    self.assertIn("1000000", lines["--steps=1000000000"])
    self.assertRegex(lines["--batch_size=1"],
                     "--batch_size must be at least 2: the variance")
    for argv in accepted:
      self.assertTrue(lines[argv].startswith("ACCEPTED 2016"), argv)
    for argv, expected in presets.items():
      self.assertEqual(lines[argv], "ACCEPTED " + expected, argv)

  def test_missing_mnist_is_a_one_line_error(self):
    """The loader's message (its own tests cover corrupt files), exit 1, no
    traceback, no output directory."""
    data_dir = os.path.join(self.get_temp_dir(), "no_mnist_here")
    output_dir = os.path.join(self.get_temp_dir(), "out")
    result = _run_main(f"--data_dir={data_dir}", output_dir=output_dir)
    assert_one_line_error(self, result, "error: MNIST not found: data_dir ",
                          "no_mnist_here")
    self.assertFalse(os.path.exists(output_dir))


if __name__ == "__main__":
  tf.test.main()
