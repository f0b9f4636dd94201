"""The equivalence harness: how every package proves its hand-written pieces.

A hand-written component is held to a REFERENCE that computes the same
function from the same weights:

  * a Keras twin (each package's reference.py) holding copies of our weights;
  * where no Keras twin exists, central finite differences (gradients) and
    NumPy (values);

and three things are compared, by name:

  forward     every output (logits, states, moving statistics ...);
  gradients   with respect to EVERY variable and every input or state tensor;
  steps       K optimizer steps, the reference side using ``keras.optimizers``
              (never ours), at Keras' default hyperparameters and others.

Everything runs in float64, so the tolerances can be tight:

  FLOAT64 (rtol 1e-10, atol 1e-12): two float64 evaluations of one formula
    that differ only in the order of their additions agree to about 1e-15
    relative per operation; the small nets here chain a few hundred
    operations, and 1e-10 still sits orders of magnitude below the error
    of a wrong formula (Adam's epsilon inside the root instead of outside,
    a missing epsilon, an unbiased variance: 1e-7 and up). It even sees a
    constant rounded through float32: Keras starts Adagrad's accumulators
    at float32(0.1), and a float64 0.1 differs by 1e-10 after one step.
  FINITE_DIFFERENCE_RTOL (1e-7, on ||g - g_fd|| / ||g_fd||): a central
    difference with step h = 1e-6 has a truncation error of order
    h^2 |f'''| ~ 1e-12 and a rounding error of order 1e-16 |f| / h ~ 1e-10
    |f|; 1e-7 leaves room for both on the losses here (|f| up to ~100).
    A gradient far smaller than |f| is checked against the rounding floor
    instead: FINITE_DIFFERENCE_ROUNDING |f| per element (1e-9, about four
    float64 epsilons divided by the step), and must stand 100 times above it.
  FINITE_DIFFERENCE_STEPS (rtol 1e-6, atol 1e-8): steps whose reference
    applies central-difference gradients move the weights by those
    gradients' ~1e-8 relative error too.

The checks are plain functions raising AssertionError, so the same checks run
in the test suite and in ``make exercise`` against a learner's file.
"""
import contextlib
import functools
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf



class Tolerance(NamedTuple):
  rtol: float
  atol: float


FLOAT64 = Tolerance(rtol=1e-10, atol=1e-12)
FINITE_DIFFERENCE_STEP = 1e-6
FINITE_DIFFERENCE_RTOL = 1e-7
FINITE_DIFFERENCE_ROUNDING = 1e-9  # ~4 float64 epsilons / step, times |f|
# Steps whose reference applies central-difference gradients inherit their
# ~1e-8 relative error: after K steps the weights agree to about that.
FINITE_DIFFERENCE_STEPS = Tolerance(rtol=1e-6, atol=1e-8)
STEPS = 3  # K: optimizer steps compared, each after the previous one
# A gradient or a step smaller than this everywhere would make its check
# vacuous (0 == 0), so the checks require at least this much somewhere.
NONTRIVIAL = 1e-6

# Each optimizer at Keras' defaults, then at others, so that a constant
# written into an update instead of its hyperparameter fails (also the cases
# of tests/test_optimizers.py, which proves the optimizers on their own).
OPTIMIZER_CASES = {
    "sgd": [{"learning_rate": 0.1}, {"learning_rate": 0.37}],
    "adagrad": [{"learning_rate": 0.1},
                {"learning_rate": 0.2, "initial_accumulator_value": 0.5,
                 "epsilon": 1e-3}],
    "adam": [{"learning_rate": 0.01},
             {"learning_rate": 0.03, "beta_1": 0.5, "beta_2": 0.9,
              "epsilon": 1e-2}],
}
KERAS_OPTIMIZERS = {"sgd": keras.optimizers.SGD,
                    "adagrad": keras.optimizers.Adagrad,
                    "adam": keras.optimizers.Adam}


def assert_close(name, actual, expected, tolerance=FLOAT64):
  """Same shape, float64, and equal to ``tolerance``; ``name`` in the message."""
  actual, expected = np.asarray(actual), np.asarray(expected)
  if actual.shape != expected.shape:
    raise AssertionError(f"{name}: shape {actual.shape}, reference "
                         f"{expected.shape}")
  for side, value in (("ours", actual), ("reference", expected)):
    if value.dtype != np.float64:
      raise AssertionError(f"{name}: {side} is {value.dtype}, not float64")
  excess = np.abs(actual - expected) - (tolerance.atol + tolerance.rtol *
                                        np.abs(expected))
  if not np.all(excess <= 0):  # NaN counts as a difference too
    worst = np.unravel_index(np.nanargmax(np.where(np.isnan(excess), np.inf,
                                                   excess)), excess.shape)
    raise AssertionError(
        f"{name}: {np.sum(~(excess <= 0))} of {excess.size} values differ "
        f"beyond rtol {tolerance.rtol:g}, atol {tolerance.atol:g}; the worst"
        f"{' at ' + str(tuple(map(int, worst))) if worst else ''}: ours "
        f"{float(actual[worst])!r}, reference {float(expected[worst])!r}")


