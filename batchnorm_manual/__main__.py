"""Trains the post's sigmoid net with and without batch normalization, shows
why inference needs the moving averages, and (with --lr_sweep) measures the
BN paper's three claims over learning rates and seeds. --post_version picks
the 2016 original post's setting (default) or the revised post's.
``python -m batchnorm_manual --helpfull`` lists the flags.

This file only connects the command line to ``train.py`` and writes what it
returns: results.json, the figures, TensorBoard logs."""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import dataclasses
import math
import os

from absl import flags
import tensorflow as tf

from batchnorm_manual import claims, data, plots, train
from batchnorm_manual.model import HIDDEN_SIZES
from tfscratch import loop
from tfscratch.lab import cli
from tfscratch.lab.mnist import load_mnist
from tfscratch.lab.monitor import Guard, Monitor, print_line
from tfscratch.lab.outputs import RunOutputs
from tfscratch.lab.seeding import set_seed

# Far beyond any use (100x the blog's run), and it keeps the curves and the
# losses held in memory for results.json small (4 bytes a step and net).
MAX_STEPS = 1_000_000

FLAGS = flags.FLAGS
flags.DEFINE_enum("post_version", "2016", train.POST_VERSIONS, "Which "
                  "post's setting: 2016 (the original: 784-100-100-100-10, "
                  "10,000 steps, momentum 0.99) or revised (the post online "
                  "today, its inference section: 784-100-100-10, 40,000 "
                  "steps, moving averages with decay 0.999). --steps and "
                  "--momentum given explicitly override the preset.")
flags.DEFINE_enum("split", "blog", ("blog", "first"), "Training images: blog "
                  "= 5,000-59,999 (TensorFlow 1's mnist.train, the post's); "
                  "first = 0-54,999.")
cli.define_batch_order()
cli.define_steps(10_000, help_text="Training steps (batches) for each "
                 "network; the 2016 post ran 10,000 (the revised preset "
                 "40,000). Also the budget of every --lr_sweep run. At most "
                 f"{MAX_STEPS:,}.", maximum=MAX_STEPS)
cli.define_batch_size(60, "Examples per training batch (the blog's 60). At "
                      "least 2, at most the 55,000 training images.")
cli.define_learning_rate(0.01, help_text="SGD learning rate of the main run. "
                         "The loss is summed over the batch, so the step per "
                         "example is this, not this / batch_size.")
cli.define_float("momentum", 0.99, "Batch normalization momentum, in [0, 1): "
                 "the weight of the OLD value in moving = moving * momentum + "
                 "batch * (1 - momentum), as in Keras (PyTorch's momentum is 1 "
                 "minus this).", minimum=0)
cli.define_float("epsilon", 1e-3, "Added to the variance before the square "
                 "root in batch normalization; > 0 keeps 1 / sqrt(variance + "
                 "epsilon) finite.", minimum=0, exclusive=True)
cli.define_eval_every(50)
cli.define_log_every(1000)
flags.DEFINE_string("lr_sweep", "", "Comma-separated learning rates at which "
                    "both nets are trained (for --steps steps, from "
                    "--sweep_seeds seeds) to measure the BN paper's claims "
                    "(reproduce: make reproduce-batchnorm-claims). Empty: no "
                    "sweep. The --learning_rate run of --seed is reused.")
flags.DEFINE_integer("sweep_seeds", 1, "The sweep trains from seeds --seed "
                     ".. --seed + this - 1 (weights and shuffles).",
                     lower_bound=1, upper_bound=100)
flags.DEFINE_integer("tracked_unit", 0, "Which sigmoid of the last hidden "
                     "layer the input-distribution figure follows.",
                     lower_bound=0, upper_bound=HIDDEN_SIZES[-1] - 1)
cli.define_run_flags(default_output_dir="runs/batchnorm_manual")
cli.define_data_dir_flag()

flags.register_validator(
    "batch_size", lambda v: v >= 2,
    "--batch_size must be at least 2: the variance of a batch of one example "
    "is zero, so batch normalization would output beta for every input and "
    "pass no gradient to the weights below it")
flags.register_validator("momentum", lambda v: v < 1,
                         "--momentum must be in [0, 1)")


