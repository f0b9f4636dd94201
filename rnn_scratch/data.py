"""The binary echo task, its batching, and its analytic expected losses.

The series (R2RT's toy problem):

  X_t ~ Bernoulli(0.5)
  P(Y_t = 1 | X) = 0.5 + 0.5 * X_{t-3} - 0.25 * X_{t-8}

so Y "echoes" the input 3 steps back (strongly) and 8 steps back (weakly,
and the other way). A model that sees neither dependency can at best predict
the marginal P(Y=1); one that has learned the t-3 echo does better; one that
has learned both does best. Those three cross-entropies are the yardsticks
the training curve is read against.
"""
import itertools

import numpy as np

BASE_PROBABILITY = 0.5
# lag -> change in P(Y_t = 1) when X_{t-lag} = 1
ECHO_DEPENDENCIES = {3: 0.5, 8: -0.25}


def probability_of_one(x):
  """P(Y_t = 1) for every t of the input series x (int array, shape (T,))."""
  probability = np.full(x.shape, BASE_PROBABILITY)
  for lag, effect in ECHO_DEPENDENCIES.items():
    probability[lag:] += effect * x[:-lag]
  return probability


def generate_series(length, rng):
  """Draws one echo series.

  Args:
    length: number of time steps T.
    rng: a ``numpy.random.Generator``.
  Returns:
    x, y: int32 arrays of shape (T,) with values in {0, 1}.
  """
  x = rng.integers(0, 2, size=length)
  y = rng.random(length) < probability_of_one(x)
  return x.astype(np.int32), y.astype(np.int32)


def windows(x, y, batch_size, bptt_steps):
  """Splits a series into ``batch_size`` parallel rows and cuts the rows into
  windows (the post's ``gen_batch``).

  The series is cut into batch_size contiguous rows (row r holds steps
  r*L .. (r+1)*L - 1, L = T // batch_size), and each row into consecutive
  windows of bptt_steps. Window i of every row continues exactly where window
  i-1 stopped, which is what lets the final RNN state of one window serve as
  the initial state of the next (truncated backprop). Steps that do not fill
  a whole row or window are dropped, as in the post.

  Returns:
    x_windows, y_windows: int32 arrays (num_windows, batch_size, bptt_steps);
    [i] is window i for every row at once.
  """
  row_length = len(x) // batch_size
  num_windows = row_length // bptt_steps

  def cut(series):
    rows = series[:batch_size * row_length].reshape(batch_size, row_length)
    rows = rows[:, :num_windows * bptt_steps]
    return np.ascontiguousarray(
        rows.reshape(batch_size, num_windows, bptt_steps).transpose(1, 0, 2),
        dtype=np.int32)

  return cut(x), cut(y)


def windows_per_epoch(series_length, batch_size, bptt_steps):
  return (series_length // batch_size) // bptt_steps


def binary_entropy(p):
  """H(p) = -p ln p - (1-p) ln(1-p) in nats, with 0 ln 0 = 0."""
  p = np.asarray(p, dtype=np.float64)
  with np.errstate(divide="ignore", invalid="ignore"):
    terms = -p * np.log(p) - (1 - p) * np.log(1 - p)
  return np.where((p == 0) | (p == 1), 0.0, terms)


def expected_cross_entropy(known_lags):
  """Expected loss of the best predictor that knows only ``known_lags``.

  The relevant inputs X_{t-3}, X_{t-8} take each of their 4 joint values with
  probability 1/4. A predictor that sees a subset of them can do no better
  than predict q = E[p | what it sees]; its expected cross-entropy is then
  E[-p ln q - (1-p) ln(1-q)] = E[H(q)], averaged over what it sees.

  Args:
    known_lags: the lags (subset of ECHO_DEPENDENCIES) the predictor knows.
  Returns:
    The expected cross-entropy in nats per step.
  """
  lags = sorted(ECHO_DEPENDENCIES)
  groups = {}
  for values in itertools.product((0, 1), repeat=len(lags)):
    p = BASE_PROBABILITY + sum(ECHO_DEPENDENCIES[lag] * value
                               for lag, value in zip(lags, values))
    seen = tuple(value for lag, value in zip(lags, values)
                 if lag in known_lags)
    groups.setdefault(seen, []).append(p)
  # Every group holds equally likely configurations, and the groups are
  # equally likely too, so plain means are the expectations.
  return float(np.mean([binary_entropy(np.mean(ps)) for ps in groups.values()]))


def expected_losses():
  """The three yardsticks: no dependency, only t-3, both (≈0.66, 0.52, 0.45)."""
  return {
      "no_dependency": expected_cross_entropy(()),
      "first_dependency": expected_cross_entropy((3,)),
      "both_dependencies": expected_cross_entropy((3, 8)),
  }