def assert_forward(ours, reference, tolerance=FLOAT64):
  """Compares two dicts of outputs, name by name (same names required)."""
  if sorted(ours) != sorted(reference):
    raise AssertionError(f"outputs {sorted(ours)} vs {sorted(reference)}")
  for name in ours:
    assert_close(name, ours[name], reference[name], tolerance)


def gradients(loss_fn, sources):
  """d loss_fn() / d source for each named source (variable or tensor).

  Tensors are watched; a source the loss does not reach is an error, not a
  zero.
  """
  with tf.GradientTape() as tape:
    for value in sources.values():
      if isinstance(value, tf.Tensor):  # variables are watched already
        tape.watch(value)
    loss = loss_fn()
  result = tape.gradient(loss, sources)
  missing = [name for name, value in result.items() if value is None]
  if missing:
    raise AssertionError(f"no gradient reaches {missing}")
  return {name: tf.convert_to_tensor(value).numpy()
          for name, value in result.items()}


def assert_gradients(ours_loss, ours_sources, reference_loss,
                     reference_sources, tolerance=FLOAT64):
  """The gradient of each loss with respect to each named source, equal.

  Args:
    ours_loss, reference_loss: functions of no argument returning a scalar.
    ours_sources, reference_sources: {name: variable or tensor}, same names.
  Returns:
    Our gradients, {name: array}.
  """
  if sorted(ours_sources) != sorted(reference_sources):
    raise AssertionError(f"sources {sorted(ours_sources)} vs "
                         f"{sorted(reference_sources)}")
  ours = gradients(ours_loss, ours_sources)
  theirs = gradients(reference_loss, reference_sources)
  for name in ours:
    assert_nontrivial(f"gradient of {name}", theirs[name])
    assert_close(f"gradient of {name}", ours[name], theirs[name], tolerance)
  return ours


def assert_same_loss(ours, reference, logits, labels):
  """ours(logits, labels) and reference(labels, logits) (a keras.losses
  object's argument order): equal values, equal gradients w.r.t. the
  logits."""
  assert_forward({"loss": ours(logits, labels)},
                 {"loss": reference(labels, logits)})
  assert_gradients(lambda: ours(logits, labels), {"logits": logits},
                   lambda: reference(labels, logits), {"logits": logits})


def assert_nontrivial(name, value):
  if not np.max(np.abs(value)) > NONTRIVIAL:
    raise AssertionError(f"{name} is ~0 everywhere: the check would be empty")


def central_difference_gradient(f, x, step=FINITE_DIFFERENCE_STEP):
  """(f(x + h e_i) - f(x - h e_i)) / 2h for every element i of x (float64).

  Args:
    f: maps a float64 array shaped like x to a scalar.
  """
  x = np.array(x, np.float64)
  gradient = np.zeros_like(x)
  for index in np.ndindex(x.shape):
    original = x[index]
    x[index] = original + step
    above = float(f(x))
    x[index] = original - step
    below = float(f(x))
    x[index] = original
    gradient[index] = (above - below) / (2 * step)
  return gradient


def assert_matches_finite_differences(name, gradient, f, x,
                                      rtol=FINITE_DIFFERENCE_RTOL):
  """||gradient - g_fd|| <= rtol ||g_fd||, g_fd the central differences of f
  at x."""
  expected = central_difference_gradient(f, x)
  assert_nontrivial(f"finite-difference gradient of {name}", expected)
  gradient = np.asarray(gradient)
  if gradient.dtype != np.float64:
    raise AssertionError(f"gradient of {name} is {gradient.dtype}")
  error = np.linalg.norm(gradient - expected) / np.linalg.norm(expected)
  if not error <= rtol:
    raise AssertionError(f"gradient of {name}: relative error {error:.3g} "
                         f"against central differences (> {rtol})")


@functools.lru_cache(maxsize=None)
def _compiled(loss_fn):
  return tf.function(loss_fn)


def finite_difference_gradients(loss_fn, variables):
  """{name: central-difference gradient} of loss_fn() with respect to each
  named tf.Variable, moving one element at a time (restored after)."""
  result = {}
  if sum(np.size(v) for v in variables.values()) > 50:
    # Tracing costs ~0.3 s, an eager evaluation ~1 ms: worth it for many.
    loss_fn = _compiled(loss_fn)
  for name, variable in variables.items():
    start = variable.numpy()

    def f(value, variable=variable):
      variable.assign(value)
      return loss_fn().numpy()

    result[name] = central_difference_gradient(f, start)
    variable.assign(start)
  return result


