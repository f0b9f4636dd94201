"""``python -m inversion``: flags -> train.Config -> train.train -> figures,
TensorBoard and results.json.  ``--helpfull`` lists the flags.

The experiment itself is ``train.py``; this file only adapts it to the
command line: it validates the flags (all of them before anything runs),
loads MNIST, gives every training stage a progress line, a NaN/divergence
guard and TensorBoard scalars, and writes what ``train`` returns.
"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

from absl import flags
import numpy as np
import tensorflow as tf

from inversion import plots
from inversion import train
from tfscratch import loop
from tfscratch.lab import cli
from tfscratch.lab.errors import DataError
from tfscratch.lab.errors import ScratchError
from tfscratch.lab.mnist import load_mnist
from tfscratch.lab.monitor import Guard
from tfscratch.lab.monitor import Monitor
from tfscratch.lab.outputs import RunOutputs
from tfscratch.lab.seeding import set_seed

FLAGS = flags.FLAGS
DEFAULTS = train.Config()
# TensorBoard keeps every step's loss, as in the other packages.
MAX_STEPS = 1_000_000

cli.define_steps(DEFAULTS.steps, help_text="Classifier training steps (at "
                 f"most {MAX_STEPS:,}).", maximum=MAX_STEPS)
cli.define_batch_size(DEFAULTS.batch_size, "Examples per training batch, for "
                      "the classifier and for inverse training.")
cli.define_learning_rate(DEFAULTS.learning_rate,
                         help_text="Classifier Adagrad learning rate.")
cli.define_batch_order(DEFAULTS.batch_order)
cli.define_eval_every(DEFAULTS.eval_every)
# Each later stage has --<stage>_steps and --<stage>_learning_rate.
for _stage, _steps_help, _rate_help in (
    ("inverse", "Inverse-training steps (W1_inv, W2_inv).",
     "Inverse-training Adagrad learning rate."),
    ("generate", "Gradient-descent steps on the free layer-2 codes of the "
     "generated digits.", "Gradient-descent learning rate for the generated "
     "digits' codes."),
    ("inversion", "Adam steps of gradient inversion and of the "
     "class-conditional images.", "Adam learning rate of gradient inversion "
     "and of the class-conditional images (on the pixels' logits).")):
  cli.define_steps(getattr(DEFAULTS, f"{_stage}_steps"),
                   name=f"{_stage}_steps", help_text=_steps_help,
                   maximum=MAX_STEPS)
  cli.define_learning_rate(getattr(DEFAULTS, f"{_stage}_learning_rate"),
                           name=f"{_stage}_learning_rate",
                           help_text=_rate_help)
cli.define_float("confidence", DEFAULTS.confidence, "Inverse training uses "
                 "only examples whose largest softmax probability exceeds "
                 "this.", minimum=0)
flags.register_validator("confidence", lambda value: value < 1,
                         "--confidence must be below 1 (no softmax output "
                         "exceeds 1)")
for _name, _help in (
    ("tv_weight", "Weight of the total-variation prior in gradient inversion "
     "(0 turns it off)."),
    ("l2_weight", "Weight of the squared-norm prior in gradient inversion."),
    ("class_tv_weight", "Weight of the total-variation prior for the "
     "class-conditional images (no target image to match, so a smoother "
     "prior than --tv_weight)."),
    ("class_l2_weight", "Weight of the squared-norm prior for the "
     "class-conditional images.")):
  cli.define_float(_name, getattr(DEFAULTS, _name), _help, minimum=0)
cli.define_probability("initial_pixel", DEFAULTS.initial_pixel, "Value every "
                       "pixel starts from in gradient inversion; dark, like "
                       "MNIST's background.")
flags.DEFINE_integer("num_eval", DEFAULTS.num_eval, "Test images "
                     "reconstructed by both methods for the L1 error and "
                     "class agreement (the first 36 also make the figures).",
                     lower_bound=plots.FIGURE_IMAGES, upper_bound=10000)
cli.define_log_every(DEFAULTS.log_every)
cli.define_run_flags(default_output_dir="runs/inversion")
cli.define_data_dir_flag()


MONITORS = {}  # stage -> its Monitor, for the trace counts of its writer


def logger(stage, total_steps):
  """The ``log`` of one training stage (train.py's module docstring):
  progress lines, the NaN/divergence guard, and TensorBoard scalars
  ``<stage>/loss`` and ``<stage>/<name>`` for every extra scalar."""
  monitor = MONITORS[stage] = Monitor(
      total_steps, every=FLAGS.log_every,
      guard=Guard(FLAGS.divergence_factor, FLAGS.divergence_patience, stage),
      label=stage, tag=f"{stage}/loss")

  def log(first_step, losses, **scalars):
    losses = monitor.record(first_step, losses)
    last_step = first_step + len(losses)
    for name, values in scalars.items():
      if np.ndim(values) == 0:  # one value, after the call's last step
        tf.summary.scalar(f"{stage}/{name}", values, step=last_step)
        continue
      for offset, value in enumerate(values):
        if np.isfinite(value):  # NaN marks a step without a value
          tf.summary.scalar(f"{stage}/{name}", value,
                            step=first_step + offset + 1)

  return log


def main(argv):
  del argv
  config = cli.config_from_flags(train.Config)
  set_seed(config.seed)
  # The blog's mnist.train: training images 5,000-59,999 (TensorFlow 1's
  # read_data_sets kept the first 5,000 for validation). Loaded before
  # RunOutputs: bad data, no run directory.
  mnist = load_mnist(FLAGS.data_dir, validation_first=True)
  if config.batch_size > len(mnist.train):
    raise DataError(f"--batch_size={config.batch_size} exceeds the "
                    f"{len(mnist.train)} training images")
  if config.num_eval > len(mnist.test):
    raise DataError(f"--num_eval={config.num_eval} exceeds the "
                    f"{len(mnist.test)} test images")
  outputs = RunOutputs(FLAGS.output_dir, overwrite=FLAGS.overwrite,
                       protected=[mnist.source])
  with outputs.summary_writer.as_default():
    try:
      results = train.train(config, mnist, logger)
    except train.NoConfidentExamples as error:
      raise ScratchError(str(error)) from error
    plots.save_figures(outputs, results, config)

  print(f"classifier test accuracy: {results.test_accuracy:.4f}", flush=True)
  print("generated-digit confidences: " + ", ".join(
      f"{digit}: {p:.4f}" for digit, p in
      zip(train.GENERATED_DIGITS, results.generated_confidence)), flush=True)
  for method, metrics in results.reconstruction.items():
    print(f"{method}: " + ", ".join(f"{k} {v:.4f}" for k, v in
                                    metrics.items()), flush=True)
  for name, example in results.examples.items():
    print(f"{name} (label {example['label']}), the network's class: " +
          ", ".join(f"{method} {seen['class']} (p {seen['probability']:.2f})"
                    for method, seen in example.items() if method != "label"),
          flush=True)
  outputs.finish({
      "test_accuracy": results.test_accuracy,
      "generated_confidence": results.generated_confidence.tolist(),
      "reconstruction": results.reconstruction,
      "reconstruction_images": config.num_eval,
      "blog_examples": results.examples,
      "l1_error_baselines": results.l1_error_baselines,
      "class_image_confidence": results.class_image_confidence.tolist(),
      "inverse_confident_fraction": results.confident_fraction,
      "trace_counts": {**results.trace_counts, **loop.trace_counts(**{
          f"{stage}_loss_writer": monitor.write_losses
          for stage, monitor in MONITORS.items()})},
  })


if __name__ == "__main__":
  cli.run(main)
