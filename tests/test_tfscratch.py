"""tfscratch's ML core: building blocks, the in-graph loop; and seeding."""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import numpy as np
import tensorflow as tf

from tfscratch import loop, nn
from tfscratch.lab.figures import image_grid
from tfscratch.lab.seeding import set_seed


class BuildingBlocksTest(tf.test.TestCase):

  def test_truncated_normal_is_truncated_and_seeded(self):
    draw = nn.truncated_normal((20000,), stddev=0.1, seed=(1, 2))
    self.assertLessEqual(np.abs(draw).max(), 0.2)
    # A N(0, 1) cut at 2 sd has sd 0.880.
    self.assertAllClose(np.std(draw), 0.088, atol=0.002)
    self.assertAllEqual(draw, nn.truncated_normal((20000,), 0.1, (1, 2)))

  def test_losses_and_accuracy(self):
    logits = tf.constant([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    labels = tf.constant([0, 0, 0])
    log_softmax = np.log(np.exp(logits) / np.exp(logits).sum(1, keepdims=True))
    self.assertAllClose(nn.summed_cross_entropy(logits, labels),
                        -log_softmax[:, 0].sum())
    self.assertAllClose(nn.accuracy(logits, labels), 2 / 3)

  def test_ordered_batch_walks_in_order_and_wraps(self):
    images = np.arange(10)[:, None]
    labels = np.arange(10)
    _, batch = nn.ordered_batch(images, labels, batch_size=4, step=0)
    self.assertAllEqual(batch, [0, 1, 2, 3])
    _, batch = nn.ordered_batch(images, labels, batch_size=4, step=2)
    self.assertAllEqual(batch, [8, 9, 0, 1])

  def test_image_grid(self):
    images = np.stack([np.full(4, value) for value in (0.1, 0.2, 0.3)])
    grid = image_grid(images, rows=2, columns=2, height=2, width=2)
    self.assertEqual(grid.shape, (5, 5))
    self.assertAllClose(grid[0, :2], [0.1, 0.1])
    self.assertAllClose(grid[0, 3:], [0.2, 0.2])
    self.assertAllClose(grid[3:, 0], [0.3, 0.3])
    self.assertAllClose(grid[2], np.ones(5))
    self.assertAllClose(grid[3:, 3:], np.ones((2, 2)))


class CompileStepsTest(tf.test.TestCase):

  def test_k_steps_in_one_call_equal_k_calls_and_trace_once(self):
    data = tf.constant(np.random.default_rng(0).normal(size=(7, 3)),
                       tf.float32)

    def make():
      w = tf.Variable(tf.ones(3))

      def step(i):
        with tf.GradientTape() as tape:
          loss = tf.reduce_sum(tf.square(w * data[i % 7] - 1.0))
        w.assign_sub(0.05 * tape.gradient(loss, w))
        return loss

      return w, loop.compile_steps(step)

    w_one, steps_one = make()
    w_many, steps_many = make()
    losses = steps_many(0, 20).numpy()
    singles = [steps_one(i, 1).numpy()[0] for i in range(20)]
    self.assertAllEqual(w_one, w_many)
    self.assertAllEqual(losses, singles)
    self.assertEqual(loop.trace_counts(a=steps_one, b=steps_many),
                     {"a": 1, "b": 1})


class Tf1DataSet:
  """TensorFlow's 2016 ``DataSet.next_batch`` (tutorials/mnist/input_data.py,
  which the posts copied as ``load_mnist``), line for line, on row numbers.
  Only the shuffle is given: TF1 did ``self._images[perm]`` with NumPy's
  global generator; here ``order(epoch)`` is the whole order of each new
  epoch, drawn as ``loop.shuffled_indices`` documents."""

  def __init__(self, count, order):
    self._rows = np.arange(count)
    self._num_examples = count
    self._epochs_completed = 0
    self._index_in_epoch = 0
    self._order = order

  def next_batch(self, batch_size):
    start = self._index_in_epoch
    self._index_in_epoch += batch_size
    if self._index_in_epoch > self._num_examples:
      # Finished epoch
      self._epochs_completed += 1
      # Shuffle the data
      self._rows = self._order(self._epochs_completed)
      # Start next epoch
      start = 0
      self._index_in_epoch = batch_size
      assert batch_size <= self._num_examples
    end = self._index_in_epoch
    return self._rows[start:end]


class ShuffledWalkTest(tf.test.TestCase):

  def reference(self, count, batch_size, seed, steps):
    def order(epoch):
      epoch_seed = tf.random.experimental.stateless_fold_in(
          tf.constant(seed, tf.int64), tf.constant(epoch, tf.int64))
      return tf.random.experimental.stateless_shuffle(
          tf.range(count, dtype=tf.int64), seed=epoch_seed).numpy()

    data = Tf1DataSet(count, order)
    return np.array([data.next_batch(batch_size) for _ in range(steps)])

  def test_walk_is_tensorflow_1s_next_batch(self):
    # 10 rows in batches of 3: 3 batches an epoch, row 9 of epoch 0 and the
    # last row of each later order are never seen; 3 of 3: one batch an epoch.
    for count, batch_size in ((10, 3), (12, 4), (3, 3), (5, 1)):
      expected = self.reference(count, batch_size, (7, 11), steps=14)
      walk = [loop.shuffled_indices(step, batch_size, count, (7, 11))
              for step in range(14)]
      self.assertAllEqual(walk, expected, msg=f"{count}, {batch_size}")
    self.assertAllEqual(expected[:5].ravel(), np.arange(5))  # epoch 0 in order
    self.assertNotAllEqual(expected[5:10], expected[10:])  # a new order each
    other_seed = self.reference(10, 3, (8, 11), steps=6)[3:]
    self.assertNotAllEqual(other_seed, self.reference(10, 3, (7, 11), 6)[3:])

  def test_reset_walks_another_seed_without_retracing(self):
    batches = loop.ShuffledBatches(3, 10, (7, 11))
    compiled = tf.function(batches, input_signature=[
        tf.TensorSpec([], tf.int32)])
    for seed in ((7, 11), (8, 11), (7, 11)):
      batches.reset(seed)
      self.assertAllEqual([compiled(tf.constant(step)) for step in range(14)],
                          self.reference(10, 3, seed, steps=14), msg=seed)
    self.assertEqual(compiled.experimental_get_tracing_count(), 1)

  def test_kept_permutation_gives_the_same_rows_in_any_order(self):
    """ShuffledBatches draws each epoch's order once: the same rows as
    shuffled_indices, also when steps jump between epochs."""
    batches = loop.ShuffledBatches(3, 10, (7, 11))
    steps = [0, 1, 3, 4, 5, 6, 2, 13, 4, 4, 0, 9]
    compiled = tf.function(batches, input_signature=[
        tf.TensorSpec([], tf.int32)])
    for step in steps:
      expected = loop.shuffled_indices(step, 3, 10, (7, 11))
      self.assertAllEqual(batches(step), expected, msg=step)
      self.assertAllEqual(compiled(tf.constant(step)), expected, msg=step)

  def test_batch_larger_than_the_data_is_refused(self):
    with self.assertRaisesRegex(ValueError, r"batch_size must be in \[1, 10\]"):
      loop.shuffled_indices(0, 11, 10, (0, 0))
    with self.assertRaisesRegex(ValueError, r"batch_size must be in \[1, 10\]"):
      loop.ShuffledBatches(11, 10, (0, 0))


class SeedingTest(tf.test.TestCase):

  def test_same_seed_same_draws(self):
    draws = []
    for _ in range(2):
      set_seed(7)
      draws.append((np.random.rand(3), tf.random.uniform([3]).numpy()))
    self.assertAllEqual(draws[0][0], draws[1][0])
    self.assertAllEqual(draws[0][1], draws[1][1])


if __name__ == "__main__":
  tf.test.main()
