"""tfscratch's building blocks against Keras, through the harness
(tests/equivalence.py), in float64.

The checks named ``check_*`` take the implementation as an argument: the
tests pass tfscratch.optimizers, ``make exercise NAME=optimizers`` passes the
learner's exercises/optimizers.py.
"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import math

import keras
import numpy as np
import tensorflow as tf

from tests import equivalence
from tfscratch import nn
from tfscratch import optimizers


def _update_trajectories(name, hyperparameters, take_step):
  """K updates of two float64 variables: ours through ``take_step``, the
  reference through keras.optimizers.<name>, from the same gradients.

  Args:
    take_step(variables, gradients, k, keras_optimizer): applies update k
      (k = 1, 2, ...) to our variables, reading the hyperparameters from the
      Keras optimizer (so ours gets exactly Keras' defaults).
  """
  rng = np.random.default_rng(1)
  shapes = [(3, 4), (4,)]
  start = [rng.normal(size=shape) for shape in shapes]
  ours = {f"w{i}": tf.Variable(value) for i, value in enumerate(start)}
  theirs = {f"w{i}": tf.Variable(value) for i, value in enumerate(start)}
  reference = equivalence.KERAS_OPTIMIZERS[name](**hyperparameters)
  reference.build(list(theirs.values()))
  # Gradients of varied sign and scale (1e-3 .. 10).
  sequence = [[rng.normal(scale=10.0 ** rng.integers(-3, 2), size=shape)
               for shape in shapes] for _ in range(equivalence.STEPS)]

  def ours_step(k):
    take_step(list(ours.values()),
              [tf.constant(g) for g in sequence[k]], k + 1, reference)

  def reference_step(k):
    reference.apply_gradients(zip([tf.constant(g) for g in sequence[k]],
                                  theirs.values()))

  equivalence.assert_optimizer_steps(ours_step, reference_step, ours, theirs)


def check_adagrad_update(impl):
  """K Adagrad updates equal keras.optimizers.Adagrad's, at Keras' defaults
  and at another rate, initial accumulator and epsilon (float64, 1e-10)."""
  for hyperparameters in equivalence.OPTIMIZER_CASES["adagrad"]:
    accumulators = {}

    def take_step(variables, gradients, k, reference):
      del k
      for variable, gradient in zip(variables, gradients):
        if variable.ref() not in accumulators:
          # tf.cast of a Python float goes through float32 (0.1 becomes
          # 0.10000000149): Keras starts its accumulators so, and so do we.
          accumulators[variable.ref()] = tf.Variable(tf.fill(
              variable.shape, tf.cast(reference.initial_accumulator_value,
                                      tf.float64)))
        impl.adagrad_update(variable, gradient, accumulators[variable.ref()],
                            tf.constant(reference.learning_rate.numpy(),
                                        tf.float64), reference.epsilon)

    _update_trajectories("adagrad", hyperparameters, take_step)


def check_adam_update(impl):
  """K Adam updates equal keras.optimizers.Adam's, at Keras' defaults and
  at other betas, epsilon and rate (float64, 1e-10)."""
  for hyperparameters in equivalence.OPTIMIZER_CASES["adam"]:
    moments = {}

    def take_step(variables, gradients, k, reference):
      for variable, gradient in zip(variables, gradients):
        if variable.ref() not in moments:
          moments[variable.ref()] = (
              tf.Variable(tf.zeros_like(variable)),
              tf.Variable(tf.zeros_like(variable)))
        m, v = moments[variable.ref()]
        impl.adam_update(variable, gradient, m, v, tf.constant(k, tf.float64),
                         tf.constant(reference.learning_rate.numpy(),
                                     tf.float64),
                         reference.beta_1, reference.beta_2, reference.epsilon)

    _update_trajectories("adam", hyperparameters, take_step)


class OptimizerUpdatesTest(tf.test.TestCase):
  """The update rules of tfscratch.optimizers (exercise: optimizers)."""

  def test_adagrad_update(self):
    check_adagrad_update(optimizers)

  def test_adam_update(self):
    check_adam_update(optimizers)


class HarnessTest(tf.test.TestCase):

  def test_float64_keras_leaves_keras_as_it_found_it(self):
    """Inside keras_floatx a new layer is float64, even after a float32
    layer fixed Keras' global dtype policy; after it, float32 again (a
    leaked float64 policy once broke a later test's Keras RNN)."""
    def new_kernel_dtype():
      layer = keras.layers.Dense(2)
      layer.build((None, 3))
      return layer.kernel.dtype

    self.assertEqual(new_kernel_dtype(), "float32")
    with equivalence.keras_floatx():
      self.assertEqual(new_kernel_dtype(), "float64")
    self.assertEqual(new_kernel_dtype(), "float32")


class DenseTest(tf.test.TestCase):

  def test_dense_equals_keras_dense(self):
    """Forward, gradients w.r.t. W, b and x, and K Adam steps at non-default
    betas, against keras.layers.Dense + keras.optimizers.Adam (float64)."""
    rng = np.random.default_rng(0)
    weights, bias = rng.normal(size=(5, 3)), rng.normal(size=3)
    x = tf.constant(rng.normal(size=(4, 5)))
    projection = tf.constant(rng.normal(size=(4, 3)))
    ours = nn.Dense(weights, bias, tf.tanh, dtype=tf.float64)
    with equivalence.keras_floatx():
      theirs = keras.layers.Dense(3, activation="tanh")
      theirs.build((None, 5))
    theirs.set_weights([weights, bias])
    equivalence.assert_forward({"y": ours(x)}, {"y": theirs(x)})
    equivalence.assert_gradients(
        lambda: tf.reduce_sum(ours(x) * projection),
        {"W": ours.W, "b": ours.b, "x": x},
        lambda: tf.reduce_sum(theirs(x) * projection),
        {"W": theirs.kernel, "b": theirs.bias, "x": x})
    hyperparameters = equivalence.OPTIMIZER_CASES["adam"][1]
    ours_optimizer = optimizers.Adam([ours.W, ours.b], **hyperparameters)
    keras_optimizer = equivalence.keras_optimizer(
        "adam", hyperparameters, [theirs.kernel, theirs.bias])

    def step(layer, variables, optimizer):
      def take(k):
        del k
        with tf.GradientTape() as tape:
          loss = tf.reduce_sum(layer(x) * projection)
        optimizer.apply(tape.gradient(loss, variables))
        return loss
      return take

    equivalence.assert_optimizer_steps(
        step(ours, [ours.W, ours.b], ours_optimizer),
        step(theirs, [theirs.kernel, theirs.bias], keras_optimizer),
        {"W": ours.W, "b": ours.b}, {"W": theirs.kernel, "b": theirs.bias})

  def test_summed_cross_entropy_equals_keras_loss(self):
    """Value and gradient w.r.t. the logits against Keras'
    SparseCategoricalCrossentropy(from_logits=True, reduction="sum")."""
    rng = np.random.default_rng(1)
    logits = tf.constant(rng.normal(size=(6, 4)) * 3)
    labels = tf.constant(rng.integers(0, 4, 6))
    equivalence.assert_same_loss(
        nn.summed_cross_entropy, keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction="sum", dtype="float64"), logits,
        labels)


