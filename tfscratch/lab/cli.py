"""The flags every experiment shares, their validators, and ``run``.

One vocabulary: a flag defined here means the same thing in every package.

  --steps            training steps (one step = one gradient update)
  --batch_size       examples per step
  --learning_rate    the optimizer's learning rate (finite, > 0)
  --optimizer        sgd | adagrad | adam (hand-written, tfscratch.optimizers)
  --eval_every       steps between evaluations on held-out data
  --log_every        steps between progress lines
  --seed             one seed for everything random; same seed, same numbers
  --data_dir         where the MNIST IDX files are
  --output_dir       where results.json, figures and TensorBoard logs go
  --overwrite        replace an earlier run of this project in --output_dir
  --run_eagerly      run every tf.function as plain Python (for a debugger)
  --divergence_factor, --divergence_patience
                     stop a run whose loss blew up (see lab.monitor)

Every float flag is checked to be finite up front: a NaN or an infinity
would otherwise surface only after minutes of training.
"""
import dataclasses
import math
import os
import re
import signal
import sys

from absl import app
from absl import flags
import tensorflow as tf

from tfscratch import loop
from tfscratch.lab.errors import ScratchError

FLAGS = flags.FLAGS
# np.random.seed and TensorFlow's seeds take at most 32 bits.
MAX_SEED = 2**32 - 1
OPTIMIZER_NAMES = ("sgd", "adagrad", "adam")
TRACEBACK_ENV = "SCRATCHNETS_TRACEBACK"


def define_float(name, default, help_text, minimum=None, exclusive=False,
                 maximum=None):
  """A float flag that must be finite and, optionally, >= (or >) ``minimum``
  and <= ``maximum``. A default of None means "not given" (the program picks
  a value) and is accepted; a value the user gives is checked."""
  flags.DEFINE_float(name, default, help_text)
  rules, tests = ["finite"], [math.isfinite]
  if minimum is not None and exclusive:
    rules.append(f"> {minimum:g}")
    tests.append(lambda v: v > minimum)
  elif minimum is not None:
    rules.append(f">= {minimum:g}")
    tests.append(lambda v: v >= minimum)
  if maximum is not None:
    rules.append(f"at most {maximum:g}")
    tests.append(lambda v: v <= maximum)
  flags.register_validator(
      name, lambda v: v is None or all(test(v) for test in tests),
      f"--{name} must be {' and '.join(rules)}")


def define_choice_list(name, default, choices, help_text):
  """A comma-separated list flag of distinct values from ``choices``."""
  flags.DEFINE_list(name, default, help_text)
  flags.register_validator(
      name, lambda v: bool(v) and len(set(v)) == len(v) and set(v) <= set(
          choices),
      f"--{name} must list one or more of {', '.join(choices)}, each once")


def define_probability(name, default, help_text, closed=False):
  """A float flag in (0, 1), or [0, 1] with ``closed``."""
  flags.DEFINE_float(name, default, help_text)
  if closed:
    flags.register_validator(name, lambda v: 0 <= v <= 1,
                             f"--{name} must be in [0, 1]")
  else:
    flags.register_validator(name, lambda v: 0 < v < 1,
                             f"--{name} must be in (0, 1)")


def define_learning_rate(default, name="learning_rate",
                         help_text="Learning rate of the optimizer."):
  define_float(name, default, help_text, minimum=0, exclusive=True)


def define_steps(default, name="steps",
                 help_text="Training steps (gradient updates).",
                 maximum=None):
  flags.DEFINE_integer(name, default, help_text, lower_bound=1,
                       upper_bound=maximum)


def define_batch_size(default, help_text="Examples per training step."):
  flags.DEFINE_integer("batch_size", default, help_text, lower_bound=1)


def define_optimizer(default, help_text="Optimizer (written by hand in "
                     "tfscratch/optimizers.py)."):
  flags.DEFINE_enum("optimizer", default, OPTIMIZER_NAMES, help_text)


def define_batch_order(default="shuffled"):
  flags.DEFINE_enum(
      "batch_order", default, loop.BATCH_ORDERS,
      "shuffled: the 2016 posts' mnist.train.next_batch (the first epoch in "
      "file order, then a new permutation every epoch, seeded by --seed; "
      "the last N mod B images of an epoch skipped); ordered: batch i is "
      "images iB .. iB + B - 1, wrapping round, never shuffled.")


def define_log_every(default):
  flags.DEFINE_integer("log_every", default, "Steps between progress lines.",
                       lower_bound=1)


def define_eval_every(default, help_text="Steps between evaluations on "
                      "held-out data."):
  flags.DEFINE_integer("eval_every", default, help_text, lower_bound=1)