def assert_gradients_match_finite_differences(loss_fn, variables):
  """Our gradient (tf.GradientTape) of loss_fn() with respect to each named
  float64 tf.Variable (weights, and inputs held in variables) against central
  differences, name by name. Returns our gradients."""
  ours = gradients(loss_fn, variables)
  expected = finite_difference_gradients(loss_fn, variables)
  scale = max(1.0, abs(float(loss_fn())))
  for name, gradient in ours.items():
    error = np.linalg.norm(gradient - expected[name])
    # The differences' rounding error, summed over the elements in norm.
    rounding = FINITE_DIFFERENCE_ROUNDING * scale * np.sqrt(gradient.size)
    size = np.linalg.norm(expected[name])
    if not size > 100 * rounding:
      raise AssertionError(f"gradient of {name} ({size:.3g}) is lost in the "
                           "finite differences' rounding: the check would be "
                           "empty")
    if not error <= FINITE_DIFFERENCE_RTOL * size + rounding:
      raise AssertionError(
          f"gradient of {name}: relative error {error / size:.3g} against "
          f"central differences (> {FINITE_DIFFERENCE_RTOL} + rounding)")
  return ours


def finite_difference_step(loss_fn, variables, optimizer):
  """A reference step: ``optimizer`` (from ``keras_optimizer``, built for
  ``variables.values()`` in that order) applied to the central-difference
  gradients of loss_fn(); returns the loss before the step."""
  loss = loss_fn()
  estimated = finite_difference_gradients(loss_fn, variables)
  optimizer.apply([tf.constant(estimated[name]) for name in variables])
  return loss


def assert_optimizer_steps(ours_step, reference_step, ours_variables,
                           reference_variables, steps=STEPS,
                           tolerance=FLOAT64):
  """Takes ``steps`` steps on each side; after each, every named variable
  (weights, moving statistics, carried states ...) must agree, and so must
  whatever the steps return (losses). The steps must move the weights.

  Args:
    ours_step, reference_step: step(k) -> loss (or None), for k = 0, 1, ...
    ours_variables, reference_variables: {name: tf.Variable}, same names.
  """
  if sorted(ours_variables) != sorted(reference_variables):
    raise AssertionError(f"variables {sorted(ours_variables)} vs "
                         f"{sorted(reference_variables)}")
  start = {name: v.numpy() for name, v in reference_variables.items()}
  for k in range(steps):
    ours_loss, reference_loss = ours_step(k), reference_step(k)
    if reference_loss is not None:
      assert_close(f"loss of step {k + 1}", ours_loss, reference_loss,
                   tolerance)
    for name, variable in ours_variables.items():
      assert_close(f"{name} after step {k + 1}", variable,
                   reference_variables[name], tolerance)
  moved = max(np.max(np.abs(reference_variables[name].numpy() - value))
              for name, value in start.items())
  assert_nontrivial(f"the change of the variables over {steps} steps", moved)


def keras_optimizer(name, hyperparameters, variables):
  """``keras.optimizers.<name>(**hyperparameters)`` built for ``variables``,
  behind our optimizers' ``apply(gradients)`` call."""
  optimizer = KERAS_OPTIMIZERS[name](**hyperparameters)
  variables = list(variables)
  optimizer.build(variables)

  class Apply:
    def apply(self, gradients):
      optimizer.apply_gradients(zip(gradients, variables))

  return Apply()


@contextlib.contextmanager
def _temporarily(get, set_to, value):
  previous = get()
  set_to(value)
  try:
    yield
  finally:
    set_to(previous)


@contextlib.contextmanager
def keras_floatx(dtype="float64"):
  """Keras layers built inside take ``dtype`` as their default (variables and
  computation), so reference.py's twins are built in float64 unchanged.

  Both settings are needed: a layer takes its dtype from the global dtype
  POLICY, which Keras creates from floatx the first time any layer asks and
  then keeps; so once an earlier test has built a float32 layer, changing
  floatx alone changes nothing.
  """
  # The policy first: asked for while none is set, Keras makes one from
  # the floatx of that moment, which must still be the old one.
  with _temporarily(keras.config.dtype_policy, keras.config.set_dtype_policy,
                    dtype), \
      _temporarily(keras.config.floatx, keras.config.set_floatx, dtype):
    yield


def functions_run_eagerly():
  """Every tf.function called inside runs as plain Python, untraced.

  Tracing a training loop takes seconds (a Keras RNN's most of all) while
  the K steps compared here take milliseconds; each package's own tests
  prove its compiled loop equal to the same steps run eagerly.
  """
  return _temporarily(tf.config.functions_run_eagerly,
                      tf.config.run_functions_eagerly, True)
