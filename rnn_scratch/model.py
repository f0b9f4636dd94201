"""A vanilla RNN unrolled by hand, from raw tf.Variables.

For one window of n = ``bptt_steps`` inputs x_1..x_n (one-hot over 2
classes) and an initial state s_0:

  s_t      = tanh(x_t W + s_{t-1} U + b)     x_t: (batch, 2), s_t: (batch, S)
  logits_t = s_t V + c                       logits_t: (batch, 2)
  loss     = mean over batch and t of  -log softmax(logits_t)[y_t]

  W: (2, S)   U: (S, S)   b: (S,)   V: (S, 2)   c: (2,)

Truncated backprop through time: the final state s_n of one window is fed as
s_0 of the next window, but as a plain input tensor, so the gradient of a
window's loss stops at its own s_0 (``train.py`` carries it).
"""
import tensorflow as tf

from tfscratch.nn import glorot_uniform

NUM_CLASSES = 2


class EchoRNN(tf.Module):
  """The RNN cell and its softmax readout; ``__call__`` runs one window."""

  def __init__(self, state_size, seed=0, dtype=tf.float32, name=None):
    super().__init__(name=name)
    self.state_size = state_size
    self.dtype = dtype  # tf.float64 for the tests' tight comparisons
    # The blog's TF1 code drew one Glorot matrix for the concatenated input
    # [x_t, s_{t-1}] -> (2 + S, S); we draw the same and split it, so
    # W and U start from exactly the blog's distribution.
    cell_matrix = glorot_uniform((NUM_CLASSES + state_size, state_size),
                                 seed=(seed, 0))
    cell_matrix = tf.cast(cell_matrix, dtype)
    self.W = tf.Variable(cell_matrix[:NUM_CLASSES], name="W")
    self.U = tf.Variable(cell_matrix[NUM_CLASSES:], name="U")
    self.b = tf.Variable(tf.zeros([state_size], dtype), name="b")
    self.V = tf.Variable(tf.cast(glorot_uniform((state_size, NUM_CLASSES),
                                                seed=(seed, 1)), dtype),
                         name="V")
    self.c = tf.Variable(tf.zeros([NUM_CLASSES], dtype), name="c")

  @property
  def weights(self):
    """[W, U, b, V, c], the order the Keras twin and the optimizer use."""
    return [self.W, self.U, self.b, self.V, self.c]

  def initial_state(self, batch_size):
    return tf.zeros([batch_size, self.state_size], self.dtype)

  def __call__(self, inputs, state):
    """Runs one window.

    Args:
      inputs: int (batch, n) class indices x_1..x_n; n must be known when
        the function is traced (it is the number of cells written).
      state: (batch, S), the state s_0 before the window.
    Returns:
      logits: (batch, n, 2); final_state: (batch, S) = s_n.
    """
    return unroll(tf.one_hot(inputs, NUM_CLASSES, dtype=self.dtype), state,
                  *self.weights)


def unroll(x, state, W, U, b, V, c):
  """The recurrence of the module docstring over one window.

    s_t      = tanh(x_t W + s_{t-1} U + b)
    logits_t = s_t V + c

  Args:
    x: (batch, n, 2) one-hot inputs x_1..x_n; n must be known when the
      function is traced (it is the number of cells written).
    state: (batch, S), s_0.
    W, U, b, V, c: the weights, shapes as in the module docstring.
  Returns:
    logits: (batch, n, 2), logits_1..logits_n; final_state: (batch, S) = s_n.
  """
  logits = []
  # A Python loop: tracing writes n copies of the cell into the graph,
  # which is exactly "unrolling by hand" (the post's static_rnn).
  for t in range(x.shape[1]):
    state = tf.tanh(x[:, t] @ W + state @ U + b)
    logits.append(state @ V + c)
  return tf.stack(logits, axis=1), state


def cross_entropy(logits, labels):
  """Mean cross-entropy over batch and time (nats per step)."""
  return tf.reduce_mean(
      tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels,
                                                     logits=logits))
