"""The stacked networks: each trains exactly as it would alone, and as the
same network in tf.keras does with Keras's optimizers."""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import threading
import time

import numpy as np
import tensorflow as tf

from convergence import data as data_lib
from convergence import experiment
from convergence import model as model_lib
from convergence.keras_model import KERAS_OPTIMIZERS
from convergence.keras_model import KerasNetwork
from tests.mnist_fixture import real_mnist
from tfscratch import optimizers
from tfscratch.lab.errors import NonFiniteError
from tfscratch.lab.mnist import Split
from tfscratch.nn import ordered_batch

TRAIN_SIZE = 100
# Every phase of the layer-wise strategy, shortened; the last one drops its
# learning rate part-way, as the blog's 1,000-step phase does at 750.
SHORT_SCHEDULE = (experiment.Phase(head=1, steps=6, drop_at=None),
                  experiment.Phase(head=2, steps=6, drop_at=None),
                  experiment.Phase(head=3, steps=8, drop_at=5))
LEARNING_RATES = {"sgd": 0.01, "adagrad": 0.03, "adam": 0.001}


def small_data():
  mnist = real_mnist(validation_size=0)
  start = data_lib.BLOG_TRAIN_OFFSET
  return data_lib.ExperimentData(
      train=Split(mnist.train.images[start:start + TRAIN_SIZE],
                  mnist.train.labels[start:start + TRAIN_SIZE]),
      validation=Split(mnist.train.images[:1000], mnist.train.labels[:1000]),
      test=Split(mnist.test.images[:2000], mnist.test.labels[:2000]),
      source=mnist.source)


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

  def test_a_run_depends_only_on_seed_stream_and_run(self):
    together = model_lib.initial_weights(3, 1, [4, 9])
    alone = model_lib.run_weights(3, 1, 9)
    for name, value in alone.items():
      stacked = together[name][:, 1] if name == "W1" else together[name][1]
      self.assertAllEqual(stacked, value, msg=name)
    # Another stream, run or seed: other weights.
    for other in (model_lib.run_weights(3, 0, 9),
                  model_lib.run_weights(3, 1, 8),
                  model_lib.run_weights(4, 1, 9)):
      self.assertFalse(np.array_equal(other["W1"], alone["W1"]))

  def test_the_blogs_initialisation(self):
    weights = model_lib.run_weights(0, 0, 0)
    self.assertEqual(weights["W1"].shape, (784, 100))
    self.assertEqual(weights["V3"].shape, (100, 10))
    for name in model_lib.WEIGHT_NAMES:
      self.assertLessEqual(np.abs(weights[name]).max(), 0.2)  # 2 stddev
    # A normal truncated at 2 stddev keeps 0.8796 of its stddev.
    self.assertAllClose(weights["W1"].std(), 0.1 * 0.8796, rtol=0.02)
    for name in ("b1", "b2", "b3", "c1", "c2", "c3"):
      self.assertAllEqual(weights[name], np.full_like(weights[name], 0.1))

  def test_layouts(self):
    stacked = model_lib.initial_weights(0, 0, range(3))
    self.assertEqual(stacked["W1"].shape, (784, 3, 100))
    self.assertEqual(stacked["W2"].shape, (3, 100, 100))
    self.assertEqual(stacked["c3"].shape, (3, 10))