def parse_learning_rates(text):
  """"0.01,0.1" -> (0.01, 0.1); raises ValueError unless all are finite,
  > 0, and distinct as results.json names them (``f"{rate:g}"``)."""
  rates = tuple(float(item) for item in text.split(",") if item.strip())
  if not all(math.isfinite(rate) and rate > 0 for rate in rates):
    raise ValueError(f"not all finite and positive: {text}")
  if len({f"{rate:g}" for rate in rates}) != len(rates):
    raise ValueError(f"two rates are the same to 6 digits: {text}")
  return rates


def _valid_learning_rates(text):
  try:
    parse_learning_rates(text)
  except ValueError:
    return False
  return True


flags.register_validator(
    "lr_sweep", _valid_learning_rates,
    "--lr_sweep must be a comma-separated list of distinct, finite, positive "
    "learning rates, e.g. 0.01,0.1,0.5 (or empty for no sweep)")


def config_from_flags():
  """The preset of --post_version, with every flag the user gave (and every
  flag the preset does not set) on top."""
  preset = train.PRESETS[FLAGS.post_version]
  values = {field.name: FLAGS[field.name].value
            for field in dataclasses.fields(train.Config)
            if field.name in FLAGS and field.name != "post_version" and (
                FLAGS[field.name].present or field.name not in preset)}
  values["lr_sweep"] = parse_learning_rates(FLAGS.lr_sweep)
  return train.preset(FLAGS.post_version, **values)


# Each main-run net's TensorBoard loss writer, for results.json's
# trace_counts (the sweep's monitors write nothing, so trace nothing).
LOSS_WRITERS = {}


def main_run_callbacks(name, steps):
  """Progress, the divergence guard and TensorBoard for one net of the main
  run: a blown-up net stops the program before anything is published."""
  guard = Guard(FLAGS.divergence_factor, FLAGS.divergence_patience,
                label=f"{name} net")
  monitor = Monitor(steps, FLAGS.log_every, guard, label=name,
                    tag=f"loss/{name}")
  LOSS_WRITERS[f"{name}_loss_writer"] = monitor.write_losses

  def on_eval(evaluation):
    step = evaluation.step
    tf.summary.scalar(f"test_accuracy/{name}", evaluation.accuracy, step=step)
    if name == "batchnorm":
      tf.summary.scalar("test_accuracy/batchnorm_test_set_statistics",
                        evaluation.accuracy_as_one_batch, step=step)
    tag = "last_hidden_sigmoid_input"
    tf.summary.histogram(f"{tag}/unit_{FLAGS.tracked_unit}/{name}",
                         evaluation.sigmoid_inputs[:, FLAGS.tracked_unit],
                         step=step)
    # The whole layer (a million values) only every --log_every steps: a
    # histogram of it takes longer than 50 training steps.
    if step % FLAGS.log_every == 0 or step == steps:
      tf.summary.histogram(f"{tag}/all_units/{name}",
                           evaluation.sigmoid_inputs, step=step)

  return {"log": monitor.record, "on_eval": on_eval}


def sweep_callbacks(summary_writer, steps):
  """Progress lines and the test accuracy in TensorBoard for the runs of the
  sweep (not their losses: the sweep runs without a default summary writer,
  so the Monitor writes none, as it would cost more than the training).

  No divergence guard: in the sweep a learning rate too large is a finding
  (the net never reaches 90%, or its loss turns NaN and ``train`` records
  the step), not a failure.
  """

  def callbacks(key, name, seed):
    monitor = Monitor(steps, FLAGS.log_every,
                      label=f"seed {seed} lr={key} {name}")

    def on_eval(evaluation):
      with summary_writer.as_default():
        tf.summary.scalar(
            f"lr_sweep/seed={seed}/lr={key}/test_accuracy/{name}",
            evaluation.accuracy, step=evaluation.step)

    return {"log": monitor.record, "on_eval": on_eval}

  return callbacks


def describe_steps_to_accuracy(name, reached, diverged_at):
  """"With BN reaches 90% at step 400, 95% never (diverged at step 7)"."""
  steps = ", ".join(f"{float(threshold):.0%} " +
                    ("never" if step is None else f"at step {step}")
                    for threshold, step in reached.items())
  diverged = "" if diverged_at is None else f" (diverged at step {diverged_at})"
  return f"{plots.LABELS[name]} reaches {steps}{diverged}"


