"""mnist_probes.probe and mnist_probes.pca: the hand-written logistic
regression (L-BFGS) and PCA against closed forms, NumPy, scikit-learn's
numbers and keras."""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import numpy as np
import tensorflow as tf

from mnist_probes.pca import fit_pca
from mnist_probes.probe import (COMPILED_FITS, LogisticRegression,
                                minimize_lbfgs)
from mnist_probes.reference import keras_probe
from tests.mnist_fixture import real_mnist


def _blobs(count=300, features=12, classes=4, seed=0):
  """Overlapping Gaussian classes: the probe cannot separate them perfectly,
  so the solution is finite and its gradient is informative."""
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, classes, count)
  centres = rng.normal(scale=1.0, size=(classes, features))
  return centres[labels] + rng.normal(size=(count, features)), labels


def _numpy_gradient(features, labels, weights, bias, c=1.0):
  """The gradient of sum log-loss + ||W||^2 / (2C), written in NumPy:
  dW = X^T (P - Y) + W / C,  db = sum_i (P - Y)_i."""
  logits = features @ weights + bias
  p = np.exp(logits - logits.max(axis=1, keepdims=True))
  p /= p.sum(axis=1, keepdims=True)
  p[np.arange(len(labels)), labels] -= 1.0
  return features.T @ p + weights / c, p.sum(axis=0)


class LbfgsTest(tf.test.TestCase):

  def test_quadratic_minimum(self):
    """0.5 x^T A x - b^T x is minimised at A^{-1} b."""
    rng = np.random.default_rng(0)
    m = rng.normal(size=(20, 20))
    a = m @ m.T + np.diag(np.linspace(0.1, 50, 20))  # condition ~ 1e4
    b = rng.normal(size=20)
    a_t, b_t = tf.constant(a), tf.constant(b)

    def function(x):
      return (0.5 * tf.tensordot(x, tf.linalg.matvec(a_t, x), 1) -
              tf.tensordot(b_t, x, 1), tf.linalg.matvec(a_t, x) - b_t)

    minimize = tf.function(lambda x: minimize_lbfgs(function, x, 1e-10))
    solution = minimize(tf.zeros(20, tf.float64))
    self.assertTrue(solution.converged)
    self.assertLessEqual(solution.gradient_norm, 1e-10)
    self.assertAllClose(solution.theta, np.linalg.solve(a, b), rtol=1e-8,
                        atol=1e-9)

  def test_compiled_fit_is_the_python_loop(self):
    """The fit compiled into one tf.function (tf.while_loop) and the same
    code run eagerly, as plain Python loops: the same iterations and the
    same solution. (The fits of every test share the two compiled
    solvers: one trace each serves every shape.)"""
    features, labels = _blobs(60, 5, 3, seed=4)
    solutions = []
    for eagerly in (False, True):
      tf.config.run_functions_eagerly(eagerly)
      try:
        for objective in ("multinomial", "ovr"):
          probe = LogisticRegression(5, 3, objective=objective)
          result = probe.fit(features, labels)
          self.assertTrue(result.converged)
          solutions.append((result.iterations, probe.W.numpy()))
      finally:
        tf.config.run_functions_eagerly(False)
    for (iterations, compiled), (eager_iterations, eager) in zip(
        solutions[:2], solutions[2:]):
      self.assertEqual(iterations, eager_iterations)
      self.assertAllClose(compiled, eager, rtol=0, atol=1e-12)
    for fit in COMPILED_FITS.values():
      self.assertEqual(fit.experimental_get_tracing_count(), 1)


