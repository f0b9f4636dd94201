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

import numpy as np
import tensorflow as tf

from tfscratch.nn import summed_cross_entropy

NUM_CLASSES = 10

_VECTOR = tf.TensorSpec([None], tf.float64)


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


@tf.function(input_signature=[
    _VECTOR, tf.TensorSpec([None, None], tf.float64),
    tf.TensorSpec([None], tf.int64), tf.TensorSpec([], tf.float64)])
def objective_and_gradient(theta, features, labels, inverse_c):
  """objective / n and its gradient with respect to the flat parameters.

  Traced once for every feature size: the shapes come from the tensors.

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


@tf.function(input_signature=[
    _VECTOR, tf.TensorSpec([None, None], tf.float64),
    tf.TensorSpec([None], tf.int64), tf.TensorSpec([], tf.float64)])
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


@tf.function(input_signature=[_VECTOR, tf.TensorSpec([None, None], tf.float64),
                              tf.TensorSpec([None, None], tf.float64)])
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


def minimize_lbfgs(function, theta, tolerance=1e-8, max_iterations=20_000,
                   history_size=10):
  """Minimises a smooth convex function with L-BFGS and a backtracking
  (Armijo) line search.

  Args:
    function: theta -> (value, gradient), float64 tensors.
    theta: the starting point (p,).
    tolerance: stop when max |gradient| <= tolerance.
    max_iterations: stop after this many iterations, converged or not.
    history_size: how many recent steps shape the Hessian estimate.
  Returns:
    (theta, FitResult).
  """
  theta = tf.convert_to_tensor(theta, tf.float64)
  value, gradient = function(theta)
  steps = gradient_changes = tf.zeros([0, theta.shape[0]], tf.float64)
  iteration = 0
  while True:
    gradient_norm = float(tf.reduce_max(tf.abs(gradient)))
    if gradient_norm <= tolerance or iteration == max_iterations:
      break
    direction = lbfgs_direction(gradient, steps, gradient_changes)
    slope = float(_dot(gradient, direction))
    # Without history the direction is -g: keep the first step modest.
    step = 1.0 if iteration else min(1.0, 1.0 / gradient_norm)
    while True:
      new_theta = theta + step * direction
      new_value, new_gradient = function(new_theta)
      # Sufficient decrease: at least 1e-4 of what the slope promises.
      if float(new_value - value) <= 1e-4 * step * slope:
        break
      # Near the minimum the decrease drowns in float64 rounding of the
      # value; then let the gradient, still exact enough, judge the step.
      if (abs(float(new_value - value)) <= 1e-14 * abs(float(value)) and
          float(tf.reduce_max(tf.abs(new_gradient))) < gradient_norm):
        break
      step *= 0.5
      if step < 1e-20:  # no decrease left to find in float64
        return theta, FitResult(False, iteration, float(value), gradient_norm)
    s, y = new_theta - theta, new_gradient - gradient
    # s.y > 0 always holds for a strictly convex function; the check keeps
    # the estimate positive definite if rounding ever says otherwise.
    if float(_dot(s, y)) > 1e-16 * float(_dot(y, y)):
      steps = tf.concat([steps, s[None]], axis=0)[-history_size:]
      gradient_changes = tf.concat([gradient_changes, y[None]],
                                   axis=0)[-history_size:]
    theta, value, gradient = new_theta, new_value, new_gradient
    iteration += 1
  return theta, FitResult(gradient_norm <= tolerance, iteration, float(value),
                          gradient_norm)


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
    features = tf.cast(features, tf.float64)
    labels = tf.cast(labels, tf.int64)
    inverse_c = tf.constant(1.0 / self.C, tf.float64)
    theta = tf.concat([tf.reshape(self.W, [-1]), self.b], axis=0)
    function = OBJECTIVES[self.objective]
    theta, result = minimize_lbfgs(
        lambda t: function(t, features, labels, inverse_c),
        theta, tolerance, max_iterations)
    weights, bias = _unflatten(theta, self.W.shape[0])
    self.W.assign(weights)
    if self.objective == "multinomial":
      bias -= tf.reduce_mean(bias)
    self.b.assign(bias)
    return result

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