def curve_record(curve, steps):
  """One sweep run for results.json: a net that diverged has None after its
  last evaluation."""
  pad = [None] * (len(steps) - len(curve.accuracy))
  return {key: getattr(curve, key) + pad
          for key in ("accuracy", "train_accuracy", "train_loss",
                      "test_loss")}


def summarize_sweep(sweep, seed):
  """results.json's steps_to_accuracy (of ``seed``) and every run's curves
  {seed: {rate: {"steps", net: {...}}}}."""
  steps_to_accuracy, curves = {}, {}
  for key, run in sweep.get(seed, {}).items():
    steps_to_accuracy[key] = {
        name: train.steps_to_reach(curve) for name, curve in run.items()}
    steps_to_accuracy[key].update(
        steps_trained=max(curve.steps[-1] for curve in run.values()),
        diverged_at={name: curve.diverged_at for name, curve in run.items()},
        best_accuracy={name: max(curve.accuracy)
                       for name, curve in run.items()})
    print_line(f"seed {seed}, lr {key}: " + "; ".join(
        describe_steps_to_accuracy(name, steps_to_accuracy[key][name],
                                   curve.diverged_at)
        for name, curve in run.items()))
  for run_seed, runs in sweep.items():
    curves[str(run_seed)] = {}
    for key, run in runs.items():
      steps = max((curve.steps for curve in run.values()), key=len)
      curves[str(run_seed)][key] = {"steps": steps, **{
          name: curve_record(curve, steps) for name, curve in run.items()}}
  return steps_to_accuracy, curves


def describe_claims(summary):
  """Progress lines with the claims' headline numbers."""
  def text(entry):
    return "-" if entry is None else (
        f"{entry['mean']:.4g} +- {entry['std']:.2g} (n={entry['n']})")
  for rate, nets in summary["learning_rates"].items():
    print_line(f"lr {rate}: final accuracy " + "; ".join(
        f"{name} {text(entry['final_accuracy'])}, diverged "
        f"{entry['diverged']}" for name, entry in nets.items()))
  print_line(f"best rates: {summary['best_rate']}")
  for name, entry in summary["regularisation"].items():
    print_line(f"{name} at lr {entry['learning_rate']}: train - test "
               f"accuracy {text(entry['accuracy_gap'])}, test - train loss "
               f"{text(entry['loss_gap'])}")
  for key, entry in summary["speed_up"].items():
    print_line(f"to {key}: best rates {entry['best_rate']}, plain / BN "
               f"steps {text(entry.get('ratio'))}")


def load_split(data_dir, split):
  """MNIST with the chosen training images (``load_mnist``'s
  validation_first=True is TensorFlow 1's split, the post's)."""
  return load_mnist(data_dir, validation_size=5000,
                    validation_first=split == "blog")


