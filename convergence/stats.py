"""The statistics of the comparison, written out in NumPy (no SciPy).

For two samples a (n_a values) and b (n_b values), e.g. the test accuracies
reached by the two strategies:

  mean, std             std is the population one (ddof=0), as the blog's
                        np.std printed it
  bootstrap interval    the 2.5th and 97.5th percentiles of the mean over
                        resamples drawn with replacement
  Welch's t-test        t = (mean_a - mean_b) / sqrt(s_a^2/n_a + s_b^2/n_b),
                        s^2 with ddof=1, and the Welch-Satterthwaite degrees
                        of freedom; two-sided p from the Student t CDF
  permutation test      how often a random relabelling of the pooled values
                        gives a |difference of means| at least as large
  Kolmogorov-Smirnov    D = max over x of |F_a(x) - F_b(x)| (the empirical
                        CDFs), with a permutation p-value

The Student t CDF needs the regularized incomplete beta function I_x(a, b):
for t with nu degrees of freedom,

  P(|T| >= |t|) = I_{nu / (nu + t^2)}(nu / 2, 1 / 2),

and I_x(a, b) is evaluated by its continued fraction (Numerical Recipes,
``betacf``, with the modified Lentz method).
"""
import math

import numpy as np

# Continued fraction: stop when a factor is this close to 1; give up after
# MAX_ITERATIONS (the fraction converges in O(sqrt(max(a, b))) terms).
_EPSILON = 1e-15
_MAX_ITERATIONS = 10_000
_TINY = 1e-300  # keeps Lentz's method from dividing by zero


def mean(values):
  return float(np.mean(np.asarray(values, np.float64)))


def std(values, ddof=0):
  """Standard deviation; ddof=0 (population) unless told otherwise."""
  return float(np.std(np.asarray(values, np.float64), ddof=ddof))


def _beta_continued_fraction(a, b, x):
  """The continued fraction of I_x(a, b) (Numerical Recipes' betacf)."""
  qab, qap, qam = a + b, a + 1.0, a - 1.0
  c = 1.0
  d = 1.0 - qab * x / qap
  d = 1.0 / (d if abs(d) > _TINY else _TINY)
  result = d
  for m in range(1, _MAX_ITERATIONS + 1):
    m2 = 2 * m
    # Even step: coefficient m (b - m) x / ((a + 2m - 1)(a + 2m)).
    aa = m * (b - m) * x / ((qam + m2) * (a + m2))
    d = 1.0 + aa * d
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    c = 1.0 + aa / c
    c = c if abs(c) > _TINY else _TINY
    result *= d * c
    # Odd step: coefficient -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)).
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
    d = 1.0 + aa * d
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    c = 1.0 + aa / c
    c = c if abs(c) > _TINY else _TINY
    delta = d * c
    result *= delta
    if abs(delta - 1.0) < _EPSILON:
      return result
  raise ArithmeticError(
      f"incomplete beta continued fraction did not converge for a={a}, "
      f"b={b}, x={x}")


def regularized_incomplete_beta(a, b, x):
  """I_x(a, b) = B(x; a, b) / B(a, b), for a, b > 0 and 0 <= x <= 1."""
  if a <= 0 or b <= 0:
    raise ValueError(f"need a > 0 and b > 0, got a={a}, b={b}")
  if not 0.0 <= x <= 1.0:
    raise ValueError(f"need 0 <= x <= 1, got x={x}")
  if x == 0.0 or x == 1.0:
    return float(x)
  # x^a (1-x)^b / B(a, b), through logarithms to stay in range.
  front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                   + a * math.log(x) + b * math.log1p(-x))
  # The fraction converges fast for x < (a+1)/(a+b+2); otherwise use the
  # symmetry I_x(a, b) = 1 - I_{1-x}(b, a).
  if x < (a + 1.0) / (a + b + 2.0):
    return front * _beta_continued_fraction(a, b, x) / a
  return 1.0 - front * _beta_continued_fraction(b, a, 1.0 - x) / b


