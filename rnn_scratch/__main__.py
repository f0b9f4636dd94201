"""Trains the echo RNN with truncated backprop and compares its loss with the
analytic yardsticks.  ``python -m rnn_scratch --helpfull`` lists the flags.

A thin adapter: flags -> ``train.Config`` -> ``train.train`` -> results.json,
loss.png and TensorBoard scalars in --output_dir.
"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

from absl import flags

from rnn_scratch import data
from rnn_scratch import plots
from rnn_scratch import train
from tfscratch import loop
from tfscratch.lab import cli
from tfscratch.lab.monitor import Guard, Monitor
from tfscratch.lab.outputs import RunOutputs
from tfscratch.lab.seeding import set_seed

# Bounds on the flags that set memory. Drawing a series takes about 40 bytes
# per step (NumPy's draws, then the windows held in the graph); each step
# of a window is a copy of the cell written into the graph; U is S x S; the
# loss of every window is kept and written to results.json.
MAX_SERIES_LENGTH = 100_000_000
MAX_BPTT_STEPS = 1000
MAX_STATE_SIZE = 1024
MAX_WINDOW_ACTIVATIONS = 2**26  # batch_size * bptt_steps * state_size floats
MAX_WINDOWS = 10_000_000        # epochs * windows per epoch

FLAGS = flags.FLAGS
flags.DEFINE_integer(
    "bptt_steps", 5, "Truncation window: steps unrolled per truncated-"
    "backprop update, the longest stretch a gradient crosses (the post calls "
    f"it num_steps). At most {MAX_BPTT_STEPS:,}: each step is a copy of the "
    "cell in the graph.", lower_bound=1, upper_bound=MAX_BPTT_STEPS)
flags.DEFINE_integer("state_size", 4, "Number of RNN state units.",
                     lower_bound=1, upper_bound=MAX_STATE_SIZE)
cli.define_batch_size(200, "Parallel rows the series is split into.")
cli.define_learning_rate(0.1)
cli.define_optimizer("adagrad", "Optimizer: hand-written (tfscratch/"
                     "optimizers.py) for --impl=scratch, keras.optimizers for "
                     "--impl=keras.")
flags.DEFINE_integer("epochs", 1, "Passes, each over a freshly drawn series.",
                     lower_bound=1)
flags.DEFINE_integer(
    "series_length", 1_000_000, "Length of the series drawn for each epoch "
    f"(at most {MAX_SERIES_LENGTH:,}: about 40 bytes of memory per step).",
    lower_bound=1, upper_bound=MAX_SERIES_LENGTH)
flags.DEFINE_enum("impl", "scratch", ["scratch", "keras"],
                  "scratch: the RNN unrolled by hand; keras: the same model "
                  "through keras.layers.SimpleRNN, in the same training loop.")
cli.define_log_every(100)
cli.define_run_flags(default_output_dir="runs/rnn_scratch")

flags.register_multi_flags_validator(
    ["series_length", "batch_size", "bptt_steps"],
    lambda f: f["series_length"] // f["batch_size"] >= f["bptt_steps"],
    "--series_length must give every one of the --batch_size rows at least "
    "--bptt_steps steps (series_length // batch_size >= bptt_steps)")
flags.register_multi_flags_validator(
    ["batch_size", "bptt_steps", "state_size"],
    lambda f: (f["batch_size"] * f["bptt_steps"] * f["state_size"]
               <= MAX_WINDOW_ACTIVATIONS),
    f"--batch_size x --bptt_steps x --state_size must be at most "
    f"{MAX_WINDOW_ACTIVATIONS:,} (the states of one window are kept for "
    "backprop)")
flags.register_multi_flags_validator(
    ["series_length", "batch_size", "bptt_steps", "epochs"],
    lambda f: f["epochs"] * data.windows_per_epoch(
        f["series_length"], f["batch_size"], f["bptt_steps"]) <= MAX_WINDOWS,
    f"--epochs x windows per epoch (series_length // batch_size // "
    f"bptt_steps) must be at most {MAX_WINDOWS:,}: the loss of every window "
    "is kept for results.json")


def main(argv):
  del argv
  set_seed(FLAGS.seed)
  config = cli.config_from_flags(train.Config)
  outputs = RunOutputs(FLAGS.output_dir, overwrite=FLAGS.overwrite)
  expected = data.expected_losses()
  per_epoch = data.windows_per_epoch(config.series_length, config.batch_size,
                                     config.bptt_steps)
  print(f"impl={config.impl} bptt_steps={config.bptt_steps} "
        f"state_size={config.state_size} epochs={config.epochs}: "
        f"{per_epoch} windows/epoch; optimal losses "
        + ", ".join(f"{k} {v:.3f}" for k, v in expected.items()), flush=True)
  # One step of the progress lines (and of the guard's messages) = one window.
  monitor = Monitor(per_epoch * config.epochs, every=config.log_every,
                    guard=Guard(FLAGS.divergence_factor,
                                FLAGS.divergence_patience))
  with outputs.summary_writer.as_default():  # monitor.record writes to it
    result = train.train(config, log=monitor.record)

  title = (f"{config.impl} RNN, bptt_steps={config.bptt_steps} (the post's "
           f"num_steps), state_size={config.state_size}, "
           f"{config.epochs} epoch{'s' if config.epochs > 1 else ''}")
  outputs.save_figure(plots.plot_losses(result.losses, expected, title,
                                        result.windows_per_epoch), "loss.png")
  print(f"final loss (mean of the last {result.final_loss_windows} windows): "
        f"{result.final_loss:.4f}", flush=True)
  outputs.finish({
      "final_loss": result.final_loss,
      "final_loss_windows": result.final_loss_windows,
      "expected_loss": expected,
      "losses": result.losses,
      "windows": int(result.losses.size),
      "windows_per_epoch": result.windows_per_epoch,
      "trace_counts": {**result.trace_counts,
                       **loop.trace_counts(write_losses=monitor.write_losses)},
  })


if __name__ == "__main__":
  cli.run(main)
