"""Exercise 5 (squash): running a sigmoid layer backwards.

Replace each ``raise NotImplementedError`` with the formula in its
docstring, then check your functions (float64): values against NumPy,
gradients against central finite differences:

    make exercise NAME=squash

The package's own version is inversion/model.py, where the learned inverse
uses them to undo the classifier's sigmoids.
"""
import tensorflow as tf  # noqa: F401  (you will need it)


def logit(p):
  """The inverse of the sigmoid, element-wise: log(p / (1 - p)).

  Finite for 0 < p < 1. (Tip: log(p) - log1p(-p) is the same value without
  rounding 1 - p first.)
  """
  raise NotImplementedError


def squash(p):
  """Rescales each row of p (one row per example) into [0.005, 0.995]:

    shifted = p - min(row)               now in [0, max(row) - min(row)]
    scaled  = shifted / max(shifted)     now in [0, 1]
    squash  = (scaled - 0.5) * 0.99 + 0.5

  so that logit(squash(p)) is finite. A constant row (max(shifted) = 0)
  must map to 0.5 everywhere, with a finite gradient: tf.where evaluates
  both branches, so keep the discarded one from dividing by 0 too.

  Args:
    p: (batch, n).
  Returns:
    (batch, n).
  """
  raise NotImplementedError
