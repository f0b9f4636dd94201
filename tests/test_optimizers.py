"""The hand-written optimizers take exactly the steps tf.keras.optimizers take."""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import numpy as np
import tensorflow as tf

from tests.equivalence import KERAS_OPTIMIZERS as KERAS
from tests.equivalence import OPTIMIZER_CASES as CASES
from tfscratch import optimizers

STEPS = 5


def _gradient_sequence(shapes, dtype, seed=0):
  """STEPS lists of gradients, one per variable, of varied sign and scale."""
  rng = np.random.default_rng(seed)
  return [[rng.normal(scale=10.0 ** rng.integers(-3, 2), size=shape)
           .astype(dtype) for shape in shapes] for _ in range(STEPS)]


class OptimizerEquivalenceTest(tf.test.TestCase):
  """STEPS updates of ours and of keras.optimizers from the same weights and
  gradients: float64 agrees to 1e-12 (relative), float32 to 1e-6."""

  def _assert_same_trajectory(self, name, hyperparameters, dtype, tolerance):
    shapes = [(3, 4), (4,)]
    rng = np.random.default_rng(1)
    initial = [rng.normal(size=s).astype(dtype) for s in shapes]
    ours_vars = [tf.Variable(v) for v in initial]
    keras_vars = [tf.Variable(v) for v in initial]
    ours = optimizers.OPTIMIZERS[name](ours_vars, **hyperparameters)
    reference = KERAS[name](**hyperparameters)
    step = tf.function(ours.apply)
    for gradients in _gradient_sequence(shapes, dtype):
      step([tf.constant(g) for g in gradients])
      reference.apply_gradients(
          zip([tf.constant(g) for g in gradients], keras_vars))
      for mine, theirs in zip(ours_vars, keras_vars):
        self.assertEqual(mine.dtype, dtype)
        self.assertAllClose(mine, theirs, rtol=tolerance, atol=tolerance)
    # The trajectory must actually have moved, or the comparison is empty.
    self.assertGreater(np.abs(ours_vars[0].numpy() - initial[0]).max(), 1e-3)

  def test_every_optimizer_matches_keras_in_float64_and_float32(self):
    for name, cases in CASES.items():
      for hyperparameters in cases:
        for dtype, tolerance in ((np.float64, 1e-12), (np.float32, 1e-6)):
          with self.subTest(name=name, dtype=dtype, **hyperparameters):
            self._assert_same_trajectory(name, hyperparameters, dtype,
                                         tolerance)

  def test_adagrad_first_step_by_hand(self):
    """a = 0.1 + g^2; w <- w - lr g / sqrt(a + 1e-7), written out."""
    variable = tf.Variable([1.0, -2.0])
    optimizer = optimizers.Adagrad([variable], learning_rate=0.5)
    gradient = np.array([0.3, -4.0], np.float32)
    optimizer.apply([tf.constant(gradient)])
    expected = (np.array([1.0, -2.0]) -
                0.5 * gradient / np.sqrt(0.1 + gradient ** 2 + 1e-7))
    self.assertAllClose(variable, expected, rtol=1e-6, atol=0)

  def test_reset_gives_a_fresh_optimizer(self):
    for name in optimizers.OPTIMIZERS:
      initial = np.array([1.0, -2.0], np.float32)
      reused, fresh = tf.Variable(initial), tf.Variable(initial)
      optimizer = optimizers.make_optimizer(name, [reused], 0.1)
      for _ in range(3):
        optimizer.apply([tf.constant([0.5, -1.0])])
      optimizer.learning_rate.assign(0.5)
      optimizer.reset()
      reused.assign(initial)
      reference = optimizers.make_optimizer(name, [fresh], 0.1)
      for gradient in ([0.3, 2.0], [-1.0, 0.1]):
        optimizer.apply([tf.constant(gradient)])
        reference.apply([tf.constant(gradient)])
      self.assertAllEqual(reused, fresh, msg=name)

  def test_learning_rate_change_needs_no_retrace(self):
    variable = tf.Variable([1.0])
    optimizer = optimizers.SGD([variable], learning_rate=0.1)
    step = tf.function(optimizer.apply)
    step([tf.constant([1.0])])
    optimizer.learning_rate.assign(0.01)
    step([tf.constant([1.0])])
    self.assertAllClose(variable, [1.0 - 0.1 - 0.01])
    self.assertEqual(step.experimental_get_tracing_count(), 1)


if __name__ == "__main__":
  tf.test.main()
