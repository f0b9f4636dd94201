"""mnist_probes.model and the training steps of mnist_probes.train: the
blog's initial weights, the auxiliary-loss step, and K steps per call in the
graph. (The MLP against its Keras twin is in
test_equivalence_mnist_probes.py.)"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import numpy as np
import tensorflow as tf

from mnist_probes import train
from mnist_probes.model import MLP, AuxiliaryHead, l1_loss
from tests.mnist_fixture import real_mnist
from tfscratch import loop
from tfscratch.nn import accuracy, ordered_batch, summed_cross_entropy
from tfscratch.optimizers import SGD

BATCH = 8


def _base_steps(model, images, labels, learning_rate=0.01, batch=BATCH):
  """``train_steps`` of the base net walking ``images``, ``labels``."""
  optimizer = SGD(model.weights, learning_rate)
  return loop.compile_walk(
      lambda *b: train.sgd_step(model, optimizer, *b), (images, labels),
      batch)


def _aux_steps(model, head, aux_weight, images, labels, targets):
  optimizer = SGD(model.weights + head.weights, 0.01)
  return loop.compile_walk(
      lambda *b: train.aux_sgd_step(model, head, optimizer, aux_weight, *b),
      (images, labels, targets), BATCH)


def _batch(seed, size=BATCH):
  """Images in [0, 1] with MNIST's share of zero pixels, and labels."""
  rng = np.random.default_rng(seed)
  images = rng.random((size, 784)) * (rng.random((size, 784)) < 0.2)
  return (tf.constant(images, tf.float32),
          tf.constant(rng.integers(0, 10, size), tf.int64))


class MLPTest(tf.test.TestCase):

  def test_initial_weights_follow_the_blog(self):
    model = MLP(seed=4)
    self.assertEqual([tuple(v.shape) for v in model.weights],
                     [(784, 100), (100,), (100, 100), (100,), (100, 100),
                      (100,), (100, 10), (10,)])
    for weights, bias in zip(model.weights[::2], model.weights[1::2]):
      self.assertAllEqual(bias, np.full(bias.shape, 0.1, np.float32))
      # Truncated normal: nothing beyond 2 sigma; the std of N(0, 0.1^2)
      # cut at 2 sigma is 0.1 * 0.8796.
      self.assertLessEqual(np.abs(weights.numpy()).max(), 0.2)
      self.assertAllClose(weights.numpy().std(), 0.08796, rtol=0.05)

  def test_same_seed_same_weights(self):
    for first, second, other in zip(MLP(seed=4).weights, MLP(seed=4).weights,
                                    MLP(seed=5).weights):
      self.assertAllEqual(first, second)
      if first.shape.rank == 2:
        self.assertNotAllClose(first, other)

  def test_representations_are_the_layers(self):
    model = MLP(seed=0)
    images, _ = _batch(0)
    logits, layers = model(images)
    self.assertLen(layers, 4)
    self.assertAllEqual(layers[0], images)
    w1, b1 = model.weights[:2]
    self.assertAllClose(layers[1], np.tanh(images.numpy() @ w1.numpy() + 0.1),
                        rtol=1e-5, atol=1e-6)
    self.assertEqual(logits.shape, (BATCH, 10))


class TrainingLoopTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(7)
    self.images = (rng.random((100, 784)) *
                   (rng.random((100, 784)) < 0.2)).astype(np.float32)
    self.labels = rng.integers(0, 10, 100)

  def test_batches_gathered_in_graph_are_the_blogs_ordered_batches(self):
    """Step i trains on nn.ordered_batch(..., i), wrapping round the end."""
    seen = []

    def step(images, labels):
      seen.append(None)  # traced once
      return tf.cast(tf.reduce_sum(labels), tf.float32) + tf.reduce_sum(
          images)

    train_steps = loop.compile_walk(step, (self.images, self.labels), 30)
    sums = train_steps(0, 5).numpy()
    for i, value in enumerate(sums):
      images, labels = ordered_batch(self.images, self.labels, 30, i)
      self.assertAllClose(value, labels.sum() + images.sum(), rtol=1e-6)
    self.assertLen(seen, 1)

  def test_k_steps_per_call_equal_one_step_per_call(self):
    """35 steps in one call of the loop, or 35 calls of one step: the same
    weights, bit for bit (both nets; the aux net's head too)."""
    targets = np.random.default_rng(8).normal(
        size=(100, 3)).astype(np.float32)
    for aux in (False, True):
      weights = []
      for calls in ((0, 35),), tuple((i, 1) for i in range(35)):
        model, head = MLP(seed=3), AuxiliaryHead(seed=3)
        train_steps = (
            _aux_steps(model, head, 0.1, self.images, self.labels, targets)
            if aux else _base_steps(model, self.images, self.labels))
        for first_step, num_steps in calls:
          train_steps(first_step, num_steps)
        weights.append([v.numpy() for v in model.weights + head.weights])
      for one_call, many_calls in zip(*weights):
        self.assertAllEqual(one_call, many_calls)

  def test_train_evaluates_logs_and_snapshots_on_schedule(self):
    config = train.Config(steps=70, eval_every=30, log_every=20)
    model = MLP(seed=0)
    network = train.Network(model, _base_steps(model, self.images,
                                               self.labels),
                            train.compile_forward(model))
    logged, snapshots = [], []
    curve = train.train(
        config, network, tf.constant(self.images), self.labels,
        log=lambda first, losses: logged.append((first, losses.size)),
        snapshot_at=(0, 25, 70), snapshot=snapshots.append)
    self.assertEqual(curve.step, [0, 30, 60, 70])
    self.assertLen(curve.test_accuracy, 4)
    # Back in Python at every evaluation, progress line and snapshot.
    self.assertEqual(logged, [(0, 20), (20, 5), (25, 5), (30, 10), (40, 20),
                              (60, 10)])
    self.assertEqual(snapshots, [0, 25, 70])
    self.assertTrue(np.isfinite(curve.final_loss))
    self.assertEqual(network.train_steps.experimental_get_tracing_count(), 1)
    self.assertEqual(network.forward.experimental_get_tracing_count(), 1)


class AuxiliaryStepTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.images, self.labels = _batch(3)
    self.targets = tf.constant(
        np.random.default_rng(3).normal(scale=3.0, size=(BATCH, 3)),
        tf.float32)

  def _steps(self, aux_weight):
    """One base step and one auxiliary step from the same initial weights;
    returns (base model, aux model, head, head weights before, aux losses)."""
    base = MLP(seed=2)
    _base_steps(base, self.images, self.labels)(0, 1)
    model, head = MLP(seed=2), AuxiliaryHead(seed=2)
    head_before = [v.numpy() for v in head.weights]
    losses = _aux_steps(model, head, aux_weight, self.images, self.labels,
                        self.targets)(0, 1)[0]
    return base, model, head, head_before, losses

  def test_losses_are_cross_entropy_and_l1(self):
    *_, (loss, cross_entropy, aux_loss) = self._steps(0.1)
    fresh, fresh_head = MLP(seed=2), AuxiliaryHead(seed=2)
    logits, layers = fresh(self.images)
    self.assertAllClose(cross_entropy,
                        summed_cross_entropy(logits, self.labels), rtol=1e-6)
    expected = np.abs(layers[1].numpy() @ fresh_head.weights[0].numpy() +
                      0.1 - self.targets.numpy()).sum()
    self.assertAllClose(aux_loss, expected, rtol=1e-5)
    self.assertAllClose(loss, cross_entropy + 0.1 * aux_loss, rtol=1e-6)
    self.assertAllClose(l1_loss(tf.ones([2, 3]), tf.zeros([2, 3])), 6.0)

  def test_aux_loss_reaches_only_layer_1(self):
    """The head sits on layer 1, so its loss changes W_1, b_1 and the head,
    and nothing above layer 1."""
    base, model, head, head_before, _ = self._steps(0.1)
    for index, (ours, reference) in enumerate(zip(model.weights,
                                                  base.weights)):
      if index < 2:
        self.assertGreater(np.abs(ours.numpy() - reference.numpy()).max(),
                           1e-6, msg=index)
      else:
        self.assertAllClose(ours, reference, rtol=1e-6, atol=1e-7,
                            msg=index)
    self.assertGreater(np.abs(head.weights[0].numpy() - head_before[0]).max(),
                       1e-4)

  def test_zero_weight_is_the_base_step(self):
    base, model, head, head_before, _ = self._steps(0.0)
    for ours, reference in zip(model.weights, base.weights):
      self.assertAllClose(ours, reference, rtol=1e-6, atol=1e-7)
    for after, before in zip(head.weights, head_before):
      self.assertAllEqual(after, before)


class LearningTest(tf.test.TestCase):

  def test_short_training_on_mnist_learns(self):
    """200 blog steps: test accuracy far above chance and the loss far
    below the untrained net's."""
    mnist = real_mnist(validation_size=5000)
    model = MLP(seed=0)
    forward = train.compile_forward(model)
    test = mnist.test.take(2000)
    train_steps = _base_steps(model, mnist.train.images, mnist.train.labels,
                              batch=50)
    initial = float(summed_cross_entropy(forward(test.images)[0],
                                         test.labels)) / len(test)
    train_steps(0, 200)
    logits = forward(test.images)[0]
    final = float(summed_cross_entropy(logits, test.labels)) / len(test)
    self.assertGreater(initial, 2.0)
    self.assertLess(final, 0.5)
    self.assertGreater(float(accuracy(logits, test.labels)), 0.85)
    self.assertEqual(forward.experimental_get_tracing_count(), 1)


if __name__ == "__main__":
  tf.test.main()
