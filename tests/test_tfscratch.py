"""tfscratch's ML core: building blocks, the in-graph loop; and seeding."""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import keras
import numpy as np
import tensorflow as tf

from tfscratch import loop, nn
from tfscratch.lab.figures import image_grid
from tfscratch.lab.seeding import set_seed


class BuildingBlocksTest(tf.test.TestCase):

  def test_dense_equals_keras_dense(self):
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(5, 3)).astype(np.float32)
    bias = rng.normal(size=3).astype(np.float32)
    x = tf.constant(rng.normal(size=(4, 5)), tf.float32)
    reference = keras.layers.Dense(3, activation="tanh")
    reference.build((None, 5))
    reference.set_weights([weights, bias])
    self.assertAllClose(nn.Dense(weights, bias, tf.tanh)(x), reference(x),
                        rtol=1e-6, atol=1e-6)

  def test_truncated_normal_is_truncated_and_seeded(self):
    draw = nn.truncated_normal((20000,), stddev=0.1, seed=(1, 2))
    self.assertLessEqual(np.abs(draw).max(), 0.2)
    # A N(0, 1) cut at 2 sd has sd 0.880.
    self.assertAllClose(np.std(draw), 0.088, atol=0.002)
    self.assertAllEqual(draw, nn.truncated_normal((20000,), 0.1, (1, 2)))

  def test_initialisers_match_keras_in_distribution(self):
    """Bounds, moments and a two-sample Kolmogorov-Smirnov statistic of a
    large draw of ours against the Keras initialiser of the same name."""
    shape = (400, 500)  # 200,000 weights
    limit = np.sqrt(6.0 / sum(shape))
    for ours, theirs, bound, variance in (
        (nn.glorot_uniform(shape, seed=(3, 4)),
         keras.initializers.GlorotUniform(seed=3)(shape), limit,
         limit ** 2 / 3),
        # TF1's truncated normal: redrawn beyond 2 sd, so its variance is
        # 0.1^2 (1 - 2*2*phi(2) / (2*Phi(2) - 1)) = 0.1^2 * 0.7737.
        (nn.truncated_normal(shape, stddev=0.1, seed=(3, 4)),
         keras.initializers.TruncatedNormal(stddev=0.1, seed=3)(shape), 0.2,
         0.01 * 0.77374),
    ):
      ours, theirs = np.ravel(ours), np.ravel(theirs)
      self.assertLessEqual(np.abs(ours).max(), bound)
      self.assertGreater(np.abs(ours).max(), 0.99 * bound)  # reaches the cut
      self.assertNear(ours.mean(), 0.0, 4 * np.sqrt(variance / ours.size))
      self.assertNear(ours.var(), variance, 0.01 * variance)
      both = np.sort(np.concatenate([ours, theirs]))
      cdf_ours = np.searchsorted(np.sort(ours), both, side="right") / ours.size
      cdf_theirs = (np.searchsorted(np.sort(theirs), both, side="right") /
                    theirs.size)
      # The 0.1% critical value of the KS statistic for two samples of n:
      # 1.95 * sqrt(2 / n) = 0.0062 at n = 200,000.
      self.assertLess(np.abs(cdf_ours - cdf_theirs).max(), 0.0062)

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
