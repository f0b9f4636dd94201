"""The lessons proved: a stack trains each of its networks exactly as
network.py trains one, through every phase of the schedule, and the machinery
around it. (The single network and the stack against tf.keras, in float64,
are in test_equivalence_convergence.py.)"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import dataclasses
import threading
import time

import numpy as np
import tensorflow as tf

from convergence import data as data_lib
from convergence import network
from convergence import scale
from convergence import stacked
from convergence import train
from tests.mnist_fixture import real_mnist
from tfscratch import optimizers
from tfscratch.lab.errors import NonFiniteError
from tfscratch.lab.monitor import Guard
from tfscratch.lab.monitor import Monitor
from tfscratch.nn import ordered_batch

TRAIN_SIZE = 100
# Every phase of the layer-wise strategy, shortened; the last one drops its
# learning rate part-way, as the blog's 1,000-step phase does at 750.
SHORT_SCHEDULE = (train.Phase(head=1, steps=6, drop_at=None),
                  train.Phase(head=2, steps=6, drop_at=None),
                  train.Phase(head=3, steps=8, drop_at=5))
LEARNING_RATES = {"sgd": 0.01, "adagrad": 0.03, "adam": 0.001}


def small_data():
  """100 of the blog's training images, 1,000 validation, 2,000 test."""
  mnist = real_mnist(validation_size=0)
  data = data_lib.blog_data(mnist, TRAIN_SIZE)
  return dataclasses.replace(
      data, validation=dataclasses.replace(
          data.validation, images=data.validation.images[:1000],
          labels=data.validation.labels[:1000]),
      test=dataclasses.replace(data.test, images=data.test.images[:2000],
                               labels=data.test.labels[:2000]))


def config_for(optimizer="sgd", **kwargs):
  return train.Config(optimizer=optimizer,
                      learning_rate=LEARNING_RATES[optimizer], **kwargs)


def train_alone(data, weights, optimizer, schedule):
  """network.py's network trained step by step from Python, the blog's way:
  a fresh optimizer per phase, the rate dropped at ``drop_at``."""
  net = network.Network(weights)
  learning_rate = LEARNING_RATES[optimizer]
  for phase in schedule:
    phase_optimizer = optimizers.make_optimizer(
        optimizer, net.phase_variables(phase.head), learning_rate)
    for step in range(phase.steps):
      if step == phase.drop_at:
        phase_optimizer.learning_rate.assign(learning_rate * train.LR_DROP)
      images, labels = ordered_batch(data.train.images, data.train.labels,
                                     data_lib.BATCH_SIZE, step)
      network.train_step(net, phase_optimizer, images, labels, phase.head)
  return net


def assert_same_weights(test, ours, reference, optimizer="sgd",
                        learning_rate=0.01, what=""):
  """Weights equal up to float rounding.

  SGD and Adagrad: rtol 1e-5, atol 1e-6 everywhere. Adam: its first step on
  a weight is about lr * g / (|g| + 3e-6), so where a gradient cancels to a
  few 1e-6 (summed over the batch, its terms are ~1), the step turns the
  last-bit rounding of g (which depends on how the matrix products are
  blocked) into a visible difference, which later steps carry along. For
  Adam, all but 1 in 1,000 weights must still agree to 1e-6 (+ rtol 1e-5),
  and every weight to 5% of one step (0.05 lr).
  """
  test.assertEqual(sorted(ours), sorted(reference))
  for name in ours:
    message = f"{what} {name}"
    if optimizer != "adam":
      test.assertAllClose(ours[name], reference[name], rtol=1e-5, atol=1e-6,
                          msg=message)
      continue
    difference = np.abs(ours[name] - reference[name])
    test.assertLessEqual(difference.max(), 0.05 * learning_rate, msg=message)
    test.assertLessEqual(
        np.mean(difference > 1e-6 + 1e-5 * np.abs(reference[name])), 1e-3,
        msg=message)


