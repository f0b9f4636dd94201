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

Which rows batch i holds: ``ordered_indices`` walks the data in file order
(``compile_walk``); ``shuffled_indices`` (and ``ShuffledBatches``, which
draws each epoch's permutation once) walks it as the 2016 posts' ``mnist.train.next_batch`` did: file order for the
first epoch, then a new permutation each epoch.
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


def shuffled_indices(step, batch_size, count, seed):
  """The indices of batch ``step`` drawn as the 2016 posts'
  ``mnist.train.next_batch(batch_size)`` drew them, as graph ops.

  The posts read MNIST with Google's tutorial reader of the time
  (TensorFlow's ``input_data.py``, copied as ``notebooks/load_mnist.py`` in
  github.com/spitis/r2rt, the posts' repository). Its
  ``DataSet.next_batch`` kept a cursor into the data and, when a batch
  would run past the end, shuffled the data and started again at 0::

    start = index; index += B
    if index > N:                      # this batch would run past the end
      shuffle the data; start = 0; index = B
    return data[start:index]

  So, with E = N // B full batches per epoch:

    epoch 0 (steps 0 .. E-1)      the data in file order: batch j holds
                                  rows jB .. jB + B - 1 (no shuffle yet);
    epoch e >= 1                  rows order_e[jB .. jB + B - 1], where
                                  order_e is a fresh random permutation;
    step s                        epoch s // E, batch j = s % E;

  and the last N - E*B rows of each epoch's order are never used (40 per
  epoch for MNIST's 55,000 training images in batches of 60). (In 2017,
  after the posts, TensorFlow changed ``next_batch`` to shuffle before the
  first epoch too and to fill the last batch of an epoch with the start of
  the next: pull request tensorflow/tensorflow#7071.)

  TF1 permuted the already permuted data again each epoch; a composition of
  uniform random permutations is uniform, so drawing each epoch's order
  afresh has the same distribution. It is drawn with a stateless op whose
  seed depends only on ``seed`` and the epoch, so no state is kept between
  steps: any step can be computed on its own, the same seed gives the same
  walk, and a later stage can continue the walk where an earlier one
  stopped (``step`` counts on). The numbers cannot match the posts' bit for
  bit: their shuffles came from NumPy's unseeded global generator.

  Args:
    step: int32 or int64 scalar (a tensor inside a compiled loop), from 0.
    batch_size: B, a Python int, 1 <= B <= count.
    count: N, the number of examples (a Python int).
    seed: shape-[2] integer seed (as for every ``tf.random.stateless_*``
      op); epoch e's order is ``stateless_shuffle(range(N))`` with seed
      ``stateless_fold_in(seed, e)``, all int64. Use a pair no other
      stateless op of the run uses.
  Returns:
    int64 (B,): the rows of batch ``step``.
  Raises:
    ValueError: B is not in [1, N] (TF1 asserted the same).
  """
  epoch, rows = _epoch_and_rows(step, batch_size, count)
  return tf.gather(epoch_order(epoch, count, seed), rows)


def epoch_order(epoch, count, seed):
  """Epoch ``epoch``'s order of ``shuffled_indices``, int64 (count,): the
  file order for epoch 0, else a permutation drawn from ``seed`` and the
  epoch alone (tf.cond runs only the branch it takes)."""
  epoch = tf.cast(epoch, tf.int64)

  def permutation():
    epoch_seed = tf.random.experimental.stateless_fold_in(
        tf.cast(seed, tf.int64), epoch)
    return tf.random.experimental.stateless_shuffle(
        tf.range(count, dtype=tf.int64), seed=epoch_seed)

  return tf.cond(epoch > 0, permutation,
                 lambda: tf.range(count, dtype=tf.int64))


def _epoch_and_rows(step, batch_size, count):
  """(epoch of ``step``, positions in that epoch's order of its batch)."""
  if not 1 <= batch_size <= count:
    raise ValueError(f"batch_size must be in [1, {count}] (the number of "
                     f"examples), not {batch_size}")
  per_epoch = count // batch_size
  step = tf.cast(step, tf.int64)
  rows = step % per_epoch * batch_size + tf.range(batch_size, dtype=tf.int64)
  return step // per_epoch, rows


class ShuffledBatches(tf.Module):
  """``shuffled_indices(step, batch_size, count, seed)``, the same rows,
  with each epoch's permutation drawn once and kept in a variable.

  Drawing a permutation of 55,000 costs about a millisecond, as much as a
  small network's whole training step; the pure function draws it at every
  step, this module only when the epoch changes (any step may still come in
  any order: a step of another epoch draws that epoch's order again). It
  reads only the B rows of the order a step needs. The seed is a variable
  too, so ``reset(seed)`` starts another seed's walk without retracing.
  Call it inside the compiled loop, like ``shuffled_indices``.
  """

  def __init__(self, batch_size, count, seed, name=None):
    super().__init__(name=name)
    _epoch_and_rows(0, batch_size, count)  # checks batch_size
    self.batch_size, self.count = batch_size, count
    self.seed = tf.Variable(tf.cast(seed, tf.int64), trainable=False,
                            name="seed")
    # The cache: ``order`` is the order of epoch ``epoch`` (-1: none yet).
    self.epoch = tf.Variable(tf.constant(-1, tf.int64), trainable=False,
                             name="epoch")
    self.order = tf.Variable(tf.range(count, dtype=tf.int64),
                             trainable=False, name="order")

  def reset(self, seed):
    """Walks with ``seed`` (shape [2]) from now on; empties the cache."""
    self.seed.assign(tf.cast(seed, tf.int64))
    self.epoch.assign(-1)

  def __call__(self, step):
    epoch, rows = _epoch_and_rows(step, self.batch_size, self.count)

    def redraw():
      self.order.assign(epoch_order(epoch, self.count, self.seed))
      self.epoch.assign(epoch)
      return epoch

    tf.cond(tf.equal(epoch, self.epoch), lambda: epoch, redraw)
    # Read after the cond (a tf.function runs the ops on one variable in
    # program order), and only the B rows needed: reading the whole order
    # every step would cost more than the step's gather.
    return self.order.sparse_read(rows)


# The two walks a --batch_order flag chooses between (``make_walk``).
BATCH_ORDERS = ("shuffled", "ordered")


class OrderedBatches:
  """``ordered_indices`` with ``ShuffledBatches``' interface: called with a
  step, the rows of that batch; ``reset`` does nothing (no seed)."""

  def __init__(self, batch_size, count):
    self.batch_size, self.count = batch_size, count

  def __call__(self, step):
    return ordered_indices(step, self.batch_size, self.count)

  def reset(self, seed):
    del seed  # the file order has no seed


def make_walk(batch_order, batch_size, count, seed):
  """The walk ``batch_order`` names: "shuffled" (``ShuffledBatches``, the
  2016 posts' ``next_batch``, seeded by the shape-[2] ``seed``) or
  "ordered" (``OrderedBatches``: file order, wrapping round)."""
  if batch_order == "shuffled":
    return ShuffledBatches(batch_size, count, seed)
  if batch_order == "ordered":
    return OrderedBatches(batch_size, count)
  raise ValueError(f"batch_order must be one of {BATCH_ORDERS}, not "
                   f"{batch_order!r}")


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
