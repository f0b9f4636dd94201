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

  if not tf.config.functions_run_eagerly():  # --run_eagerly: nothing traced
    train_steps.get_concrete_function()
  return train_steps


def ordered_indices(step, batch_size, count):
  """The indices of batch ``step`` when ``count`` examples are walked in
  order, wrapping at the end: step*B .. step*B + B - 1, modulo ``count``
  (``tfscratch.nn.ordered_batch`` as graph ops, for data held in the graph
  and a step that is a tensor). int64, because step * B passes 2**31 in a
  long run with large batches."""
  start = tf.cast(step, tf.int64) * batch_size % count
  return (start + tf.range(batch_size, dtype=tf.int64)) % count


def compile_walk(step, arrays, batch_size):
  """``compile_steps`` over the blogs' ordered walk through a data set.

  Args:
    step: ``step(*batch) -> loss``, plain Python run inside the graph, where
      ``batch`` holds batch i of each of ``arrays``.
    arrays: same-length arrays or tensors (images, labels, ...), held in the
      graph once, so that no step waits for data from Python.
    batch_size: B, at most the length of the arrays.
  Returns:
    ``train_steps(first_step, num_steps) -> losses``: step i trains on rows
    i*B .. i*B + B - 1 (modulo the length) of each array.
  """
  arrays = [tf.convert_to_tensor(array) for array in arrays]
  count = arrays[0].shape[0]

  def one_step(i):
    indices = ordered_indices(i, batch_size, count)
    return step(*[tf.gather(array, indices) for array in arrays])

  return compile_steps(one_step)


def trace_counts(**functions):
  """How many times each compiled function was traced, by name (1 is the
  goal: a second trace means a call changed its input signature)."""
  return {name: function.experimental_get_tracing_count()
          for name, function in functions.items()}
