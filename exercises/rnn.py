"""Exercise 2 (rnn): unrolling a vanilla RNN by hand.

Replace ``raise NotImplementedError`` with the recurrence in the docstring,
then check it against ``keras.layers.SimpleRNN`` + ``Dense`` (float64:
logits, final state, and the gradients with respect to every weight, the
inputs and the initial state):

    make exercise NAME=rnn

The package's own version is ``unroll`` in rnn_scratch/model.py.
"""
import tensorflow as tf  # noqa: F401  (you will need it)


def unroll(x, state, W, U, b, V, c):
  """The recurrence over one window of n steps:

    s_t      = tanh(x_t W + s_{t-1} U + b)     t = 1..n
    logits_t = s_t V + c

  Args:
    x: (batch, n, 2) one-hot inputs x_1..x_n (x[:, t] is x_{t+1}); n is
      known when the function is traced (x.shape[1]), so a Python loop
      over t writes n copies of the cell: that is the unrolling.
    state: (batch, S), s_0.
    W: (2, S). U: (S, S). b: (S,). V: (S, 2). c: (2,).
  Returns:
    logits: (batch, n, 2), logits_1..logits_n stacked on axis 1
      (tf.stack(..., axis=1)); final_state: (batch, S) = s_n.
  """
  raise NotImplementedError
