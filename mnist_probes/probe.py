"""A linear probe: multinomial logistic regression with an L2 penalty, solved
to convergence with L-BFGS, all written out by hand.

For features X (n, d) and labels y (n,) over K classes:

  p(k | x) = softmax(x W + b)_k                    W: (d, K)  b: (K,)
  objective(W, b) = sum_i -log p(y_i | x_i) + ||W||^2 / (2 C)

This is scikit-learn's ``LogisticRegression()`` default (multinomial loss,
L2 penalty, C = 1, intercept not penalised). The objective is convex, and
strictly convex in W, so W has one optimum; L-BFGS finds it, and we stop
only when the gradient is (numerically) zero. The features are fixed: a
probe reads a representation, it never changes it.

Two details:
- Adding the same constant to every b_k changes no probability, and b is not
  penalised, so b is unique only up to that shift. We report the one with
  mean(b) = 0; W and every prediction are unique.
- Like scikit-learn we minimise objective / n: the same minimiser, but a
  gradient tolerance that means the same thing for any n.

Everything is float64: a tolerance of 1e-8 on the gradient is far below
float32's resolution of a loss of order 1.

The blog ran the scikit-learn of 2016, whose ``LogisticRegression()`` default
was different: one-vs-rest (liblinear), K independent binary problems with
the intercept penalised like a weight,

  objective_k(w_k, b_k) = sum_i log(1 + exp(-s_ik (x_i w_k + b_k)))
                          + (||w_k||^2 + b_k^2) / (2 C)

with s_ik = +1 if y_i = k, else -1, predicting the k of the largest
x w_k + b_k. ``objective="ovr"`` fits that instead, so the blog's numbers can
be checked too.
"""
import dataclasses
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfscratch.nn import NUM_CLASSES, summed_cross_entropy


@dataclasses.dataclass(frozen=True)
class FitResult:
  """How a fit ended.

  Attributes:
    converged: the gradient reached the tolerance.
    iterations: L-BFGS iterations taken.
    objective: objective / n at the solution.
    gradient_norm: max |gradient of objective / n| at the solution.
  """
  converged: bool
  iterations: int
  objective: float
  gradient_norm: float


def _unflatten(theta, num_features):
  """theta = [W flattened row by row, b] -> W (d, K), b (K,)."""
  num_classes = tf.size(theta) // (num_features + 1)
  weights = tf.reshape(theta[:num_features * num_classes],
                       [num_features, num_classes])
  return weights, theta[num_features * num_classes:]


def objective_and_gradient(theta, features, labels, inverse_c):
  """objective / n and its gradient with respect to the flat parameters.

  Args:
    theta: (d*K + K,) W row by row, then b.
    features: (n, d). labels: (n,) in [0, K).
    inverse_c: 1 / C, the strength of the penalty.
  """
  with tf.GradientTape() as tape:
    tape.watch(theta)
    weights, bias = _unflatten(theta, tf.shape(features)[1])
    log_loss = summed_cross_entropy(features @ weights + bias, labels)
    penalty = 0.5 * inverse_c * tf.reduce_sum(tf.square(weights))
    value = (log_loss + penalty) / tf.cast(tf.shape(features)[0], tf.float64)
  return value, tape.gradient(value, theta)


def ovr_objective_and_gradient(theta, features, labels, inverse_c):
  """The sum over k of the one-vs-rest objectives / n, and its gradient.

  The K problems share no parameter, so minimising their sum solves each.
  Arguments as for ``objective_and_gradient``.
  """
  with tf.GradientTape() as tape:
    tape.watch(theta)
    weights, bias = _unflatten(theta, tf.shape(features)[1])
    signs = 2.0 * tf.one_hot(labels, tf.size(bias), dtype=tf.float64) - 1.0
    log_loss = tf.reduce_sum(tf.math.softplus(
        -signs * (features @ weights + bias)))
    penalty = 0.5 * inverse_c * (tf.reduce_sum(tf.square(weights)) +
                                 tf.reduce_sum(tf.square(bias)))
    value = (log_loss + penalty) / tf.cast(tf.shape(features)[0], tf.float64)
  return value, tape.gradient(value, theta)


OBJECTIVES = {"multinomial": objective_and_gradient,
              "ovr": ovr_objective_and_gradient}


def _dot(u, v):
  return tf.tensordot(u, v, 1)


def _max_abs(vector):
  return tf.reduce_max(tf.abs(vector))


