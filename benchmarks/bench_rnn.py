"""Training throughput of the echo RNN, three ways on the same windows:

  in-graph       train.make_train_windows: K windows per compiled call
                 (the program's loop), hand-unrolled model
  one-per-call   one compiled call per window, the state passed in and out
                 and the loss read on the host after every window (the
                 loop before it moved into the graph, as the post's
                 ``sess.run`` loop did)
  keras          the in-graph loop around reference.KerasEchoRNN
                 (SimpleRNN) and keras.optimizers.Adagrad

The ways take turns, round after round (so a busy machine slows each alike);
the median round decides. Prints windows/s, the time ratios and how often
each compiled function was traced.

  python benchmarks/bench_rnn.py [--config=5,4 --config=10,16 --rounds=5]
"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import time

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from rnn_scratch import data
from rnn_scratch import train
from rnn_scratch.model import EchoRNN, cross_entropy
from rnn_scratch.reference import KerasEchoRNN, make_keras_optimizer
from tfscratch import optimizers

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("config", ["5,4", "10,16"],
                          "bptt_steps,state_size pairs to measure.")
flags.DEFINE_integer("batch_size", 200, "Rows per window.", lower_bound=1)
flags.DEFINE_integer("windows", 500, "Windows per timed round.",
                     lower_bound=1)
flags.DEFINE_integer("windows_per_call", 100, "K of the in-graph loops.",
                     lower_bound=1)
flags.DEFINE_integer("rounds", 5, "Timed rounds per way.", lower_bound=1)


def in_graph(model, optimizer, x_windows, y_windows):
  """A round of the program's loop: K windows per call, one read per call."""
  state = tf.Variable(model.initial_state(FLAGS.batch_size))
  train_windows = train.make_train_windows(
      model, optimizer, tf.Variable(x_windows), tf.Variable(y_windows), state)

  def run_round():
    state.assign(model.initial_state(FLAGS.batch_size))
    for first in range(0, len(x_windows), FLAGS.windows_per_call):
      count = min(FLAGS.windows_per_call, len(x_windows) - first)
      train_windows(first, count).numpy()

  return run_round, train_windows


def one_per_call(model, optimizer, x_windows, y_windows):
  """A round of the loop as it was: one call and one host read per window."""
  window = tf.TensorSpec(x_windows.shape[1:], tf.int32)
  state_spec = tf.TensorSpec([FLAGS.batch_size, model.state_size])

  @tf.function(input_signature=[window, window, state_spec])
  def train_window(inputs, labels, state):
    with tf.GradientTape() as tape:
      logits, final_state = model(inputs, state)
      loss = cross_entropy(logits, labels)
    optimizer.apply(tape.gradient(loss, model.weights))
    return loss, final_state

  def run_round():
    state = model.initial_state(FLAGS.batch_size)
    for inputs, labels in zip(x_windows, y_windows):
      loss, state = train_window(inputs, labels, state)
      float(loss)

  return run_round, train_window


def measure(bptt_steps, state_size):
  series_length = FLAGS.batch_size * bptt_steps * FLAGS.windows
  x, y = data.generate_series(series_length, np.random.default_rng(0))
  x_windows, y_windows = data.windows(x, y, FLAGS.batch_size, bptt_steps)
  ours, theirs, before = (EchoRNN(state_size), KerasEchoRNN(state_size),
                          EchoRNN(state_size))
  ways = {
      "in-graph": in_graph(ours, optimizers.Adagrad(ours.weights, 0.1),
                           x_windows, y_windows),
      "one-per-call": one_per_call(
          before, optimizers.Adagrad(before.weights, 0.1), x_windows,
          y_windows),
      "keras": in_graph(theirs, make_keras_optimizer("adagrad",
                                                     theirs.weights, 0.1),
                        x_windows, y_windows),
  }
  for run_round, _ in ways.values():  # trace and warm up
    run_round()
  times = {name: [] for name in ways}
  for _ in range(FLAGS.rounds):
    for name, (run_round, _) in ways.items():
      start = time.perf_counter()
      run_round()
      times[name].append(time.perf_counter() - start)
  median = {name: float(np.median(t)) for name, t in times.items()}
  print(f"bptt_steps={bptt_steps:<3} state_size={state_size:<3} "
        f"batch={FLAGS.batch_size} K={FLAGS.windows_per_call}: "
        + "  ".join(f"{name} {len(x_windows) / median[name]:,.0f} windows/s "
                    f"(traced {function.experimental_get_tracing_count()}x)"
                    for name, (_, function) in ways.items()), flush=True)
  print(f"  time ratios: in-graph/one-per-call "
        f"{median['in-graph'] / median['one-per-call']:.2f}, "
        f"in-graph/keras {median['in-graph'] / median['keras']:.2f}",
        flush=True)


def main(argv):
  del argv
  for config in FLAGS.config:
    bptt_steps, state_size = (int(v) for v in config.split(","))
    measure(bptt_steps, state_size)


if __name__ == "__main__":
  app.run(main)
