"""batchnorm_manual: BatchNorm against keras.layers.BatchNormalization and
tf.nn.batch_normalization, both nets against keras.Sequential, one-example
inference, learning on MNIST, and the command line."""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import json
import os
import subprocess
import sys

import keras
import numpy as np
import tensorflow as tf

from batchnorm_manual.batchnorm import BatchNorm
from batchnorm_manual.model import (BatchNormNet, PlainNet, initial_weights,
                                    make_evaluate, make_train_step,
                                    predict_one_at_a_time)
from tests.mnist_fixture import real_mnist
from tfscratch import nn
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


def _keras_twin(ours, momentum=0.99, epsilon=1e-3):
  """The keras.Sequential of ``ours`` (either net), holding ours' weights."""
  batchnorm = isinstance(ours, BatchNormNet)
  layers = [keras.Input((784,))]
  for _ in ours.hidden:
    layers.append(keras.layers.Dense(100, use_bias=not batchnorm))
    if batchnorm:
      layers.append(keras.layers.BatchNormalization(momentum=momentum,
                                                    epsilon=epsilon))
    layers.append(keras.layers.Activation("sigmoid"))
  layers.append(keras.layers.Dense(10))
  model = keras.Sequential(layers)
  dense = [layer for layer in model.layers
           if isinstance(layer, keras.layers.Dense)]
  for keras_layer, our_layer in zip(dense, [*ours.hidden, ours.readout]):
    keras_layer.kernel.assign(our_layer.W)
    if our_layer.b is not None:
      keras_layer.bias.assign(our_layer.b)
  return model


def _keras_train_step(model, learning_rate):
  optimizer = keras.optimizers.SGD(learning_rate)
  optimizer.build(model.trainable_weights)

  @tf.function
  def train_step(images, labels):
    with tf.GradientTape() as tape:
      loss = nn.summed_cross_entropy(model(images, training=True), labels)
    optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_weights),
                                  model.trainable_weights))
    return loss

  return train_step


def _digit_like_batch(rng, batch=60):
  """Random (batch, 784) images in [0, 1], ~20% of pixels lit like a digit."""
  images = rng.random((batch, 784)) * (rng.random((batch, 784)) < 0.2)
  return (tf.constant(images, tf.float32),
          tf.constant(rng.integers(0, 10, batch), tf.int64))


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
        theirs = _keras_twin(ours)
        self.assertEqual([tuple(v.shape) for v in ours.weights],
                         [tuple(v.shape) for v in theirs.trainable_weights])
        our_step = make_train_step(ours, SGD(ours.weights, 0.01), 60)
        their_step = _keras_train_step(theirs, 0.01)
        for _ in range(4):
          images, labels = _digit_like_batch(self.rng)
          self.assertAllClose(our_step(images, labels),
                              their_step(images, labels), **TOLERANCE)
        changed = 0
        for mine, keras_weight, start in zip(
            ours.weights, theirs.trainable_weights,
            _keras_twin(net_class(self.weights)).trainable_weights):
          self.assertAllClose(mine, keras_weight, **TOLERANCE)
          changed += not np.allclose(mine, start, rtol=0, atol=1e-4)
        self.assertEqual(changed, len(ours.weights))  # all of them learned
        if net_class is BatchNormNet:
          keras_bns = [layer for layer in theirs.layers if isinstance(
              layer, keras.layers.BatchNormalization)]
          for norm, keras_bn in zip(ours.norms, keras_bns):
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
    theirs = _keras_twin(ours, momentum=0.9, epsilon=1e-5)
    keras_bns = [layer for layer in theirs.layers
                 if isinstance(layer, keras.layers.BatchNormalization)]
    for norm, keras_bn in zip(ours.norms, keras_bns):
      keras_bn.gamma.assign(norm.gamma)
      keras_bn.beta.assign(norm.beta)
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

  def test_train_step_traces_once(self):
    net = BatchNormNet(self.weights)
    step = make_train_step(net, SGD(net.weights, 0.01), 60)
    for _ in range(3):
      step(*_digit_like_batch(self.rng))
    self.assertEqual(step.experimental_get_tracing_count(), 1)

  def test_one_at_a_time_is_the_model_on_batches_of_one(self):
    """The vectorised predictions equal a Python loop over batches of one;
    with batch statistics every example gets the class of sigmoid(beta)."""
    net = BatchNormNet(self.weights)
    step = make_train_step(net, SGD(net.weights, 0.01), 60)
    for _ in range(20):
      step(*_digit_like_batch(self.rng))
    images, _ = _digit_like_batch(self.rng, batch=12)
    for training in (True, False):
      looped = [int(tf.argmax(net(images[i:i + 1], training=training)[0]))
                for i in range(12)]
      self.assertAllEqual(predict_one_at_a_time(net, images, training),
                          looped)
    # Whatever the image, the last BN layer outputs its beta.
    h = tf.sigmoid(net.norms[-1].beta[tf.newaxis])
    self.assertAllEqual(predict_one_at_a_time(net, images, True),
                        [int(tf.argmax(net.readout(h)[0]))] * 12)