def lbfgs_direction(gradient, steps, gradient_changes):
  """-H g, H the L-BFGS estimate of the inverse Hessian (the two-loop
  recursion, Nocedal & Wright, Algorithm 7.4).

  Args:
    gradient: g, (p,).
    steps: (m, p) the last m steps s_i = theta_{i+1} - theta_i, oldest first.
    gradient_changes: (m, p) the matching y_i = g_{i+1} - g_i.
  """
  count = tf.shape(steps)[0]
  rhos = 1.0 / tf.reduce_sum(steps * gradient_changes, axis=1)
  alphas = tf.TensorArray(tf.float64, size=count)
  q = gradient
  for i in tf.range(count - 1, -1, -1):  # newest to oldest
    alpha = rhos[i] * _dot(steps[i], q)
    q -= alpha * gradient_changes[i]
    alphas = alphas.write(i, alpha)
  if count > 0:
    # Scale by the curvature seen along the latest step (N&W eq. 7.20).
    q *= (_dot(steps[-1], gradient_changes[-1]) /
          _dot(gradient_changes[-1], gradient_changes[-1]))
  for i in tf.range(count):  # oldest to newest
    q += steps[i] * (alphas.read(i) - rhos[i] * _dot(gradient_changes[i], q))
  return -q


class Solution(NamedTuple):
  """What ``minimize_lbfgs`` returns: tensors, read on the host once."""
  theta: tf.Tensor
  converged: tf.Tensor
  iterations: tf.Tensor
  objective: tf.Tensor
  gradient_norm: tf.Tensor


def minimize_lbfgs(function, theta, tolerance=1e-8, max_iterations=20_000,
                   history_size=10):
  """Minimises a smooth convex function with L-BFGS and a backtracking
  (Armijo) line search.

  Written to run inside a ``tf.function``: AutoGraph turns each ``while``
  over tensors into a ``tf.while_loop`` and each ``if`` over tensors into a
  ``tf.cond``, so a whole fit is one call into the graph and the host reads
  nothing until it ends. (Under ``tf.config.run_functions_eagerly`` the same
  code runs as plain Python.) A ``tf.while_loop`` needs every loop variable
  to keep its shape, so the history is a fixed (history_size, p) buffer
  whose last ``count`` rows hold the recent steps, oldest first.

  Args:
    function: theta -> (value, gradient), float64 tensors.
    theta: the starting point (p,).
    tolerance: stop when max |gradient| <= tolerance.
    max_iterations: stop after this many iterations, converged or not.
    history_size: how many recent steps shape the Hessian estimate.
  Returns:
    A Solution.
  """
  theta = tf.convert_to_tensor(theta, tf.float64)
  tolerance = tf.cast(tolerance, tf.float64)
  value, gradient = function(theta)
  gradient_norm = _max_abs(gradient)
  steps = tf.zeros([history_size, tf.size(theta)], tf.float64)
  gradient_changes = tf.zeros_like(steps)
  count = tf.constant(0)
  iteration = tf.constant(0)
  stalled = tf.constant(False)  # the line search found no decrease
  while (gradient_norm > tolerance and iteration < max_iterations and
         not stalled):
    direction = lbfgs_direction(gradient, steps[history_size - count:],
                                gradient_changes[history_size - count:])
    slope = _dot(gradient, direction)
    # Without history the direction is -g: keep the first step modest.
    one = tf.constant(1.0, tf.float64)
    step = tf.where(iteration > 0, one, tf.minimum(one, 1.0 / gradient_norm))
    new_theta, new_value, new_gradient = theta, value, gradient
    accepted = tf.constant(False)
    while not accepted and not stalled:
      new_theta = theta + step * direction
      new_value, new_gradient = function(new_theta)
      change = new_value - value
      # Sufficient decrease: at least 1e-4 of what the slope promises. Near
      # the minimum the decrease drowns in float64 rounding of the value;
      # then let the gradient, still exact enough, judge the step.
      accepted = (change <= 1e-4 * step * slope or
                  (tf.abs(change) <= 1e-14 * tf.abs(value) and
                   _max_abs(new_gradient) < gradient_norm))
      if not accepted:
        step *= 0.5
        stalled = step < 1e-20  # no decrease left to find in float64
    if not stalled:
      s, y = new_theta - theta, new_gradient - gradient
      # s.y > 0 always holds for a strictly convex function; the check keeps
      # the estimate positive definite if rounding ever says otherwise.
      if _dot(s, y) > 1e-16 * _dot(y, y):
        steps = tf.concat([steps[1:], s[None]], axis=0)
        gradient_changes = tf.concat([gradient_changes[1:], y[None]], axis=0)
        count = tf.minimum(count + 1, history_size)
      theta, value, gradient = new_theta, new_value, new_gradient
      gradient_norm = _max_abs(gradient)
      iteration += 1
  return Solution(theta, gradient_norm <= tolerance, iteration, value,
                  gradient_norm)


