"""The hand-written statistics against closed forms and cases small enough to
work out by hand. (Reference values marked "scipy" were checked once with
scipy.stats outside this project; the tests do not import scipy.)"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import itertools
import math

import numpy as np
import tensorflow as tf

from convergence import stats


class IncompleteBetaTest(tf.test.TestCase):

  def test_closed_forms(self):
    for x in (0.0, 0.05, 0.3, 0.5, 0.77, 0.999, 1.0):
      # I_x(1, 1) = x;  I_x(a, 1) = x^a;  I_x(1, b) = 1 - (1 - x)^b
      self.assertAllClose(stats.regularized_incomplete_beta(1, 1, x), x,
                          rtol=1e-12, atol=1e-14)
      self.assertAllClose(stats.regularized_incomplete_beta(3.5, 1, x),
                          x ** 3.5, rtol=1e-12, atol=1e-14)
      self.assertAllClose(stats.regularized_incomplete_beta(1, 4, x),
                          1 - (1 - x) ** 4, rtol=1e-12, atol=1e-14)
      # B(x; 2, 2) = x^2/2 - x^3/3 and B(2, 2) = 1/6: I = 3x^2 - 2x^3
      self.assertAllClose(stats.regularized_incomplete_beta(2, 2, x),
                          3 * x ** 2 - 2 * x ** 3, rtol=1e-12, atol=1e-14)

  def test_symmetry_and_midpoint(self):
    for a, b, x in ((0.5, 7.0, 0.2), (30.0, 0.5, 0.95), (250.0, 0.5, 0.99)):
      self.assertAllClose(stats.regularized_incomplete_beta(a, b, x),
                          1 - stats.regularized_incomplete_beta(b, a, 1 - x),
                          rtol=1e-10, atol=1e-14)
    for a in (0.5, 3.0, 40.0, 600.0):
      self.assertAllClose(stats.regularized_incomplete_beta(a, a, 0.5), 0.5,
                          rtol=1e-12)

  def test_arcsine_case(self):
    # I_x(1/2, 1/2) = (2 / pi) arcsin(sqrt(x))
    for x in (0.01, 0.1, 0.6, 0.95):
      self.assertAllClose(stats.regularized_incomplete_beta(0.5, 0.5, x),
                          2 / math.pi * math.asin(math.sqrt(x)), rtol=1e-12)

  def test_rejects_bad_arguments(self):
    with self.assertRaises(ValueError):
      stats.regularized_incomplete_beta(0, 1, 0.5)
    with self.assertRaises(ValueError):
      stats.regularized_incomplete_beta(1, 1, 1.5)


class StudentTTest(tf.test.TestCase):

  def test_closed_forms(self):
    for t in (-7.0, -1.5, -0.2, 0.0, 0.3, 2.0, 12.0):
      # 1 degree of freedom: the Cauchy distribution.
      self.assertAllClose(stats.student_t_cdf(t, 1),
                          0.5 + math.atan(t) / math.pi, rtol=1e-12)
      # 2 degrees of freedom: 1/2 + t / (2 sqrt(2 + t^2)).
      self.assertAllClose(stats.student_t_cdf(t, 2),
                          0.5 + t / (2 * math.sqrt(2 + t * t)), rtol=1e-12)

  def test_many_degrees_of_freedom_approach_the_normal(self):
    for t in (-3.0, -1.0, 0.5, 2.5):
      normal = 0.5 * (1 + math.erf(t / math.sqrt(2)))
      self.assertAllClose(stats.student_t_cdf(t, 1e7), normal, atol=1e-7)

  def test_two_sided_p(self):
    self.assertAllClose(stats.student_t_two_sided_p(0.0, 5), 1.0)
    # 2 P(T > 1) with 1 degree of freedom = 1/2.
    self.assertAllClose(stats.student_t_two_sided_p(1.0, 1), 0.5, rtol=1e-12)
    self.assertAllClose(stats.student_t_two_sided_p(-1.0, 1), 0.5, rtol=1e-12)


class WelchTest(tf.test.TestCase):

  def test_small_case_by_hand(self):
    a, b = [1, 2, 3, 4], [2, 4, 6, 8, 10]
    # means 2.5 and 6; sample variances 5/3 and 10.
    se2_a, se2_b = (5 / 3) / 4, 10 / 5
    t = (2.5 - 6) / math.sqrt(se2_a + se2_b)
    df = (se2_a + se2_b) ** 2 / (se2_a ** 2 / 3 + se2_b ** 2 / 4)
    result = stats.welch_t_test(a, b)
    self.assertAllClose(result["t"], t, rtol=1e-12)
    self.assertAllClose(result["df"], df, rtol=1e-12)
    self.assertAllClose(result["t"], -2.2514363231593695, rtol=1e-12)
    self.assertAllClose(result["df"], 5.520787746170677, rtol=1e-12)
    self.assertAllClose(result["p"], 0.06913359319239237, rtol=1e-9)  # scipy

  def test_symmetric_and_large_samples(self):
    rng = np.random.default_rng(0)
    a = rng.normal(0.8787, 0.0027, 500).round(4)
    b = rng.normal(0.8764, 0.0023, 500).round(4)
    forward, backward = stats.welch_t_test(a, b), stats.welch_t_test(b, a)
    self.assertAllClose(forward["t"], -backward["t"])
    self.assertAllClose(forward["p"], backward["p"])
    self.assertAllClose(forward["t"], 15.29570111766293, rtol=1e-10)  # scipy
    self.assertAllClose(forward["p"], 2.308668878024361e-47,
                        rtol=1e-6)  # scipy

  def test_needs_two_values_and_some_spread(self):
    with self.assertRaises(ValueError):
      stats.welch_t_test([1.0], [1.0, 2.0])
    with self.assertRaises(ValueError):
      stats.welch_t_test([1.0, 1.0], [1.0, 1.0])


def exact_permutation_p(a, b, statistic):
  """p over every split of the pooled values into |a| and |b| (tiny cases)."""
  pooled = np.concatenate([a, b])
  observed = statistic(np.asarray(a), np.asarray(b))
  splits = list(itertools.combinations(range(len(pooled)), len(a)))
  extreme = 0
  for chosen in splits:
    mask = np.zeros(len(pooled), bool)
    mask[list(chosen)] = True
    extreme += statistic(pooled[mask], pooled[~mask]) >= observed - 1e-12
  return extreme / len(splits)


class PermutationTest(tf.test.TestCase):

  def test_separated_samples(self):
    # Of the 20 ways to split 1..6 in three and three, only 123|456 and
    # 456|123 have |difference of means| >= 3: exact p = 2/20.
    result = stats.permutation_test([1, 2, 3], [4, 5, 6], 20_000, seed=1)
    self.assertAllClose(result["difference"], -3.0)
    self.assertAllClose(result["p"], 0.1, atol=0.01)

  def test_matches_exact_enumeration(self):
    a, b = [0.2, 1.5, 0.9, 2.2], [1.1, 2.5, 3.0, 1.8, 2.9]
    exact = exact_permutation_p(
        a, b, lambda x, y: abs(x.mean() - y.mean()))
    self.assertAllClose(stats.permutation_test(a, b, 20_000)["p"], exact,
                        atol=0.01)

  def test_equal_samples_and_the_plus_one(self):
    self.assertEqual(stats.permutation_test([1, 2, 3], [1, 2, 3], 500)["p"],
                     1.0)
    # The observed labelling counts too: p >= 1 / (permutations + 1).
    self.assertGreaterEqual(
        stats.permutation_test(np.arange(50), np.arange(50) + 100, 99)["p"],
        1 / 100)


class KolmogorovSmirnovTest(tf.test.TestCase):

  def test_statistic_by_hand(self):
    # a's CDF reaches 1 at 3, when b's is 1/4 (only 2.5 <= 3): D = 3/4.
    self.assertAllClose(stats.ks_statistic([1, 2, 3], [2.5, 4, 5, 6]), 0.75)
    # Ties: at x = 3, F_a = 1 and F_b = 2/3 (2, 2 <= 3): D = 1/3.
    self.assertAllClose(stats.ks_statistic([1, 2, 2, 3], [2, 2, 4]), 1 / 3)
    self.assertAllClose(stats.ks_statistic([1, 2], [1, 2]), 0.0)
    self.assertAllClose(stats.ks_statistic([1, 2], [3, 4, 5]), 1.0)

  def test_permutation_p(self):
    # D = 1 only for the two splits that separate 1..3 from 4..6.
    result = stats.ks_test([1, 2, 3], [4, 5, 6], 20_000, seed=2)
    self.assertAllClose(result["statistic"], 1.0)
    self.assertAllClose(result["p"], 0.1, atol=0.01)
    a, b = [1, 2, 2, 3, 5], [2, 2, 4, 4]
    exact = exact_permutation_p(
        a, b, lambda x, y: stats.ks_statistic(x, y))
    self.assertAllClose(stats.ks_test(a, b, 20_000)["p"], exact, atol=0.01)

  def test_large_samples(self):
    rng = np.random.default_rng(0)
    a = rng.normal(0.8787, 0.0027, 500).round(4)
    b = rng.normal(0.8764, 0.0023, 500).round(4)
    self.assertAllClose(stats.ks_statistic(a, b), 0.392)  # scipy
    self.assertAllClose(stats.ks_test(a, b, 999)["p"], 1 / 1000)


class BootstrapTest(tf.test.TestCase):

  def test_constant_sample(self):
    self.assertAllClose(stats.bootstrap_interval([0.5] * 20), (0.5, 0.5))

  def test_normal_sample_width_and_seed(self):
    rng = np.random.default_rng(3)
    values = rng.normal(10.0, 2.0, 400)
    low, high = stats.bootstrap_interval(values, seed=4)
    half_width = 1.96 * values.std(ddof=1) / math.sqrt(len(values))
    self.assertAllClose(low, values.mean() - half_width, atol=0.05)
    self.assertAllClose(high, values.mean() + half_width, atol=0.05)
    self.assertEqual(stats.bootstrap_interval(values, seed=4), (low, high))

  def test_difference_interval(self):
    rng = np.random.default_rng(5)
    a, b = rng.normal(1.0, 1.0, 300), rng.normal(0.0, 1.0, 300)
    low, high = stats.bootstrap_difference_interval(a, b)
    half_width = 1.96 * math.sqrt(a.var(ddof=1) / 300 + b.var(ddof=1) / 300)
    difference = a.mean() - b.mean()
    self.assertAllClose((low, high),
                        (difference - half_width, difference + half_width),
                        atol=0.03)


class SummaryTest(tf.test.TestCase):

  def test_mean_and_population_std(self):
    self.assertAllClose(stats.mean([1, 2, 3, 4]), 2.5)
    self.assertAllClose(stats.std([1, 2, 3, 4]), math.sqrt(1.25))  # ddof=0
    self.assertAllClose(stats.std([1, 2, 3, 4], ddof=1), math.sqrt(5 / 3))


class KernelDensityTest(tf.test.TestCase):

  def test_value_by_hand(self):
    # Two kernels N(0, 0.25) and N(1, 0.25), at x = 0.
    expected = 0.5 * (1 + math.exp(-2)) / (0.5 * math.sqrt(2 * math.pi))
    self.assertAllClose(stats.gaussian_kde([0.0, 1.0], [0.0], 0.5),
                        [expected], rtol=1e-12)

  def test_scott_bandwidth_and_total_mass(self):
    rng = np.random.default_rng(0)
    samples = rng.normal(0.878, 0.0027, 500)
    self.assertAllClose(stats.scott_bandwidth(samples),
                        samples.std(ddof=1) * 500 ** -0.2, rtol=1e-12)
    grid = np.linspace(0.85, 0.91, 4001)
    density = stats.gaussian_kde(samples, grid)
    self.assertAllClose(np.trapezoid(density, grid), 1.0, atol=1e-6)
    self.assertAllClose(density[np.argmax(density)], density.max())

  def test_matches_scipy_values(self):
    rng = np.random.default_rng(0)
    samples = rng.normal(0.8787, 0.0027, 500).round(4)
    self.assertAllClose(
        stats.gaussian_kde(samples, [0.86, 0.8675, 0.875, 0.8825]),
        [4.41785635e-24, 1.13777797e+00, 6.56004050e+01, 6.12464793e+01],
        rtol=1e-6)  # scipy.stats.gaussian_kde


class CompareTest(tf.test.TestCase):

  def test_results_keys(self):
    """Each entry is the test of its name on (a, b), in that order: the
    statistics worked out here, each p-value that of its own test (checked
    against SciPy above) with the permutations and seed passed on."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 30), rng.normal(1, 1, 20)
    tests = stats.compare(a, b, num_permutations=500, num_resamples=500,
                          seed=3)
    self.assertAllClose(tests["mean_difference"], a.mean() - b.mean())
    se2_a, se2_b = a.var(ddof=1) / 30, b.var(ddof=1) / 20
    self.assertAllClose(tests["welch_t"],
                        (a.mean() - b.mean()) / np.sqrt(se2_a + se2_b))
    self.assertAllClose(tests["welch_df"], (se2_a + se2_b) ** 2 / (
        se2_a ** 2 / 29 + se2_b ** 2 / 19))
    pooled = np.concatenate([a, b])
    self.assertAllClose(tests["ks_statistic"], np.abs(
        (a[:, None] <= pooled).mean(0) - (b[:, None] <= pooled).mean(0)).max())
    self.assertEqual(tests["welch_p"], stats.welch_t_test(a, b)["p"])
    self.assertEqual(tests["permutation_p"],
                     stats.permutation_test(a, b, 500, seed=3)["p"])
    self.assertEqual(tests["ks_p"], stats.ks_test(a, b, 500, seed=3)["p"])
    self.assertEqual(tuple(tests["mean_difference_ci95"]),
                     stats.bootstrap_difference_interval(a, b, 500, seed=3))
    self.assertEqual(tests["num_permutations"], 500)
    self.assertLess(tests["welch_p"], 0.05)
    self.assertLess(tests["mean_difference_ci95"][1], 0.0)