def define_data_dir_flag():
  """Defines --data_dir for experiments that read MNIST."""
  flags.DEFINE_string(
      "data_dir", None,
      "Directory holding the four MNIST IDX files (gzip or raw). Default: "
      "$MNIST_DATA_DIR, then the Keras cache (~/.keras/datasets/mnist.npz), "
      "then the Keras download.")


def define_run_flags(default_output_dir):
  """Defines the flags of every run: --seed, --output_dir, --overwrite,
  --run_eagerly and the divergence guard's two flags."""
  flags.DEFINE_integer("seed", 0, "Seed for Python, NumPy and TensorFlow; the "
                       "same seed gives the same numbers.", lower_bound=0,
                       upper_bound=MAX_SEED)
  flags.DEFINE_string("output_dir", default_output_dir,
                      "Directory for results.json, figures and TensorBoard "
                      "logs (tensorboard/).")
  flags.DEFINE_boolean("overwrite", False,
                       "Replace an earlier run of this project in "
                       "--output_dir (never anything else). The old run "
                       "stays intact until the new one has finished.")
  flags.DEFINE_boolean("run_eagerly", False,
                       "Run every tf.function eagerly, as plain Python, so a "
                       "debugger can step through it (much slower).")
  define_float("divergence_factor", 10.0,
               "Stop the run when the loss stays above this multiple of its "
               "value at the first step for --divergence_patience checks in a "
               "row (a check each time the program reads the losses back from "
               "the graph), or is above it at the end.", minimum=1,
               exclusive=True)
  flags.DEFINE_integer("divergence_patience", 3, "See --divergence_factor.",
                       lower_bound=1)


def config_from_flags(config_class, **values):
  """Builds the frozen dataclass ``config_class`` from the flags of the same
  names; ``values`` gives the fields that have no flag of their own (or
  overrides one)."""
  fields = {field.name for field in dataclasses.fields(config_class)}
  from_flags = {name: FLAGS[name].value for name in fields
                if name in FLAGS and name not in values}
  return config_class(**from_flags, **values)


def run(main):
  """Runs ``main(argv)`` under absl.

  A ScratchError (or an OSError, such as a full disk or a read-only output
  directory, or an error of a TensorFlow op) ends the run with one line
  ``error: ...`` and exit code 1; Ctrl-C with the line ``interrupted`` and
  exit code 130.
  """
  # From here on Ctrl-C raises KeyboardInterrupt again (tfscratch's import
  # made it exit at once, for the imports before this), so that a program
  # can keep its finished work on the way out.
  signal.signal(signal.SIGINT, signal.default_int_handler)

  def main_with_clear_errors(argv):
    if len(argv) > 1:
      fail(f"unexpected arguments: {' '.join(argv[1:])} (flags are written "
           "--name=value; --helpfull lists them)")
    try:
      if "run_eagerly" in FLAGS and FLAGS.run_eagerly:
        tf.config.run_functions_eagerly(True)
      main(argv)
    except ScratchError as error:
      fail(str(error))
    except OSError as error:
      fail(describe_os_error(error))
    except tf.errors.OpError as error:
      # A TensorFlow op refused its input at run time (the flags passed
      # their checks, so this is data the checks did not foresee, or a bug).
      if os.environ.get(TRACEBACK_ENV):
        raise
      # Eager errors start with the op's internal name in {{...}}.
      message = re.sub(r"\{\{[^}]*\}\}\s*", "", error.message)
      fail(f"TensorFlow: {message.splitlines()[0].strip()} (set "
           f"{TRACEBACK_ENV}=1 to see the traceback)")
    except KeyboardInterrupt:
      print("interrupted", file=sys.stderr, flush=True)
      sys.exit(130)  # the shell's code for "ended by Ctrl-C"

  try:
    app.run(main_with_clear_errors, flags_parser=parse_flags)
  except KeyboardInterrupt:  # during flag parsing or absl's start-up
    print("interrupted", file=sys.stderr, flush=True)
    sys.exit(130)


HELP_FLAGS = ("--help", "--helpshort", "--helpfull", "--helpxml", "-?")


def parse_flags(argv):
  """Parses the flags; a bad value ends the program with ONE line
  (absl's own parser prints two), and a help flag exits with code 0
  (absl exits 1, as if asking for help were an error)."""
  try:
    return FLAGS(argv)
  except flags.Error as error:
    fail(f"{error} (--helpfull lists every flag)")
  except SystemExit as exit_request:
    if any(arg.split("=")[0] in HELP_FLAGS for arg in argv[1:]):
      sys.exit(0)
    raise exit_request


def describe_os_error(error):
  """One line for an OSError: the path and what went wrong."""
  path = error.filename if error.filename is not None else ""
  reason = error.strerror or str(error)
  return f"{path}: {reason}" if path else reason


def fail(message):
  """Ends the program with ``error: message`` on stderr and exit code 1."""
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.exit(1)
