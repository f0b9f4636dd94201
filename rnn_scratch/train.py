"""Training the echo RNN: truncated backprop through time, K windows per call.

The procedure is the post's ``train_network``::

  for each epoch:
    draw a fresh series and cut it into windows     (data.py)
    s = 0                                           (batch, S)
    for each window i:
      logits, s_next = model(x_i, s)                s enters as a constant,
      loss_i = cross_entropy(logits, y_i)           so the gradient stops at
      weights <- optimizer step on d loss_i / d weights   the window's start
      s = s_next                                    carried to window i + 1

The post ran the inner loop in Python, one ``sess.run`` per window: it fed the
window and the state in through placeholders and fetched the loss and the new
state back, every time. Here the loop over windows runs in the graph
(``tfscratch.loop.compile_steps`` turns it into a ``tf.while_loop``), K
windows per call, so Python is entered only where the program logs. Every
window must then find what it reads inside the graph already:

* the epoch's series: two ``tf.Variable``s of shape (windows, batch,
  bptt_steps), assigned once per epoch; ``tf.gather(inputs, i)`` reads
  window i.
* the carried state: a ``tf.Variable``, read at the start of a window and
  overwritten with s_n at its end. A variable, because the state must
  outlive one call (a call's first window starts from the state the previous
  call's last window left), which a while-loop variable would not. A read of
  it is a plain tensor, so no gradient flows back into the previous window:
  truncation comes for free.

Inside the loop TensorFlow runs the variable reads and writes of one window
before those of the next, exactly as separate calls would, so K windows per
call give the same numbers, bit for bit, as one window per call (a test
checks this).
"""
import dataclasses

import numpy as np
import tensorflow as tf

from rnn_scratch import data
from rnn_scratch import reference
from rnn_scratch.model import EchoRNN, cross_entropy
from tfscratch import loop
from tfscratch import optimizers

# The reported loss is the mean over the last this-many windows (or over all
# of them in a shorter run): one window's loss is noisy.
FINAL_LOSS_WINDOWS = 100


@dataclasses.dataclass(frozen=True)
class Config:
  bptt_steps: int = 5        # window length n, steps unrolled per update
                             # (the post's num_steps)
  state_size: int = 4        # S
  batch_size: int = 200      # parallel rows the series is cut into
  learning_rate: float = 0.1
  optimizer: str = "adagrad"  # sgd | adagrad | adam
  epochs: int = 1            # passes, each over a freshly drawn series
  series_length: int = 1_000_000
  impl: str = "scratch"      # scratch: model.EchoRNN; keras: the SimpleRNN
                             # twin of reference.py, through the same loop
  log_every: int = 100       # K: windows per compiled call, between the
                             # host's reads of the losses
  seed: int = 0


@dataclasses.dataclass
class Result:
  losses: np.ndarray         # float32 (epochs * windows_per_epoch,): the
                             # loss of every window, in training order
  final_loss: float          # mean of the last final_loss_windows losses
  final_loss_windows: int
  windows_per_epoch: int
  trace_counts: dict         # {compiled function: times traced}, 1 each
  model: tf.Module           # the trained EchoRNN (or KerasEchoRNN)


def build_model(config):
  """The model and its optimizer (anything with ``apply(gradients)``)."""
  if config.impl == "scratch":
    model = EchoRNN(config.state_size, seed=config.seed)
    optimizer = optimizers.make_optimizer(config.optimizer, model.weights,
                                          config.learning_rate)
  elif config.impl == "keras":
    model = reference.KerasEchoRNN(config.state_size, seed=config.seed)
    optimizer = reference.make_keras_optimizer(
        config.optimizer, model.weights, config.learning_rate)
  else:
    raise ValueError(f"unknown impl {config.impl!r}")
  return model, optimizer


def make_train_windows(model, optimizer, inputs, labels, state):
  """Compiles the training loop over the windows held in ``inputs``/``labels``.

  Args:
    model: EchoRNN or KerasEchoRNN.
    optimizer: updates ``model.weights`` from their gradients.
    inputs, labels: int32 tf.Variables (windows, batch, bptt_steps).
    state: tf.Variable (batch, S) in the model's dtype: s_0 of the next
      window to train.
  Returns:
    ``train_windows(first, k) -> losses (k,)``: trains windows first ..
    first + k - 1 in order, carrying the state through ``state``; traced
    once, whatever ``first`` and ``k``.
  """

  def train_window(i):
    with tf.GradientTape() as tape:
      logits, final_state = model(tf.gather(inputs, i), state.read_value())
      loss = cross_entropy(logits, tf.gather(labels, i))
    optimizer.apply(tape.gradient(loss, model.weights))
    state.assign(final_state)
    return loss

  return loop.compile_steps(train_window, loss_dtype=state.dtype)


def train(config, log=None):
  """Trains a fresh model as ``config`` says; returns a Result.

  Args:
    config: a Config.
    log: optional ``log(first_window, losses)``, called after every compiled
      call with the losses of windows first_window + 1 .. first_window +
      len(losses) (counted over all epochs); it may raise to stop the run
      (the program's NaN/divergence guard does).
  """
  model, optimizer = build_model(config)
  per_epoch = data.windows_per_epoch(config.series_length, config.batch_size,
                                     config.bptt_steps)
  shape = [per_epoch, config.batch_size, config.bptt_steps]
  inputs = tf.Variable(tf.zeros(shape, tf.int32), trainable=False)
  labels = tf.Variable(tf.zeros(shape, tf.int32), trainable=False)
  state = tf.Variable(model.initial_state(config.batch_size), trainable=False)
  train_windows = make_train_windows(model, optimizer, inputs, labels, state)

  rng = np.random.default_rng(config.seed)
  losses = []
  for epoch in range(config.epochs):
    x, y = data.generate_series(config.series_length, rng)
    x_windows, y_windows = data.windows(x, y, config.batch_size,
                                        config.bptt_steps)
    inputs.assign(x_windows)
    labels.assign(y_windows)
    state.assign(model.initial_state(config.batch_size))  # each epoch from 0
    for first in range(0, per_epoch, config.log_every):
      count = min(config.log_every, per_epoch - first)
      chunk = train_windows(first, count).numpy()  # the one host read
      if log is not None:
        log(epoch * per_epoch + first, chunk)
      losses.append(chunk)

  losses = np.concatenate(losses)
  final_windows = min(FINAL_LOSS_WINDOWS, losses.size)
  return Result(
      losses=losses,
      final_loss=float(np.mean(losses[-final_windows:].astype(np.float64))),
      final_loss_windows=final_windows,
      windows_per_epoch=per_epoch,
      trace_counts=loop.trace_counts(train_windows=train_windows),
      model=model)