def main(argv):
  del argv
  config = config_from_flags()
  set_seed(config.seed)
  mnist = load_split(FLAGS.data_dir, config.split)
  if config.batch_size > len(mnist.train):
    cli.fail(f"--batch_size={config.batch_size} is more than the "
             f"{len(mnist.train):,} training images; a batch must hold "
             "distinct images, so use at most that many")
  # The data directory may not be replaced by (or be inside) the output.
  data_dir = mnist.source if os.path.isdir(mnist.source) else None
  outputs = RunOutputs(FLAGS.output_dir, overwrite=FLAGS.overwrite,
                       protected=[data_dir])
  print_line(f"{config.post_version} post's setting: hidden layers "
             f"{config.hidden_sizes}, {config.steps} steps, momentum "
             f"{config.momentum}; MNIST from {mnist.source}: "
             f"{len(mnist.train)} training images ({config.split} split, "
             f"{config.batch_order}), {len(mnist.test)} test images")
  learners = train.build(config, mnist)
  with outputs.summary_writer.as_default():
    main_run = train.train_both(
        config, learners, config.learning_rate,
        lambda name: main_run_callbacks(name, config.steps),
        look_inside=True)
    # Before the sweep restarts the nets: inference one example at a time,
    # on the whole test set and on its first 100 images (the revised post's).
    single_example, predicted_classes = train.single_example_accuracy(
        learners["batchnorm"], mnist.test.images, mnist.test.labels)
    single_example_first_100, _ = train.single_example_accuracy(
        learners["batchnorm"], mnist.test.images[:100],
        mnist.test.labels[:100])
    test_accuracy = {name: curve.accuracy[-1]
                     for name, curve in main_run.items()}
    test_set_statistics = main_run["batchnorm"].accuracy_as_one_batch
    print_line(f"test accuracy after {config.steps} steps: without BN "
               f"{test_accuracy['plain']:.4f}, with BN "
               f"{test_accuracy['batchnorm']:.4f} (moving averages), "
               f"{test_set_statistics[-1]:.4f} (test set as one batch)")
    print_line("one example at a time, with BN: batch statistics "
               f"{single_example['batch_statistics']:.4f} (every image "
               f"classified as {predicted_classes}), moving averages "
               f"{single_example['population_statistics']:.4f}; first 100 "
               f"test images: {single_example_first_100}")
  sweep = train.sweep(config, learners, main_run,
                      sweep_callbacks(outputs.summary_writer, config.steps))
  steps_to_accuracy, sweep_curves = summarize_sweep(sweep, config.seed)
  # The sweep always holds the main run; the claims need --lr_sweep's rates.
  claims_summary = claims.summarize(sweep) if config.lr_sweep else None
  if claims_summary is not None:
    describe_claims(claims_summary)

  outputs.save_figure(plots.plot_accuracy(main_run), "accuracy.png")
  outputs.save_figure(plots.plot_sigmoid_input(main_run, config.tracked_unit),
                      "sigmoid_input.png")
  outputs.save_figure(plots.plot_post_sigmoid_means(main_run),
                      "post_sigmoid_means.png")
  if claims_summary is not None:
    outputs.save_figure(plots.plot_sweep(sweep[config.seed]),
                        "lr_sweep.png")
    outputs.save_figure(plots.plot_claims(sweep, claims_summary),
                        "claims.png")
  final_accuracy = {name: claims.final_mean(curve, curve.accuracy)
                    for name, curve in main_run.items()}
  outputs.finish({
      "post_version": config.post_version,
      "settings": {**dataclasses.asdict(config),
                   "training_images": len(mnist.train)},
      "test_accuracy": test_accuracy["batchnorm"],
      "test_accuracy_per_net": test_accuracy,
      "test_accuracy_last_1000_steps_mean": final_accuracy,
      "test_accuracy_test_set_statistics": test_set_statistics[-1],
      "single_example_accuracy": single_example,
      "single_example_accuracy_first_100": single_example_first_100,
      "single_example_batch_statistics_classes": predicted_classes,
      "steps_to_accuracy": steps_to_accuracy,
      "claims": claims_summary,
      "final_loss": main_run["batchnorm"].final_loss(),
      "final_loss_per_net": {name: curve.final_loss()
                             for name, curve in main_run.items()},
      "curves": {
          "steps": main_run["batchnorm"].steps,
          "test_accuracy": {name: curve.accuracy
                            for name, curve in main_run.items()},
          "test_accuracy_test_set_statistics": test_set_statistics,
          "train_accuracy": {name: curve.train_accuracy
                             for name, curve in main_run.items()},
          "train_loss": {name: curve.train_loss
                         for name, curve in main_run.items()},
          "test_loss": {name: curve.test_loss
                        for name, curve in main_run.items()},
          "sigmoid_input_percentiles": {
              "percentiles": list(train.PERCENTILES),
              "unit": config.tracked_unit,
              **{name: curve.percentiles for name, curve in main_run.items()}},
          "post_figure_sigmoid_input_means": {
              "layer": train.POST_FIGURE_LAYER + 1,
              "units": list(range(train.POST_FIGURE_UNITS)),
              **{name: curve.post_figure_means
                 for name, curve in main_run.items()}},
          "lr_sweep": sweep_curves,
      },
      "trace_counts": {**train.trace_counts(learners),
                       **loop.trace_counts(**LOSS_WRITERS)},
  })


if __name__ == "__main__":
  cli.run(main)