class InitialWeightsTest(tf.test.TestCase):

  def test_a_network_depends_only_on_seed_stream_and_run(self):
    together = stacked.initial_weights(3, 1, [4, 9])
    alone = stacked.run_weights(3, 1, 9)
    for name, value in alone.items():
      in_stack = together[name][:, 1] if name == "W1" else together[name][1]
      self.assertAllEqual(in_stack, value, msg=name)
    # Another stream, run or seed: other weights.
    for other in (stacked.run_weights(3, 0, 9), stacked.run_weights(3, 1, 8),
                  stacked.run_weights(4, 1, 9)):
      self.assertFalse(np.array_equal(other["W1"], alone["W1"]))

  def test_the_blogs_initialisation(self):
    weights = stacked.run_weights(0, 0, 0)
    self.assertEqual(weights["W1"].shape, (784, 100))
    self.assertEqual(weights["V3"].shape, (100, 10))
    for name in network.WEIGHT_NAMES:
      self.assertLessEqual(np.abs(weights[name]).max(), 0.2)  # 2 stddev
    # A normal truncated at 2 stddev keeps 0.8796 of its stddev.
    self.assertAllClose(weights["W1"].std(), 0.1 * 0.8796, rtol=0.02)
    for name in ("b1", "b2", "b3", "c1", "c2", "c3"):
      self.assertAllEqual(weights[name], np.full_like(weights[name], 0.1))

  def test_layouts(self):
    weights = stacked.initial_weights(0, 0, range(3))
    self.assertEqual(weights["W1"].shape, (784, 3, 100))
    self.assertEqual(weights["W2"].shape, (3, 100, 100))
    self.assertEqual(weights["c3"].shape, (3, 10))


class StackedForwardTest(tf.test.TestCase):
  """Lesson 2: a stack's test logits are its networks' own."""

  def test_test_logits_use_every_pixel(self):
    data = small_data()
    stack = stacked.StackedNetworks(
        stacked.initial_weights(0, 0, range(2)),
        lit=stacked.lit_pixels(data.train.images))
    self.assertLess(len(stack.lit), 784)
    images = data.test.images[:64]
    # Test images light pixels no training image does.
    self.assertTrue(np.any(images[:, stack.blank] > 0))
    logits = stack.test_logits(images)
    for n in range(2):
      alone = network.Network(stack.network_weights(n))
      self.assertAllClose(logits[n], alone(images, 3), rtol=1e-5, atol=1e-5)