class StackedForwardTest(tf.test.TestCase):

  def test_losses_and_gradients_are_each_networks_own(self):
    """Loss and gradient of network n in the stack = those of the Keras
    network with the same weights, for every head."""
    data = small_data()
    weights = model_lib.initial_weights(0, 0, range(3))
    lit = model_lib.lit_pixels(data.train.images)
    stacked = model_lib.StackedNetworks(weights, lit=lit)
    images, labels = ordered_batch(data.train.images, data.train.labels,
                                   data_lib.BATCH_SIZE, 1)
    for head in (1, 2, 3):
      variables = stacked.phase_variables(head)
      with tf.GradientTape() as tape:
        losses = stacked.losses(images[:, stacked.lit], labels, head)
        total = tf.reduce_sum(losses)
      gradients = tape.gradient(total, variables)
      for run in range(3):
        reference = KerasNetwork(stacked.run_weights(run))
        with tf.GradientTape() as tape:
          loss = reference.summed_loss(images, labels, head)
        expected = tape.gradient(loss, reference.phase_variables(head))
        self.assertAllClose(losses[run], loss, rtol=1e-6, atol=1e-5)
        # W1's gradient: only the lit rows exist in the stack; the blank
        # rows' Keras gradient is exactly 0.
        self.assertAllClose(gradients[0][:, run], tf.gather(expected[0], lit),
                            rtol=1e-5, atol=1e-6)
        blank = np.setdiff1d(np.arange(784), lit)
        self.assertAllEqual(tf.gather(expected[0], blank),
                            np.zeros((len(blank), 100)))
        for ours, theirs in zip(gradients[1:], expected[1:]):
          self.assertAllClose(ours[run], theirs, rtol=1e-5, atol=1e-6)

  def test_test_logits_use_every_pixel(self):
    data = small_data()
    weights = model_lib.initial_weights(0, 0, range(2))
    stacked = model_lib.StackedNetworks(
        weights, lit=model_lib.lit_pixels(data.train.images))
    self.assertLess(stacked.num_lit, 784)
    images = data.test.images[:64]
    # Test images light pixels no training image does.
    self.assertTrue(np.any(images[:, stacked.blank] > 0))
    logits = stacked.test_logits(images)
    for run in range(2):
      reference = KerasNetwork(stacked.run_weights(run))
      self.assertAllClose(logits[run], reference.model(images)[2], rtol=1e-5,
                          atol=1e-5)


class StackedTrainingTest(tf.test.TestCase):

  def test_three_together_equal_each_alone(self):
    """A network's trajectory does not depend on the company it trains in."""
    data = small_data()
    schedule = tuple(experiment.Phase(p.head, 5 * p.steps,
                                      None if p.drop_at is None
                                      else 5 * p.drop_at)
                     for p in SHORT_SCHEDULE)
    for optimizer in ("sgd", "adam"):
      together, stacked = experiment.train_runs(
          data, "layerwise", [0, 1, 2], optimizer, LEARNING_RATES[optimizer],
          log_every=0, schedule=schedule)
      for run in range(3):
        alone, single = experiment.train_runs(
            data, "layerwise", [run], optimizer, LEARNING_RATES[optimizer],
            log_every=0, schedule=schedule)
        assert_same_weights(self, stacked.run_weights(run),
                            single.run_weights(0), optimizer,
                            LEARNING_RATES[optimizer], what=optimizer)
        self.assertEqual(together["test"][run], alone["test"][0])
        # The networks differ, so equality above is no accident.
        if run:
          self.assertFalse(np.allclose(stacked.run_weights(run)["W2"],
                                       stacked.run_weights(0)["W2"]))

  def test_a_reused_trainer_starts_every_chunk_afresh(self):
    """The second chunk of a trainer (model and Adam state reset, steps
    reused) is bit for bit the chunk trained by a new trainer."""
    data = small_data()
    trainer = experiment.StackTrainer(data, "layerwise", 2, "adam",
                                      schedule=SHORT_SCHEDULE)
    trainer.train_runs([0, 1], seed=0, log_every=0)
    second = trainer.train_runs([2, 3], seed=0, log_every=0)
    fresh, model = experiment.train_runs(data, "layerwise", [2, 3], "adam",
                                         schedule=SHORT_SCHEDULE, log_every=0)
    self.assertAllEqual(second["test"], fresh["test"])
    for run in range(2):
      for name, value in model.run_weights(run).items():
        self.assertAllEqual(trainer.model.run_weights(run)[name], value)
    for train_step in trainer.steps:
      self.assertEqual(train_step.experimental_get_tracing_count(), 1)

  def test_matches_keras_with_each_optimizer(self):
    """Every phase of the layer-wise strategy against a Keras network with
    the same starting weights and a fresh Keras optimizer per phase."""
    data = small_data()
    for name in ("sgd", "adagrad", "adam"):
      learning_rate = LEARNING_RATES[name]
      accuracies, stacked = experiment.train_runs(
          data, "layerwise", [5, 6], name, learning_rate, seed=2,
          log_every=0, schedule=SHORT_SCHEDULE)
      start = model_lib.run_weights(2, experiment.STREAMS["layerwise"], 6)
      reference = KerasNetwork(start)
      for phase in SHORT_SCHEDULE:
        optimizer = KERAS_OPTIMIZERS[name](learning_rate=learning_rate)
        for step in range(phase.steps):
          if step == phase.drop_at:
            optimizer.learning_rate = learning_rate * experiment.LR_DROP
          images, labels = ordered_batch(data.train.images, data.train.labels,
                                         data_lib.BATCH_SIZE, step)
          reference.train_step(optimizer, images, labels, phase.head)
      final = reference.weights()
      assert_same_weights(self, stacked.run_weights(1), final, name,
                          learning_rate, what=name)
      # Training moved the weights, and never the blank pixels' rows.
      blank = stacked.blank
      self.assertGreater(np.abs(final["W1"] - start["W1"]).max(), 1e-3)
      self.assertAllEqual(final["W1"][blank], start["W1"][blank])
      predictions = np.argmax(reference.model(data.test.images)[2], axis=1)
      self.assertAllClose(accuracies["test"][1],
                          np.mean(predictions == data.test.labels), atol=1e-3)

  def test_blocks_of_steps_make_no_difference(self):
    """35 steps in one call of the compiled loop, or in calls of 7 (the
    batches continuing where the last call stopped), or 1 at a time: the
    same weights, bit for bit."""
    data = small_data()
    final = []
    for block in (35, 7, 1):
      model = model_lib.StackedNetworks(
          model_lib.initial_weights(0, 0, range(2)),
          lit=model_lib.lit_pixels(data.train.images))
      train_steps = model_lib.make_train_steps(
          model, 2, optimizers.Adam(model.phase_variables(2), 0.001),
          data_lib.batches(data.train, model.lit))
      for first in range(0, 35, block):
        train_steps(first, block)
      final.append(model.run_weights(1))
    for weights in final[1:]:
      for name, value in final[0].items():
        self.assertAllEqual(weights[name], value, msg=name)

  def test_a_nan_stops_training_at_its_step(self):
    data = small_data()
    trainer = experiment.StackTrainer(data, "all_layers", 2,
                                      schedule=SHORT_SCHEDULE[-1:])
    weights = model_lib.initial_weights(0, 0, range(2))
    weights["V3"][1, 0, 0] = np.nan
    with self.assertRaisesRegex(NonFiniteError, "loss became nan at step 1"):
      trainer.train(weights, label="chunk")

  def test_training_learns(self):
    """Loss well below chance (summed over the batch: 50 ln 10) and test
    accuracy far above chance after a short all-layers run."""
    data = small_data()
    model = model_lib.StackedNetworks(
        model_lib.initial_weights(0, 0, range(2)),
        lit=model_lib.lit_pixels(data.train.images))
    optimizer = optimizers.SGD(model.phase_variables(3), 0.01)
    train_steps = model_lib.make_train_steps(
        model, 3, optimizer, data_lib.batches(data.train, model.lit))
    chance = np.log(10) * 50
    mean_losses = np.concatenate([train_steps(first, 20).numpy()
                                  for first in range(0, 100, 20)])
    self.assertEqual(mean_losses.shape, (100,))
    self.assertGreater(mean_losses[0], 0.9 * chance)
    self.assertLess(mean_losses[-1], 0.1 * chance)
    accuracy = model_lib.accuracies(model_lib.make_correct_counts(model),
                                    data.test.images, data.test.labels)
    self.assertAllGreater(accuracy, 0.6)
    self.assertEqual(train_steps.experimental_get_tracing_count(), 1)