class LogisticRegressionTest(tf.test.TestCase):

  def test_matches_scikit_learn(self):
    """scikit-learn 1.9.1, LogisticRegression(tol=1e-12, max_iter=100000)
    (its default objective solved tightly) on this data gave these numbers."""
    i = np.arange(60)
    features = np.stack([np.sin(0.7 * i), np.cos(1.3 * i) * 2.0,
                         (i % 7) / 3.0 - 1.0], axis=1)
    labels = (i * 7 + (i // 5)) % 3
    probe = LogisticRegression(3, num_classes=3)
    self.assertTrue(probe.fit(features, labels, tolerance=1e-12).converged)
    sklearn_coef_transposed = [
        [0.003030931453, -0.017712249673, 0.01468131822],
        [0.417413109337, 0.197627079265, -0.615040188602],
        [0.135341154137, 0.016363508582, -0.151704662718]]
    sklearn_intercept = [0.33886379718, 0.411884578959, -0.750748376139]
    self.assertAllClose(probe.W, sklearn_coef_transposed, atol=1e-7)
    self.assertAllClose(probe.b, sklearn_intercept, atol=1e-7)
    self.assertAllClose(probe.predict_proba(features[:2]),
                        [[0.544207284866, 0.424858673136, 0.030934041998],
                         [0.442906041623, 0.452482337253, 0.104611621124]],
                        atol=1e-8)

  def test_one_vs_rest_matches_2016_scikit_learn(self):
    """The blog's objective: scikit-learn 1.9.1's OneVsRestClassifier(
    LogisticRegression(solver="liblinear", tol=1e-12)) on the same data."""
    i = np.arange(60)
    features = np.stack([np.sin(0.7 * i), np.cos(1.3 * i) * 2.0,
                         (i % 7) / 3.0 - 1.0], axis=1)
    labels = (i * 7 + (i // 5)) % 3
    probe = LogisticRegression(3, num_classes=3, objective="ovr")
    self.assertTrue(probe.fit(features, labels, tolerance=1e-12).converged)
    self.assertAllClose(probe.W, [[0.009228155165, -0.024026116336,
                                   0.006895445455],
                                  [0.424475658232, 0.082767991145,
                                   -0.783858201204],
                                  [0.156519624875, -0.025962061045,
                                   -0.173721630507]], atol=1e-7)
    self.assertAllClose(probe.b, [-0.424043858142, -0.383661219911,
                                  -1.531966147669], atol=1e-7)
    self.assertAllClose(probe.predict_proba(features[:2]),
                        [[0.52977761038, 0.422652432134, 0.047569957486],
                         [0.434865542937, 0.424378941138, 0.140755515925]],
                        atol=1e-8)
    self.assertAllEqual(probe.predict(features[:10]),
                        [0, 0, 2, 2, 0, 0, 0, 2, 1, 0])

  def test_converges_to_zero_gradient(self):
    features, labels = _blobs()
    probe = LogisticRegression(12, num_classes=4)
    start = _numpy_gradient(features, labels, np.zeros((12, 4)), np.zeros(4))
    result = probe.fit(features, labels, tolerance=1e-10)
    self.assertTrue(result.converged)
    self.assertLessEqual(result.gradient_norm, 1e-10)
    # The gradient recomputed independently, on the summed objective.
    d_weights, d_bias = _numpy_gradient(features, labels, probe.W.numpy(),
                                        probe.b.numpy())
    self.assertGreater(np.abs(start[0]).max(), 10.0)
    self.assertLess(np.abs(d_weights).max(), 1e-7)
    self.assertLess(np.abs(d_bias).max(), 1e-7)
    self.assertAllClose(np.mean(probe.b.numpy()), 0.0, atol=1e-12)

  def test_solution_does_not_depend_on_the_start(self):
    features, labels = _blobs(seed=1)
    solutions = []
    for start in range(3):
      probe = LogisticRegression(12, num_classes=4)
      if start:
        rng = np.random.default_rng(start)
        probe.W.assign(rng.normal(scale=3.0, size=(12, 4)))
        probe.b.assign(rng.normal(scale=3.0, size=4) + 5.0)
      self.assertTrue(probe.fit(features, labels, tolerance=1e-10).converged)
      solutions.append(probe)
    # The summed objective is 1-strongly convex in W, so each W lies within
    # |summed gradient| <= n * tolerance * sqrt(48) ~ 2e-7 of the optimum.
    for other in solutions[1:]:
      self.assertAllClose(other.W, solutions[0].W, rtol=0, atol=2e-7)
      self.assertAllClose(other.b, solutions[0].b, rtol=0, atol=2e-7)
      self.assertAllClose(other.predict_proba(features),
                          solutions[0].predict_proba(features), atol=1e-7)
    self.assertGreater(np.abs(solutions[0].W.numpy()).max(), 1.0)

  def test_penalty_strength(self):
    """A smaller C shrinks W: at the optimum W = -C X^T (P - Y)."""
    features, labels = _blobs(seed=2)
    norms = []
    for c in (0.01, 1.0):
      probe = LogisticRegression(12, num_classes=4, C=c)
      self.assertTrue(probe.fit(features, labels, tolerance=1e-10).converged)
      d_weights, _ = _numpy_gradient(features, labels, probe.W.numpy(),
                                     probe.b.numpy(), c=c)
      self.assertLess(np.abs(d_weights).max(), 1e-7)
      norms.append(np.linalg.norm(probe.W.numpy()))
    self.assertLess(norms[0], 0.5 * norms[1])

  def test_predictions_equal_keras_dense_softmax(self):
    features, labels = _blobs(seed=3)
    probe = LogisticRegression(12, num_classes=4)
    probe.fit(features, labels)
    expected = keras_probe(probe)(features)
    self.assertAllClose(probe.predict_proba(features), expected, rtol=1e-12,
                        atol=1e-14)
    self.assertAllEqual(probe.predict(features), np.argmax(expected, axis=1))
    self.assertAllClose(probe.accuracy(features, labels),
                        np.mean(np.argmax(expected, axis=1) == labels))

  def test_pixel_probe_on_mnist(self):
    """784 raw pixels, 300 images: converges and generalises."""
    mnist = real_mnist(validation_size=5000)
    train, test = mnist.train.take(300), mnist.test.take(500)
    probe = LogisticRegression(784)
    result = probe.fit(train.images, train.labels)
    self.assertTrue(result.converged, result)
    self.assertLessEqual(result.gradient_norm, 1e-8)
    self.assertEqual(probe.accuracy(train.images, train.labels), 1.0)
    self.assertGreater(probe.accuracy(test.images, test.labels), 0.75)


class PCATest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(0)
    self.data = (rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6)) +
                 rng.normal(size=6) * 10)
    centred = self.data - self.data.mean(axis=0)
    self.u, self.s, self.vt = np.linalg.svd(centred, full_matrices=False)

  def test_matches_numpy_svd(self):
    pca = fit_pca(self.data, 4)
    self.assertEqual(pca.components.shape, (4, 6))
    signs = np.sign(np.sum(pca.components.numpy() * self.vt[:4], axis=1))
    self.assertAllClose(pca.components, self.vt[:4] * signs[:, None],
                        atol=1e-12)
    variance = self.s ** 2 / (len(self.data) - 1)
    self.assertAllClose(pca.explained_variance, variance[:4], rtol=1e-12)
    self.assertAllClose(pca.explained_variance_ratio,
                        variance[:4] / variance.sum(), rtol=1e-12)
    self.assertAllClose(pca.transform(self.data),
                        self.u[:, :4] * self.s[:4] * signs, atol=1e-10)
    self.assertAllClose(pca.mean, self.data.mean(axis=0), rtol=1e-12)

  def test_float32_and_sign_convention(self):
    pca = fit_pca(self.data.astype(np.float32))
    self.assertEqual(pca.components.dtype, tf.float32)
    components = pca.components.numpy()
    self.assertAllClose(np.abs(components), np.abs(self.vt), atol=1e-4)
    largest = components[np.arange(6), np.argmax(np.abs(components), axis=1)]
    self.assertTrue(np.all(largest > 0))
    self.assertAllClose(np.sum(pca.explained_variance_ratio), 1.0, rtol=1e-5)


if __name__ == "__main__":
  tf.test.main()