class MnistLearningTest(tf.test.TestCase):

  def test_both_nets_learn_and_one_example_inference(self):
    """300 blog steps: both nets far above chance (BN ahead); one example at
    a time, batch statistics give every image the same class, the moving
    averages give exactly the full-batch inference accuracy."""
    mnist = real_mnist(validation_size=5000)
    weights = initial_weights(seed=0)
    nets = {"plain": PlainNet(weights), "batchnorm": BatchNormNet(weights)}
    steps = {name: make_train_step(net, SGD(net.weights, 0.01), 60)
             for name, net in nets.items()}
    losses = {name: [] for name in nets}
    for step in range(300):
      images, labels = nn.ordered_batch(mnist.train.images,
                                        mnist.train.labels, 60, step)
      for name, train_step in steps.items():
        losses[name].append(float(train_step(images, labels)))
    accuracy = {name: float(make_evaluate(net)(mnist.test.images,
                                               mnist.test.labels)[0])
                for name, net in nets.items()}
    chance_loss = 60 * np.log(10)  # summed cross-entropy of uniform logits
    for name in nets:
      self.assertLess(np.mean(losses[name][-50:]), chance_loss / 2, name)
    self.assertGreater(accuracy["plain"], 0.7)
    self.assertGreater(accuracy["batchnorm"], accuracy["plain"])

    bn = nets["batchnorm"]
    batch_statistics = predict_one_at_a_time(bn, mnist.test.images, True)
    classes = np.unique(batch_statistics.numpy())
    self.assertLen(classes, 1)
    self.assertAllClose(np.mean(batch_statistics.numpy() == mnist.test.labels),
                        np.mean(mnist.test.labels == classes[0]))
    population = predict_one_at_a_time(bn, mnist.test.images, False)
    self.assertAllClose(np.mean(population.numpy() == mnist.test.labels),
                        accuracy["batchnorm"], atol=2e-4)


def _run_main(*flags, output_dir):
  return subprocess.run(
      [sys.executable, "-m", "batchnorm_manual", f"--output_dir={output_dir}",
       *flags], cwd=REPO, capture_output=True, text=True, timeout=300)


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
    self.assertEqual(set(results["test_accuracy"]), {"plain", "batchnorm"})
    self.assertEqual(set(results["single_example_accuracy"]),
                     {"batch_statistics", "population_statistics"})
    self.assertGreater(results["test_accuracy"]["batchnorm"], 0.5)
    self.assertLess(results["single_example_accuracy"]["batch_statistics"],
                    0.2)
    self.assertAlmostEqual(
        results["single_example_accuracy"]["population_statistics"],
        results["test_accuracy"]["batchnorm"], delta=2e-4)
    self.assertEqual(set(results["steps_to_accuracy"]), {"0.01", "0.5"})
    for entry in results["steps_to_accuracy"].values():
      self.assertEqual(set(entry["plain"]), {"0.90", "0.95"})
    self.assertEqual(results["curves"]["steps"], [0, 40, 80, 120])
    self.assertLen(results["curves"]["sigmoid_input_percentiles"]["plain"], 4)
    self.assertEqual(results["trace_count"], {"plain": 1, "batchnorm": 1})
    for name in ("accuracy.png", "sigmoid_input.png", "lr_sweep.png"):
      with open(os.path.join(output_dir, name), "rb") as f:
        self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
    self.assertTrue(os.listdir(os.path.join(output_dir, "tensorboard")))

  def test_batch_size_one_is_refused_with_the_reason(self):
    result = _run_main("--batch_size=1", output_dir=self.get_temp_dir())
    self.assertNotEqual(result.returncode, 0)
    self.assertIn("--batch_size must be at least 2", result.stderr)
    self.assertIn("variance", result.stderr)
    self.assertNotIn("Traceback", result.stderr)

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