def student_t_two_sided_p(t, df):
  """P(|T| >= |t|) for T ~ Student t with ``df`` degrees of freedom."""
  if df <= 0:
    raise ValueError(f"need df > 0, got {df}")
  if math.isinf(t):
    return 0.0
  return regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))


def student_t_cdf(t, df):
  """P(T <= t) for T ~ Student t with ``df`` degrees of freedom."""
  tail = 0.5 * student_t_two_sided_p(t, df)
  return 1.0 - tail if t > 0 else tail


def welch_t_test(a, b):
  """Welch's two-sample t-test (unequal variances), two-sided.

  Returns:
    dict with t, df (Welch-Satterthwaite) and p.
  Raises:
    ValueError: a sample has fewer than 2 values, or both have no spread.
  """
  a = np.asarray(a, np.float64)
  b = np.asarray(b, np.float64)
  if len(a) < 2 or len(b) < 2:
    raise ValueError("Welch's t-test needs at least 2 values in each sample")
  se2_a = np.var(a, ddof=1) / len(a)
  se2_b = np.var(b, ddof=1) / len(b)
  se2 = se2_a + se2_b
  if se2 == 0:
    raise ValueError("Welch's t-test is undefined: both samples are constant")
  t = (a.mean() - b.mean()) / math.sqrt(se2)
  df = se2 ** 2 / (se2_a ** 2 / (len(a) - 1) + se2_b ** 2 / (len(b) - 1))
  return {"t": float(t), "df": float(df),
          "p": student_t_two_sided_p(float(t), float(df))}


def _rng(seed):
  return np.random.default_rng(seed)