def _compile_fit(objective):
  """``minimize_lbfgs`` of ``objective`` as ONE tf.function.

  The data are arguments, not captured constants, and every dimension of
  the signature is None: one trace serves every feature size, sample count
  and penalty (``trace_counts`` reports 1).
  """

  @tf.function(input_signature=[
      tf.TensorSpec([None], tf.float64),          # theta: where to start
      tf.TensorSpec([None, None], tf.float64),    # features (n, d)
      tf.TensorSpec([None], tf.int64),            # labels (n,)
      tf.TensorSpec([], tf.float64),              # 1 / C
      tf.TensorSpec([], tf.float64),              # tolerance
      tf.TensorSpec([], tf.int32)])               # max_iterations
  def fit(theta, features, labels, inverse_c, tolerance, max_iterations):

    def objective_at(point):
      return objective(point, features, labels, inverse_c)

    return minimize_lbfgs(objective_at, theta, tolerance, max_iterations)

  return fit


# One compiled solver per objective, shared by every probe of the process.
COMPILED_FITS = {name: _compile_fit(objective)
                 for name, objective in OBJECTIVES.items()}


class LogisticRegression(tf.Module):
  """The probe: p(k | x) = softmax(x W + b)_k, fitted by ``fit``.

  Args:
    num_features: d.
    num_classes: K.
    C: inverse strength of the L2 penalty ||W||^2 / (2 C) (scikit-learn's C).
    objective: "multinomial" (today's scikit-learn default) or "ovr" (its
      2016 default, which the blog used); see the module docstring.
  """

  def __init__(self, num_features, num_classes=NUM_CLASSES, C=1.0,
               objective="multinomial", name=None):
    super().__init__(name=name)
    if objective not in OBJECTIVES:
      raise ValueError(f"objective must be one of {sorted(OBJECTIVES)}")
    self.C = C
    self.objective = objective
    self.W = tf.Variable(tf.zeros([num_features, num_classes], tf.float64),
                         name="W")
    self.b = tf.Variable(tf.zeros([num_classes], tf.float64), name="b")

  def fit(self, features, labels, tolerance=1e-8, max_iterations=20_000):
    """Minimises the objective from the current W, b (zeros when new).

    Args:
      features: (n, d) any float dtype. labels: (n,) ints in [0, K).
      tolerance: on max |gradient of objective / n|.
    Returns:
      A FitResult; W and b hold the solution (for "multinomial", the b with
      mean 0).
    """
    theta = tf.concat([tf.reshape(self.W, [-1]), self.b], axis=0)
    solution = COMPILED_FITS[self.objective](
        theta, tf.cast(features, tf.float64), tf.cast(labels, tf.int64),
        tf.constant(1.0 / self.C, tf.float64),
        tf.constant(tolerance, tf.float64), tf.constant(max_iterations))
    weights, bias = _unflatten(solution.theta, self.W.shape[0])
    self.W.assign(weights)
    if self.objective == "multinomial":
      bias -= tf.reduce_mean(bias)
    self.b.assign(bias)
    return FitResult(bool(solution.converged), int(solution.iterations),
                     float(solution.objective),
                     float(solution.gradient_norm))

  def __call__(self, features):
    """The logits x W + b, (n, K) float64."""
    return tf.cast(features, tf.float64) @ self.W + self.b

  def predict_proba(self, features):
    """p(k | x): the softmax, or for "ovr" scikit-learn's normalised
    sigmoids."""
    if self.objective == "ovr":
      probabilities = tf.sigmoid(self(features))
      return probabilities / tf.reduce_sum(probabilities, axis=1,
                                           keepdims=True)
    return tf.nn.softmax(self(features))

  def predict(self, features):
    return tf.argmax(self(features), axis=1)

  def accuracy(self, features, labels):
    """The fraction of ``labels`` predicted right."""
    return float(np.mean(self.predict(features).numpy() == np.asarray(labels)))
