"""Training throughput: the hand-unrolled RNN step vs the Keras RNN API.

Both implementations train on the same windows, in the same process, in
alternating rounds (so a busy machine slows both alike); the median round
decides. Prints windows/s for each, the time ratio ours/keras (target
<= 1.0) and how often each training step was traced.

  python benchmarks/bench_rnn.py [--num_steps=5 --state_size=4 ...]
"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import time

from absl import app
from absl import flags
import keras
import numpy as np

from rnn_scratch import data
from rnn_scratch.keras_model import KerasEchoRNN, KerasOptimizer
from rnn_scratch.model import EchoRNN, make_train_step
from tfscratch import optimizers

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("config", ["5,4", "10,16"],
                          "num_steps,state_size pairs to measure.")
flags.DEFINE_integer("batch_size", 200, "Rows per window.", lower_bound=1)
flags.DEFINE_integer("windows", 300, "Windows per timed round.",
                     lower_bound=1)
flags.DEFINE_integer("rounds", 5, "Alternating timed rounds per "
                     "implementation.", lower_bound=1)


def time_round(train_step, model, batches):
  state = model.initial_state(FLAGS.batch_size)
  start = time.perf_counter()
  for x_window, y_window in batches:
    loss, state = train_step(x_window, y_window, state)
  loss.numpy()  # wait for the last step to finish
  return time.perf_counter() - start


def measure(num_steps, state_size):
  series_length = FLAGS.batch_size * num_steps * FLAGS.windows
  x, y = data.generate_series(series_length, np.random.default_rng(0))
  batches = list(data.windows(x, y, FLAGS.batch_size, num_steps))
  ours = EchoRNN(state_size)
  theirs = KerasEchoRNN(state_size)
  steps = {
      "scratch": (make_train_step(
          ours, optimizers.Adagrad(ours.weights, 0.1), FLAGS.batch_size,
          num_steps), ours),
      "keras": (make_train_step(
          theirs, KerasOptimizer(keras.optimizers.Adagrad(0.1),
                                 theirs.weights), FLAGS.batch_size,
          num_steps), theirs),
  }
  for train_step, model in steps.values():  # trace and warm up
    time_round(train_step, model, batches[:10])
  times = {name: [] for name in steps}
  for _ in range(FLAGS.rounds):
    for name, (train_step, model) in steps.items():
      times[name].append(time_round(train_step, model, batches))
  median = {name: float(np.median(t)) for name, t in times.items()}
  print(f"num_steps={num_steps:<3} state_size={state_size:<3} "
        f"batch={FLAGS.batch_size}: "
        + "  ".join(f"{name} {len(batches) / median[name]:,.0f} windows/s "
                    f"(traced {steps[name][0].experimental_get_tracing_count()}"
                    "x)" for name in steps)
        + f"  ratio scratch/keras time {median['scratch'] / median['keras']:.2f}",
        flush=True)


def main(argv):
  del argv
  for config in FLAGS.config:
    num_steps, state_size = (int(v) for v in config.split(","))
    measure(num_steps, state_size)


if __name__ == "__main__":
  app.run(main)