class TrainInWorkersTest(tf.test.TestCase):

  def test_results_in_task_order_with_a_trainer_cache_per_thread(self):
    caches = {}

    def train_chunk(task, trainers, stop):
      del stop
      trainers.setdefault("built", threading.get_ident())
      caches[threading.get_ident()] = trainers
      time.sleep(0.01 * (5 - task))  # later tasks finish first
      return task * 10

    self.assertEqual(
        experiment.train_in_workers(train_chunk, list(range(6)), 2),
        [0, 10, 20, 30, 40, 50])
    self.assertLen(caches, 2)
    for thread, trainers in caches.items():
      self.assertEqual(trainers["built"], thread)

  def test_the_first_error_stops_the_rest(self):
    started = []

    def train_chunk(task, trainers, stop):
      del trainers
      started.append(task)
      if task == 1:
        raise NonFiniteError("chunk 1: loss became nan at step 3")
      # A chunk in flight stops at its next block once told to.
      if not stop.wait(timeout=60):
        raise AssertionError("never told to stop")
      raise experiment.Cancelled(str(task))

    start = time.time()
    with self.assertRaisesRegex(NonFiniteError, "chunk 1"):
      experiment.train_in_workers(train_chunk, list(range(10)), 2)
    self.assertLess(time.time() - start, 30)
    self.assertCountEqual(started, [0, 1])


if __name__ == "__main__":
  tf.test.main()