class PairedTest(tf.test.TestCase):
  """Issue 12 (4): the paired statistics, on cases worked out by hand."""

  def test_paired_t_by_hand(self):
    """a = 1, 2, 3, 4 and b = 0, 2, 1, 1: d = 1, 0, 2, 3, mean 3/2;
    deviations -1/2, -3/2, 1/2, 3/2, so s_d^2 = 5/3; t = 1.5 / sqrt(5/12)
    with 3 degrees of freedom, whose CDF is closed:
    F(t) = 1/2 + (1/pi) [t / (sqrt(3) (1 + t^2/3)) + atan(t / sqrt(3))]."""
    result = stats.paired_t_test([1, 2, 3, 4], [0, 2, 1, 1])
    t = 1.5 / math.sqrt(5 / 12)
    self.assertAllClose(result["t"], t, rtol=1e-12)
    self.assertEqual(result["df"], 3)
    cdf = 0.5 + (t / (math.sqrt(3) * (1 + t * t / 3)) +
                 math.atan(t / math.sqrt(3))) / math.pi
    self.assertAllClose(result["p"], 2 * (1 - cdf), rtol=1e-10)
    with self.assertRaises(ValueError):
      stats.paired_t_test([1, 2], [0, 1])  # every difference is 1
    with self.assertRaises(ValueError):
      stats.paired_t_test([1, 2, 3], [0, 1])

  def test_sign_test_by_hand(self):
    """d = 1, 2, -1, 3, 0, 4: 4 positive, 1 negative, the zero dropped.
    Of 5 fair flips, P(K <= 1) = (1 + 5) / 32: p = 2 * 6/32 = 0.375."""
    result = stats.sign_test([1, 2, -1, 3, 0, 4])
    self.assertEqual((result["positive"], result["negative"],
                      result["zeros"]), (4, 1, 1))
    self.assertAllClose(result["p"], 0.375, rtol=1e-15)
    # 10 of 10 positive: 2 / 2^10; 5 of 10: capped at 1.
    self.assertAllClose(stats.binomial_two_sided_p(10, 10), 2 / 1024)
    self.assertEqual(stats.binomial_two_sided_p(5, 10), 1.0)
    self.assertEqual(stats.sign_test([0, 0])["p"], 1.0)

  def test_ranks_and_exact_signed_rank_distribution(self):
    self.assertAllEqual(stats.average_ranks([3, 1, 3, 2]), [3.5, 1, 3.5, 2])
    # Subsets of {1, 2, 3} by sum: {} 0, {1} 1, {2} 2, {3} {1,2} 3,
    # {1,3} 4, {2,3} 5, {1,2,3} 6.
    self.assertEqual(stats.signed_rank_counts(3), [1, 1, 1, 2, 1, 1, 1])
    self.assertEqual(sum(stats.signed_rank_counts(12)), 2 ** 12)

  def test_wilcoxon_exact_by_hand(self):
    """d = 1, -2, 3, 4, 5: ranks 1..5, W+ = 1 + 3 + 4 + 5 = 13, W- = 2.
    Subsets of 1..5 with sum <= 2: {}, {1}, {2}, so p = 2 * 3/32."""
    result = stats.wilcoxon_signed_rank([1, -2, 3, 4, 5])
    self.assertEqual(result["w_plus"], 13)
    self.assertEqual(result["method"], "exact")
    self.assertAllClose(result["p"], 0.1875, rtol=1e-15)
    self.assertEqual(stats.wilcoxon_signed_rank([0, 0])["p"], 1.0)

  def test_wilcoxon_normal_with_ties_by_hand(self):
    """d = 1, -1, 2, 2: |d| ranks 1.5, 1.5, 3.5, 3.5, W+ = 8.5; n = 4,
    mean 5, variance 4*5*9/24 - (6 + 6)/48 = 7.25 (two ties of 2)."""
    result = stats.wilcoxon_signed_rank([1, -1, 2, 2])
    z = 3.5 / math.sqrt(7.25)
    self.assertEqual(result["method"], "normal")
    self.assertAllClose(result["z"], z, rtol=1e-12)
    self.assertAllClose(result["p"], math.erfc(z / math.sqrt(2)), rtol=1e-12)

  def test_wilcoxon_normal_approaches_exact(self):
    """Without ties, n = 50: the normal approximation (used above 50) and
    the exact p agree to about 1e-3 in the middle of the distribution."""
    d = np.arange(1, 51) * np.where(np.arange(50) % 3 == 0, -1, 1)
    exact = stats.wilcoxon_signed_rank(d)
    self.assertEqual(exact["method"], "exact")
    mean_w, variance = 50 * 51 / 4, 50 * 51 * 101 / 24
    z = (exact["w_plus"] - mean_w) / math.sqrt(variance)
    self.assertAllClose(exact["p"], math.erfc(abs(z) / math.sqrt(2)),
                        atol=2e-3)

  def test_paired_compare_keeps_ties_of_accuracies(self):
    """0.8786 - 0.8774 and 0.0012 differ in the last bit of a float: the
    rounding makes them one tie, not two ranks."""
    a, b = [0.8786, 0.0012, 0.8790, 0.8700], [0.8774, 0.0, 0.8790, 0.8710]
    result = stats.paired_compare(a, b)
    self.assertEqual(result["count"], 4)
    self.assertAllClose(result["fraction_a_better"], 0.5)
    self.assertAllClose(result["fraction_ties"], 0.25)
    self.assertEqual((result["sign_positive"], result["sign_negative"]),
                     (2, 1))
    # |d| = 0.0012, 0.0012, 0.0010: ranks 2.5, 2.5, 1; W+ = 5, n = 3, ties.
    self.assertEqual(result["wilcoxon_w_plus"], 5.0)
    self.assertEqual(result["wilcoxon_method"], "normal")


class ExpectedMaxTest(tf.test.TestCase):

  def test_by_hand(self):
    """Two draws from {1, 2, 3}: P(max = 1) = 1/9, P(max = 2) = 4/9 - 1/9,
    P(max = 3) = 1 - 4/9, so E[max] = (1 + 6 + 15) / 9 = 22/9."""
    self.assertAllClose(stats.expected_max([3, 1, 2], 2), 22 / 9, rtol=1e-12)
    self.assertAllClose(stats.expected_max([3, 1, 2], 1), 2.0, rtol=1e-12)
    self.assertAllClose(stats.expected_max([3, 1, 2], 10_000), 3.0)
    rng = np.random.default_rng(0)
    values = rng.normal(0, 1, 200)
    tail = [stats.expected_max(values, n) for n in (1, 5, 50, 500)]
    self.assertAllEqual(np.diff(tail) > 0, [True] * 3)
    self.assertLess(tail[-1], values.max())


if __name__ == "__main__":
  tf.test.main()