def _ks_distance(sample, cdf):
  """sup |empirical CDF - cdf| of a one-dimensional sample."""
  sample = np.sort(sample)
  n = sample.size
  expected = cdf(sample)
  return max(np.max(np.arange(1, n + 1) / n - expected),
             np.max(expected - np.arange(n) / n))


def _normal_cdf(x):
  return 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


class InitialiserTest(tf.test.TestCase):
  """Bounds, moments and Kolmogorov-Smirnov statistics of a large draw:
  against the Keras initialiser of the same name (two samples) and against
  the exact distribution (one sample)."""

  SHAPE = (400, 500)  # 200,000 weights
  # The 0.1% critical values of the KS statistic at n = 200,000:
  # one sample 1.95 / sqrt(n), two samples of n each 1.95 * sqrt(2 / n).
  KS_ONE_SAMPLE = 1.95 / math.sqrt(200_000)
  KS_TWO_SAMPLES = 1.95 * math.sqrt(2 / 200_000)

  def _assert_distribution(self, ours, theirs, bound, variance, cdf):
    ours, theirs = np.ravel(ours), np.ravel(theirs)
    self.assertLessEqual(np.abs(ours).max(), bound)
    self.assertGreater(np.abs(ours).max(), 0.99 * bound)  # reaches the cut
    self.assertNear(ours.mean(), 0.0, 4 * np.sqrt(variance / ours.size))
    self.assertNear(ours.var(), variance, 0.01 * variance)
    self.assertLess(_ks_distance(ours, cdf), self.KS_ONE_SAMPLE)
    both = np.sort(np.concatenate([ours, theirs]))
    cdf_ours = np.searchsorted(np.sort(ours), both, side="right") / ours.size
    cdf_theirs = (np.searchsorted(np.sort(theirs), both, side="right") /
                  theirs.size)
    self.assertLess(np.abs(cdf_ours - cdf_theirs).max(), self.KS_TWO_SAMPLES)

  def test_glorot_uniform(self):
    """U(-a, a), a = sqrt(6 / (fan_in + fan_out)), like Keras' GlorotUniform."""
    limit = np.sqrt(6.0 / sum(self.SHAPE))
    self._assert_distribution(
        nn.glorot_uniform(self.SHAPE, seed=(3, 4)),
        keras.initializers.GlorotUniform(seed=3)(self.SHAPE), limit,
        limit ** 2 / 3, lambda x: (x + limit) / (2 * limit))

  def test_truncated_normal_has_tf1_semantics(self):
    """TF1's truncated_normal(stddev=0.1): N(0, 0.1^2) REDRAWN beyond 2 sd
    (not clipped: no mass piles up at the cut; not rescaled: the variance is
    0.1^2 (1 - 2*2*phi(2) / (2*Phi(2) - 1)) = 0.1^2 * 0.7737), like Keras'
    TruncatedNormal."""
    draw = nn.truncated_normal(self.SHAPE, stddev=0.1, seed=(3, 4)).numpy()
    mass = _normal_cdf(np.array(2.0)) - _normal_cdf(np.array(-2.0))
    self._assert_distribution(
        draw, keras.initializers.TruncatedNormal(stddev=0.1, seed=3)(
            self.SHAPE), 0.2, 0.01 * 0.77374,
        lambda x: (_normal_cdf(x / 0.1) - _normal_cdf(np.array(-2.0))) / mass)
    # Clipping would put ~4.6% of the draws at exactly +-0.2.
    self.assertLess(np.mean(np.abs(draw) > 0.1999), 1e-3)


if __name__ == "__main__":
  tf.test.main()
