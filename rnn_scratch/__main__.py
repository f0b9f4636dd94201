"""Trains the echo RNN with truncated backprop and compares its loss with the
analytic yardsticks.  ``python -m rnn_scratch --helpfull`` lists the flags."""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

from absl import flags
import keras
import numpy as np
import tensorflow as tf

from rnn_scratch import data
from rnn_scratch.keras_model import KerasEchoRNN, KerasOptimizer
from rnn_scratch.model import EchoRNN, make_train_step
from tfscratch import optimizers
from tfscratch.lab import cli
from tfscratch.lab.figures import plt
from tfscratch.lab.outputs import RunOutputs
from tfscratch.lab.progress import Progress
from tfscratch.lab.seeding import set_seed

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_steps", 5, "Window length: steps unrolled per "
                     "truncated-backprop update.", lower_bound=1)
flags.DEFINE_integer("state_size", 4, "Number of RNN state units.",
                     lower_bound=1)
flags.DEFINE_integer("batch_size", 200, "Parallel rows the series is split "
                     "into.", lower_bound=1)
flags.DEFINE_float("learning_rate", 0.1, "Learning rate.")
flags.DEFINE_enum("optimizer", "adagrad", ["sgd", "adagrad", "adam"],
                  "Optimizer (hand-written for --impl=scratch, "
                  "keras.optimizers for --impl=keras).")
flags.DEFINE_integer("epochs", 1, "Passes, each over a freshly drawn series.",
                     lower_bound=1)
flags.DEFINE_integer("series_length", 1_000_000, "Length of the series drawn "
                     "for each epoch.", lower_bound=1)
flags.DEFINE_enum("impl", "scratch", ["scratch", "keras"],
                  "scratch: the RNN unrolled by hand; keras: the same model "
                  "through keras.layers.SimpleRNN.")
flags.DEFINE_integer("log_every", 100, "Windows between progress lines.",
                     lower_bound=1)
cli.define_run_flags(default_output_dir="runs/rnn_scratch")

flags.register_validator("learning_rate", lambda v: v > 0,
                         "--learning_rate must be positive")
flags.register_multi_flags_validator(
    ["series_length", "batch_size", "num_steps"],
    lambda f: f["series_length"] // f["batch_size"] >= f["num_steps"],
    "--series_length must give every one of the --batch_size rows at least "
    "--num_steps steps (series_length // batch_size >= num_steps)")

KERAS_OPTIMIZERS = {"sgd": keras.optimizers.SGD,
                    "adagrad": keras.optimizers.Adagrad,
                    "adam": keras.optimizers.Adam}
FINAL_LOSS_WINDOWS = 100


def build_model_and_optimizer():
  if FLAGS.impl == "scratch":
    model = EchoRNN(FLAGS.state_size, seed=FLAGS.seed)
    optimizer = optimizers.make_optimizer(FLAGS.optimizer, model.weights,
                                          FLAGS.learning_rate)
  else:
    model = KerasEchoRNN(FLAGS.state_size, seed=FLAGS.seed)
    optimizer = KerasOptimizer(
        KERAS_OPTIMIZERS[FLAGS.optimizer](learning_rate=FLAGS.learning_rate),
        model.weights)
  return model, optimizer


def plot_losses(losses, expected, title):
  figure, axes = plt.subplots(figsize=(8, 4.5))
  axes.plot(np.arange(1, len(losses) + 1), losses, color="tab:blue",
            alpha=0.25, linewidth=0.5, label="training loss per window")
  window = max(1, min(50, len(losses) // 50))
  smoothed = np.convolve(losses, np.ones(window) / window, mode="valid")
  axes.plot(np.arange(window, len(losses) + 1), smoothed, color="tab:blue",
            label=f"mean of {window} windows")
  styles = {"no_dependency": ("tab:red", "no dependency"),
            "first_dependency": ("tab:orange", "t-3 dependency only"),
            "both_dependencies": ("tab:green", "both dependencies")}
  for key, (color, label) in styles.items():
    axes.axhline(expected[key], color=color, linestyle="--",
                 label=f"{label}: {expected[key]:.3f}")
  axes.set_xlabel("window (training step)")
  axes.set_ylabel("cross-entropy (nats/step)")
  axes.set_title(title)
  axes.legend()
  return figure


def main(argv):
  del argv
  set_seed(FLAGS.seed)
  outputs = RunOutputs(FLAGS.output_dir, overwrite=FLAGS.overwrite)
  rng = np.random.default_rng(FLAGS.seed)
  expected = data.expected_losses()
  model, optimizer = build_model_and_optimizer()
  train_step = make_train_step(model, optimizer, FLAGS.batch_size,
                               FLAGS.num_steps)
  per_epoch = data.windows_per_epoch(FLAGS.series_length, FLAGS.batch_size,
                                     FLAGS.num_steps)
  progress = Progress(per_epoch * FLAGS.epochs, every=FLAGS.log_every)
  print(f"impl={FLAGS.impl} num_steps={FLAGS.num_steps} "
        f"state_size={FLAGS.state_size}: {per_epoch} windows/epoch; optimal "
        "losses " + ", ".join(f"{k} {v:.3f}" for k, v in expected.items()),
        flush=True)

  losses = []
  with outputs.summary_writer.as_default():
    for _ in range(FLAGS.epochs):
      x, y = data.generate_series(FLAGS.series_length, rng)
      state = model.initial_state(FLAGS.batch_size)
      for x_window, y_window in data.windows(x, y, FLAGS.batch_size,
                                             FLAGS.num_steps):
        loss, state = train_step(x_window, y_window, state)
        losses.append(float(loss))
        progress.update(len(losses), losses[-1])
        tf.summary.scalar("loss", losses[-1], step=len(losses))

  title = (f"{FLAGS.impl} RNN, num_steps={FLAGS.num_steps}, "
           f"state_size={FLAGS.state_size}")
  outputs.save_figure(plot_losses(losses, expected, title), "loss.png")
  final_loss = float(np.mean(losses[-FINAL_LOSS_WINDOWS:]))
  print(f"final loss (mean of last {FINAL_LOSS_WINDOWS} windows): "
        f"{final_loss:.4f}", flush=True)
  outputs.finish({
      "final_loss": final_loss,
      "expected_loss": expected,
      "losses": losses,
      "windows": len(losses),
      "trace_count": train_step.experimental_get_tracing_count(),
  })


if __name__ == "__main__":
  cli.run(main)