def bootstrap_interval(values, statistic=np.mean, num_resamples=10_000,
                       confidence=0.95, seed=0):
  """Percentile bootstrap interval of ``statistic`` (default: the mean).

  Returns:
    (low, high): the (1-confidence)/2 and (1+confidence)/2 quantiles of the
    statistic over ``num_resamples`` resamples of ``values`` with
    replacement.
  """
  values = np.asarray(values, np.float64)
  rng = _rng(seed)
  estimates = np.empty(num_resamples)
  # Blocks of resamples keep the index array small for large samples.
  block = max(1, 1_000_000 // max(1, len(values)))
  for start in range(0, num_resamples, block):
    stop = min(num_resamples, start + block)
    indices = rng.integers(0, len(values), size=(stop - start, len(values)))
    estimates[start:stop] = statistic(values[indices], axis=1)
  tail = (1.0 - confidence) / 2.0
  low, high = np.quantile(estimates, [tail, 1.0 - tail])
  return float(low), float(high)


def bootstrap_difference_interval(a, b, num_resamples=10_000,
                                  confidence=0.95, seed=0):
  """Percentile bootstrap interval of mean(a) - mean(b), each sample
  resampled on its own."""
  a = np.asarray(a, np.float64)
  b = np.asarray(b, np.float64)
  rng = _rng(seed)
  differences = np.empty(num_resamples)
  block = max(1, 1_000_000 // max(1, len(a) + len(b)))
  for start in range(0, num_resamples, block):
    count = min(num_resamples, start + block) - start
    resampled_a = a[rng.integers(0, len(a), size=(count, len(a)))]
    resampled_b = b[rng.integers(0, len(b), size=(count, len(b)))]
    differences[start:start + count] = (resampled_a.mean(axis=1) -
                                        resampled_b.mean(axis=1))
  tail = (1.0 - confidence) / 2.0
  low, high = np.quantile(differences, [tail, 1.0 - tail])
  return float(low), float(high)


def _relabellings(num_a, num_total, num_permutations, rng, block=1000):
  """Yields boolean arrays (k, num_total): True marks the values a random
  relabelling assigns to sample a (exactly num_a per row)."""
  base = np.zeros(num_total, bool)
  base[:num_a] = True
  for start in range(0, num_permutations, block):
    count = min(num_permutations, start + block) - start
    yield rng.permuted(np.tile(base, (count, 1)), axis=1)


def _permutation_p(exceed_count, num_permutations):
  """(1 + count) / (1 + permutations): the observed labelling counts as one
  of the relabellings, so p is never 0 and the test keeps its level."""
  return (1 + exceed_count) / (1 + num_permutations)


def permutation_test(a, b, num_permutations=10_000, seed=0):
  """Two-sided permutation test of mean(a) - mean(b).

  Returns:
    dict with difference (the observed one) and p.
  """
  a = np.asarray(a, np.float64)
  b = np.asarray(b, np.float64)
  pooled = np.concatenate([a, b])
  total = pooled.sum()
  observed = a.mean() - b.mean()
  # Relabelled differences are computed from sums in another order than the
  # observed one; equal differences must not be lost to rounding.
  tolerance = 1e-9 * max(1.0, np.abs(pooled).max())
  exceed = 0
  for in_a in _relabellings(len(a), len(pooled), num_permutations,
                            _rng(seed)):
    sum_a = in_a.astype(np.float64) @ pooled
    differences = sum_a / len(a) - (total - sum_a) / len(b)
    exceed += int(np.sum(np.abs(differences) >= abs(observed) - tolerance))
  return {"difference": float(observed),
          "p": _permutation_p(exceed, num_permutations)}


def _scaled_ks(in_a, tie_ends, num_a, num_b):
  """num_a * num_b * D for each row of labels over the sorted pooled values.

  Integers, so relabellings can be compared with the observed D exactly.
  """
  count_a = np.cumsum(in_a, axis=-1)[..., tie_ends]
  count_b = (tie_ends + 1) - count_a
  return np.abs(count_a * num_b - count_b * num_a).max(axis=-1)


def ks_statistic(a, b):
  """Two-sample Kolmogorov-Smirnov statistic D = max_x |F_a(x) - F_b(x)|."""
  return ks_test(a, b, num_permutations=0)["statistic"]


def ks_test(a, b, num_permutations=10_000, seed=0):
  """Kolmogorov-Smirnov statistic with a permutation p-value.

  The empirical CDFs only change at the pooled values, so D is the largest
  gap at the END of each run of tied values in the sorted pooled sample
  (ties are common: accuracies are multiples of 1/10,000).

  Returns:
    dict with statistic (D) and p (None if num_permutations is 0).
  """
  a = np.asarray(a, np.float64)
  b = np.asarray(b, np.float64)
  if len(a) == 0 or len(b) == 0:
    raise ValueError("the KS statistic needs values in both samples")
  pooled = np.concatenate([a, b])
  order = np.argsort(pooled, kind="stable")
  sorted_values = pooled[order]
  tie_ends = np.flatnonzero(np.append(np.diff(sorted_values) != 0, True))
  in_a = (order < len(a)).astype(np.int64)
  scale = len(a) * len(b)
  observed = _scaled_ks(in_a, tie_ends, len(a), len(b))
  result = {"statistic": float(observed / scale), "p": None}
  if num_permutations:
    exceed = 0
    for relabelled in _relabellings(len(a), len(pooled), num_permutations,
                                    _rng(seed)):
      exceed += int(np.sum(_scaled_ks(relabelled.astype(np.int64), tie_ends,
                                      len(a), len(b)) >= observed))
    result["p"] = _permutation_p(exceed, num_permutations)
  return result


def scott_bandwidth(samples):
  """Scott's rule, the default of scipy's gaussian_kde and seaborn's
  distplot: h = std(ddof=1) * n^(-1/5)."""
  samples = np.asarray(samples, np.float64)
  return float(np.std(samples, ddof=1) * len(samples) ** (-0.2))


def gaussian_kde(samples, points, bandwidth=None):
  """Gaussian kernel density estimate at ``points``.

    density(x) = 1/n sum_i N(x; samples_i, h^2)

  Args:
    bandwidth: the kernel's standard deviation h; None for Scott's rule.
  Returns:
    float64 array shaped like ``points``.
  """
  samples = np.asarray(samples, np.float64)
  points = np.asarray(points, np.float64)
  h = scott_bandwidth(samples) if bandwidth is None else float(bandwidth)
  if not h > 0:
    raise ValueError(f"the KDE needs a positive bandwidth, got {h} (do the "
                     "samples all have the same value?)")
  z = (points[..., None] - samples) / h
  return np.exp(-0.5 * z * z).sum(axis=-1) / (len(samples) * h *
                                               math.sqrt(2 * math.pi))


# Paired samples --------------------------------------------------------------
#
# With --paired, network i of each strategy starts from the same weights, so
# the question is asked init by init: d_i = a_i - b_i.
#
#   paired t-test   t = mean(d) / (s_d / sqrt(n)), s_d with ddof=1, n - 1
#                   degrees of freedom (Welch's test above, on one sample)
#   sign test       of the n' non-zero d_i, k are positive; under "a and b
#                   are exchangeable" k ~ Binomial(n', 1/2), so the
#                   two-sided p = min(1, 2 P(K <= min(k, n' - k))), exact
#   Wilcoxon        rank |d_i| (zeros dropped, ties given their average
#   signed-rank     rank); W+ = sum of the ranks of positive d_i. Exact
#                   distribution when there are no ties and n' <= 50
#                   (count the subsets of ranks 1..n' by their sum);
#                   otherwise the normal approximation, mean n'(n'+1)/4,
#                   variance n'(n'+1)(2n'+1)/24 - sum(t^3 - t)/48 over the
#                   tie groups (sizes t), without continuity correction.

_WILCOXON_EXACT_MAX = 50


def paired_t_test(a, b):
  """Paired t-test of mean(a - b) = 0, two-sided: dict t, df, p.

  Raises:
    ValueError: fewer than 2 pairs, different lengths, or all d_i equal.
  """
  d = _differences(a, b)
  if len(d) < 2:
    raise ValueError("the paired t-test needs at least 2 pairs")
  sd = np.std(d, ddof=1)
  if sd == 0:
    raise ValueError("the paired t-test is undefined: every difference is "
                     "the same")
  t = d.mean() / (sd / math.sqrt(len(d)))
  df = len(d) - 1
  return {"t": float(t), "df": float(df),
          "p": student_t_two_sided_p(float(t), float(df))}


def _differences(a, b):
  a = np.asarray(a, np.float64)
  b = np.asarray(b, np.float64)
  if a.shape != b.shape or a.ndim != 1:
    raise ValueError(f"paired samples need the same length, got {a.shape} "
                     f"and {b.shape}")
  return a - b


def binomial_two_sided_p(k, n):
  """Two-sided p of k successes in n fair coin flips: min(1, 2 P(K <=
  min(k, n - k))), computed exactly in integers."""
  low = min(k, n - k)
  tail = sum(math.comb(n, i) for i in range(low + 1))
  return min(1.0, 2 * tail / 2 ** n)


def sign_test(d):
  """Sign test of the differences ``d`` (zeros dropped): dict positive,
  negative, zeros, p."""
  d = np.asarray(d, np.float64)
  positive, negative = int(np.sum(d > 0)), int(np.sum(d < 0))
  p = (1.0 if positive + negative == 0
       else binomial_two_sided_p(positive, positive + negative))
  return {"positive": positive, "negative": negative,
          "zeros": len(d) - positive - negative, "p": p}


def average_ranks(values):
  """Ranks 1..n of ``values``, ties given the average of their ranks."""
  values = np.asarray(values, np.float64)
  order = np.argsort(values, kind="stable")
  ranks = np.empty(len(values))
  sorted_values = values[order]
  start = 0
  while start < len(values):
    end = start
    while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[
        start]:
      end += 1
    ranks[order[start:end + 1]] = (start + end) / 2 + 1
    start = end + 1
  return ranks


def signed_rank_counts(n):
  """counts[w] = how many subsets of the ranks 1..n sum to w (w = 0 ..
  n(n+1)/2): the exact null distribution of W+ times 2^n."""
  counts = [1] + [0] * (n * (n + 1) // 2)
  for rank in range(1, n + 1):
    for w in range(len(counts) - 1, rank - 1, -1):
      counts[w] += counts[w - rank]
  return counts


def wilcoxon_signed_rank(d):
  """Wilcoxon signed-rank test of the differences ``d``, two-sided.

  Returns:
    dict w_plus, n (non-zero differences), method ("exact" or "normal"), z
    (None if exact) and p.
  """
  d = np.asarray(d, np.float64)
  d = d[d != 0]
  n = len(d)
  if n == 0:
    return {"w_plus": 0.0, "n": 0, "method": "exact", "z": None, "p": 1.0}
  ranks = average_ranks(np.abs(d))
  w_plus = float(ranks[d > 0].sum())
  _, tie_sizes = np.unique(np.abs(d), return_counts=True)
  if n <= _WILCOXON_EXACT_MAX and np.all(tie_sizes == 1):
    counts = signed_rank_counts(n)
    low = int(round(min(w_plus, n * (n + 1) / 2 - w_plus)))
    p = min(1.0, 2 * sum(counts[:low + 1]) / 2 ** n)
    return {"w_plus": w_plus, "n": n, "method": "exact", "z": None, "p": p}
  mean_w = n * (n + 1) / 4
  variance = (n * (n + 1) * (2 * n + 1) / 24 -
              float(np.sum(tie_sizes ** 3 - tie_sizes)) / 48)
  z = (w_plus - mean_w) / math.sqrt(variance)
  return {"w_plus": w_plus, "n": n, "method": "normal", "z": float(z),
          "p": math.erfc(abs(z) / math.sqrt(2))}


def paired_compare(a, b, decimals=12):
  """Every paired statistic of a and b (network i of each from the same
  start), as results.json's ``paired`` entries.

  The differences are rounded to ``decimals`` places first: accuracies are
  multiples of 1/10,000, and a difference must not lose a tie (or gain a
  sign) to float rounding.
  """
  d = np.round(_differences(a, b), decimals)
  t = paired_t_test(a, b)
  sign = sign_test(d)
  wilcoxon = wilcoxon_signed_rank(d)
  return {"count": len(d), "mean_difference": float(d.mean()),
          "std_difference": float(d.std(ddof=1)),
          "mean_difference_ci95": bootstrap_interval(d),
          "fraction_a_better": sign["positive"] / len(d),
          "fraction_ties": sign["zeros"] / len(d),
          "t": t["t"], "t_df": t["df"], "t_p": t["p"],
          "sign_positive": sign["positive"], "sign_negative": sign["negative"],
          "sign_p": sign["p"], "wilcoxon_w_plus": wilcoxon["w_plus"],
          "wilcoxon_z": wilcoxon["z"], "wilcoxon_method": wilcoxon["method"],
          "wilcoxon_p": wilcoxon["p"],
          "correlation": float(np.corrcoef(a, b)[0, 1])}


# The upper tail of restarts ---------------------------------------------------


def expected_max(values, n):
  """E[max of n draws, with replacement, from the sample ``values``].

  With x_(1) <= ... <= x_(m) sorted, the max of n draws is <= x_(k) with
  probability (k/m)^n, so

    E[max] = sum_k x_(k) [(k/m)^n - ((k-1)/m)^n].

  n = 1 gives the mean; n -> infinity the sample's maximum.
  """
  x = np.sort(np.asarray(values, np.float64))
  m = len(x)
  k = np.arange(m + 1) / m
  weights = np.diff(k ** n)
  return float(weights @ x)


def compare(a, b, num_permutations=10_000, num_resamples=10_000, seed=0):
  """Every test of the module for samples a and b, as results.json's
  ``tests``."""
  welch = welch_t_test(a, b)
  permutation = permutation_test(a, b, num_permutations, seed)
  ks = ks_test(a, b, num_permutations, seed)
  return {
      "mean_difference": permutation["difference"],
      "mean_difference_ci95": bootstrap_difference_interval(
          a, b, num_resamples, seed=seed),
      "welch_t": welch["t"],
      "welch_df": welch["df"],
      "welch_p": welch["p"],
      "permutation_p": permutation["p"],
      "ks_statistic": ks["statistic"],
      "ks_p": ks["p"],
      "num_permutations": num_permutations,
  }


def summary(values, num_resamples=10_000, seed=0):
  """mean, std (ddof=0), 95% bootstrap interval of the mean, count."""
  return {"mean": mean(values), "std": std(values),
          "mean_ci95": bootstrap_interval(values, num_resamples=num_resamples,
                                          seed=seed),
          "count": len(values)}
