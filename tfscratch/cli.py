"""Flags every experiment shares, and ``run``, its absl entry point."""
import sys

from absl import app
from absl import flags

from tfscratch.errors import ScratchError


def define_run_flags(default_output_dir):
  """Defines --seed, --output_dir and --overwrite."""
  flags.DEFINE_integer("seed", 0, "Seed for Python, NumPy and TensorFlow; the "
                       "same seed gives the same numbers.", lower_bound=0)
  flags.DEFINE_string("output_dir", default_output_dir,
                      "Directory for results.json, figures and TensorBoard "
                      "logs (tensorboard/).")
  flags.DEFINE_boolean("overwrite", False,
                       "Replace a finished run in --output_dir. The old run "
                       "stays intact until the new one has finished.")


def define_data_dir_flag():
  """Defines --data_dir for experiments that read MNIST."""
  flags.DEFINE_string(
      "data_dir", None,
      "Directory holding the four MNIST IDX files (gzip or raw). Default: "
      "$MNIST_DATA_DIR, then the Keras cache (~/.keras/datasets/mnist.npz), "
      "then the Keras download.")


def run(main):
  """Runs ``main`` under absl; a ScratchError ends it with one line, exit 1;
  Ctrl-C with one line, exit 130."""

  def main_with_clear_errors(argv):
    if len(argv) > 1:
      raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
      main(argv)
    except ScratchError as error:
      print(f"error: {error}", file=sys.stderr, flush=True)
      sys.exit(1)
    except KeyboardInterrupt:
      print("interrupted", file=sys.stderr, flush=True)
      sys.exit(130)  # the shell's code for "ended by Ctrl-C"

  app.run(main_with_clear_errors)