class StackedTrainingTest(tf.test.TestCase):

  def test_a_stack_trains_each_network_as_network_py_does(self):
    """Lesson 2's claim: 3 networks trained together through every
    layer-wise phase (and the rate drop) end where each ends when
    network.py trains it alone, step by step from Python."""
    data = small_data()
    schedule = tuple(train.Phase(p.head, 5 * p.steps,
                                 None if p.drop_at is None else 5 * p.drop_at)
                     for p in SHORT_SCHEDULE)
    for optimizer in ("sgd", "adam"):
      config = config_for(optimizer)
      stack = train.build(config, data, "layerwise", 3, schedule)
      together = train.train_runs(config, data, "layerwise", [0, 1, 2],
                                  stack=stack)
      for n in range(3):
        start = stacked.run_weights(0, train.STREAMS["layerwise"], n)
        alone = train_alone(data, start, optimizer, schedule)
        assert_same_weights(self, stack.networks.network_weights(n),
                            alone.weights(), optimizer,
                            LEARNING_RATES[optimizer], what=optimizer)
        predictions = np.argmax(alone(data.test.images, 3), axis=1)
        self.assertAllClose(together["test"][n],
                            np.mean(predictions == data.test.labels),
                            atol=1.01 / len(data.test))
        # The networks differ, so equality above is no accident.
        if n:
          self.assertFalse(np.allclose(
              stack.networks.network_weights(n)["W2"],
              stack.networks.network_weights(0)["W2"]))

  def test_a_reused_stack_starts_every_chunk_afresh(self):
    """The second chunk of a stack (weights and Adam state reset, compiled
    loops reused) is bit for bit the chunk trained by a new stack."""
    data = small_data()
    config = config_for("adam")
    stack = train.build(config, data, "layerwise", 2, SHORT_SCHEDULE)
    train.train_runs(config, data, "layerwise", [0, 1], stack=stack)
    second = train.train_runs(config, data, "layerwise", [2, 3], stack=stack)
    fresh_stack = train.build(config, data, "layerwise", 2, SHORT_SCHEDULE)
    fresh = train.train_runs(config, data, "layerwise", [2, 3],
                             stack=fresh_stack)
    self.assertAllEqual(second["test"], fresh["test"])
    for n in range(2):
      for name, value in fresh_stack.networks.network_weights(n).items():
        self.assertAllEqual(stack.networks.network_weights(n)[name], value)
    self.assertEqual(train.trace_counts(stack), {
        "phase1_head1_train_steps": 1, "phase2_head2_train_steps": 1,
        "phase3_head3_train_steps": 1, "correct_counts": 1, "loss_sums": 1})

  def test_steps_per_call_make_no_difference(self):
    """The whole layer-wise schedule with 35 steps per call of the compiled
    loop, 7, or 1 (a call per step): the same weights, bit for bit."""
    data = small_data()
    schedule = (train.Phase(1, 35, None), train.Phase(2, 14, None),
                train.Phase(3, 35, 20))
    final = []
    for block_steps in (35, 7, 1):
      config = config_for("adam", block_steps=block_steps)
      stack = train.build(config, data, "layerwise", 2, schedule)
      train.train_runs(config, data, "layerwise", [0, 1], stack=stack)
      final.append([stack.networks.network_weights(n) for n in range(2)])
    for weights in final[1:]:
      for n in range(2):
        for name, value in final[0][n].items():
          self.assertAllEqual(weights[n][name], value, msg=name)

  def test_a_nan_stops_training_at_its_step(self):
    data = small_data()
    config = config_for()
    stack = train.build(config, data, "all_layers", 2, SHORT_SCHEDULE[-1:])
    weights = stacked.initial_weights(0, 0, range(2))
    weights["V3"][1, 0, 0] = np.nan
    monitor = Monitor(8, guard=Guard(label="chunk"))
    with self.assertRaisesRegex(NonFiniteError, "loss became nan at step 1"):
      train.train_stack(stack, config, weights, log=monitor.record)

  def test_training_learns(self):
    """Loss well below chance (summed over the batch: 50 ln 10) and test
    accuracy far above chance after a short all-layers run."""
    data = small_data()
    config = config_for(block_steps=20)
    stack = train.build(config, data, "all_layers", 2,
                        (train.Phase(3, 100, None),))
    losses = []
    accuracies = train.train_runs(
        config, data, "all_layers", [0, 1], stack=stack,
        log=lambda first_step, block: losses.extend(block.numpy()))
    chance = np.log(10) * 50
    self.assertLen(losses, 100)
    self.assertGreater(losses[0], 0.9 * chance)
    self.assertLess(losses[-1], 0.1 * chance)
    self.assertAllGreater(accuracies["test"], 0.6)


class TrainInWorkersTest(tf.test.TestCase):

  def test_results_in_task_order_with_a_stack_cache_per_thread(self):
    caches = {}

    def train_chunk(task, stacks, stop):
      del stop
      stacks.setdefault("built", threading.get_ident())
      caches[threading.get_ident()] = stacks
      time.sleep(0.01 * (5 - task))  # later tasks finish first
      return task * 10

    self.assertEqual(scale.train_in_workers(train_chunk, list(range(6)), 2),
                     [0, 10, 20, 30, 40, 50])
    self.assertLen(caches, 2)
    for thread, stacks in caches.items():
      self.assertEqual(stacks["built"], thread)

  def test_the_first_error_stops_the_rest(self):
    started = []

    def train_chunk(task, stacks, stop):
      del stacks
      started.append(task)
      if task == 1:
        raise NonFiniteError("chunk 1: loss became nan at step 3")
      # A chunk in flight stops at its next block once told to.
      if not stop.wait(timeout=60):
        raise AssertionError("never told to stop")
      raise scale.Cancelled(str(task))

    start = time.time()
    with self.assertRaisesRegex(NonFiniteError, "chunk 1"):
      scale.train_in_workers(train_chunk, list(range(10)), 2)
    self.assertLess(time.time() - start, 30)
    self.assertCountEqual(started, [0, 1])


if __name__ == "__main__":
  tf.test.main()
