"""Training in the graph: K steps per call, not one.

A training step on these small networks is a few milliseconds of work spread
over some tens of ops. Called once per step from Python, the core idles
between steps while Python prepares the next call and reads the loss back
(a host sync). ``compile_steps`` moves the loop itself into the graph::

  for k in tf.range(num_steps):          # AutoGraph turns this into a
    losses[k] = step(first_step + k)     # tf.while_loop: no Python inside

so Python is entered once per K steps, where the program logs anyway. The
function has a fixed input signature (two int32 scalars), so it is traced
once and reused for every call, whatever K is.

Inside the loop, TensorFlow orders the stateful ops (variable reads and
updates) of one iteration before those of the next, exactly as K separate
calls would: the weights after ``train_steps(0, 35)`` equal those after 35
calls of one step (tests check this per experiment), bit for bit as long as
the step's own arithmetic is done in the same order. One catch: where a
gradient is a sum of three or more terms, TensorFlow's graph optimiser
(Grappler) may add them in another order inside a loop body than in a
stand-alone function, so float32 results can differ in the last bit. Where
bit-identity with one-step calls matters, wrap the step itself in a
``tf.function``: the loop then calls it as one unit, optimised as it would
be alone (``inversion/train.py`` does this).
"""
import tensorflow as tf


def compile_steps(step, loss_dtype=tf.float32):
  """Compiles ``step`` into a loop that runs many steps per call.

  Args:
    step: a Python function ``step(i) -> loss`` that takes training step
      ``i`` (an int32 scalar tensor, counting from 0) and updates the model
      (it typically gathers batch ``i`` from data held in the graph, then
      takes one gradient step). It runs inside the graph, so it must use
      TensorFlow ops only.
      ``loss`` is a scalar, or a vector of several numbers per step (a loss
      and its parts).
    loss_dtype: the dtype of what ``step`` returns.
  Returns:
    ``train_steps(first_step, num_steps) -> losses (num_steps, ...)``: takes
    steps ``first_step .. first_step + num_steps - 1`` and returns the loss of
    each. Traced here, once, so the first call costs no more than the others
    (and the progress lines' rates stay true).
  """

  @tf.function(input_signature=[tf.TensorSpec([], tf.int32),
                                tf.TensorSpec([], tf.int32)])
  def train_steps(first_step, num_steps):
    losses = tf.TensorArray(loss_dtype, size=num_steps)
    for k in tf.range(num_steps):
      losses = losses.write(k, step(first_step + k))
    return losses.stack()

  train_steps.get_concrete_function()
  return train_steps


def trace_counts(**functions):
  """How many times each compiled function was traced, by name (1 is the
  goal: a second trace means a call changed its input signature)."""
  return {name: function.experimental_get_tracing_count()
          for name, function in functions.items()}
