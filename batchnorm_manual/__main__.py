"""Trains the blog's sigmoid net with and without batch normalization, shows
why inference needs the moving averages, and measures the steps each net needs
to reach 90% and 95% test accuracy at several learning rates.
``python -m batchnorm_manual --helpfull`` lists the flags."""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import dataclasses
import math
from typing import Callable, NamedTuple

from absl import flags
import numpy as np
import tensorflow as tf

from batchnorm_manual.model import (BatchNormNet, HIDDEN_SIZES, PlainNet,
                                    initial_weights, make_evaluate,
                                    make_train_step, predict_one_at_a_time)
from tfscratch import nn
from tfscratch.lab import cli
from tfscratch.lab.figures import plt
from tfscratch.lab.mnist import load_mnist
from tfscratch.optimizers import SGD
from tfscratch.lab.outputs import RunOutputs
from tfscratch.lab.progress import Progress
from tfscratch.lab.seeding import set_seed

FLAGS = flags.FLAGS
flags.DEFINE_integer("steps", 10_000, "Training steps (batches) for each "
                     "network; the blog ran 10,000. Also the budget of every "
                     "--lr_sweep run.", lower_bound=1)
flags.DEFINE_integer("batch_size", 60, "Examples per training batch (the "
                     "blog's 60). At least 2.")
flags.DEFINE_float("learning_rate", 0.01, "SGD learning rate of the main "
                   "run. The loss is summed over the batch, so the step per "
                   "example is this, not this / batch_size.")
flags.DEFINE_float("momentum", 0.99, "Batch normalization momentum: the "
                   "weight of the OLD value in moving = moving * momentum + "
                   "batch * (1 - momentum), as in Keras (PyTorch's momentum "
                   "is 1 minus this).")
flags.DEFINE_float("epsilon", 1e-3, "Added to the variance before the square "
                   "root in batch normalization.")
flags.DEFINE_integer("eval_every", 50, "Steps between evaluations on the "
                     "10,000 test images (the blog's 50); also the resolution "
                     "of the steps-to-accuracy table.", lower_bound=1)
flags.DEFINE_string("lr_sweep", "0.01,0.1,0.5", "Comma-separated learning "
                    "rates at which both nets are trained (for up to --steps "
                    "steps) to count the steps to 90% and 95% test accuracy. "
                    "Empty: no sweep. The --learning_rate run is reused.")
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
flags.register_validator("learning_rate", lambda v: v > 0,
                         "--learning_rate must be positive")
flags.register_validator("momentum", lambda v: 0 <= v < 1,
                         "--momentum must be in [0, 1)")
flags.register_validator("epsilon", lambda v: v > 0,
                         "--epsilon must be positive (it keeps 1 / sqrt("
                         "variance + epsilon) finite)")


def parse_learning_rates(text):
  """"0.01,0.1" -> [0.01, 0.1]; raises ValueError unless all are > 0."""
  rates = [float(item) for item in text.split(",") if item.strip()]
  if not all(rate > 0 and math.isfinite(rate) for rate in rates):
    raise ValueError(f"not all positive: {text}")
  return rates


def _valid_learning_rates(text):
  try:
    parse_learning_rates(text)
  except ValueError:
    return False
  return True


flags.register_validator(
    "lr_sweep", _valid_learning_rates,
    "--lr_sweep must be a comma-separated list of positive learning rates, "
    "e.g. 0.01,0.1,0.5 (or empty for no sweep)")

NETS = ("plain", "batchnorm")
LABELS = {"plain": "Without BN", "batchnorm": "With BN"}
THRESHOLDS = (0.90, 0.95)
PERCENTILES = (15, 50, 85)
SIGMOID_INPUT_TAG = "last_hidden_sigmoid_input"


class Trainee:
  """One network, its SGD and compiled steps, built once for the program.

  Every run (the main one, then each learning rate of the sweep) starts
  with ``restart``, which puts back the initial weights and statistics and
  sets the learning rate. The same ``tf.function``s serve every run: they are
  traced once.
  """

  def __init__(self, model):
    self.model = model
    self.optimizer = SGD(model.weights, FLAGS.learning_rate)
    self.train_step = make_train_step(model, self.optimizer, FLAGS.batch_size)
    self.evaluate = make_evaluate(model, training=False)
    self._initial_values = [v.numpy() for v in model.variables]

  def restart(self, learning_rate):
    for variable, value in zip(self.model.variables, self._initial_values):
      variable.assign(value)
    # A variable, so changing it does not retrace the training step.
    self.optimizer.learning_rate.assign(learning_rate)


class PairRun(NamedTuple):
  """The record of one run of both nets; dicts are keyed by net name.

  steps: the evaluated steps. accuracy: test accuracy at each (NaN after a
  divergence). losses: training loss of each step. diverged_at: the step
  whose loss was NaN or infinite, else None.
  """
  steps: list
  accuracy: dict
  losses: dict
  diverged_at: dict


@dataclasses.dataclass
class MainRunDetails:
  """What the main run records beyond the sweep's test accuracy.

  evaluate_test_batch: the batchnorm net's ``make_evaluate(training=True)``.
  accuracy_test_set_statistics: its test accuracy at each evaluation, the
    10,000 test images normalised as one batch with their own statistics.
  percentiles: per net, at each evaluation, the 15/50/85th percentiles of
    the tracked sigmoid's input over the test set.
  """
  evaluate_test_batch: Callable
  accuracy_test_set_statistics: list = dataclasses.field(default_factory=list)
  percentiles: dict = dataclasses.field(
      default_factory=lambda: {name: [] for name in NETS})


def evaluation_steps(steps, every):
  """Steps after which to evaluate: 0 (the start), every ``every``, the end."""
  return sorted(set(range(0, steps + 1, every)) | {steps})


def steps_to_reach(steps, accuracy):
  """{"0.90": first step with accuracy >= 90% or None, "0.95": ...}."""
  reached = {}
  for threshold in THRESHOLDS:
    hits = [step for step, value in zip(steps, accuracy) if value >= threshold]
    reached[f"{threshold:.2f}"] = hits[0] if hits else None
  return reached


def describe_steps_to_accuracy(label, reached, diverged_at):
  """"With BN reaches 90% at step 400, 95% never (diverged at step 7)"."""
  steps = ", ".join(f"{float(threshold):.0%} " +
                    ("never" if step is None else f"at step {step}")
                    for threshold, step in reached.items())
  diverged = "" if diverged_at is None else f" (diverged at step {diverged_at})"
  return f"{label} reaches {steps}{diverged}"


def train_pair(mnist, trainees, learning_rate, sweep_key=None, details=None):
  """Trains the plain and the batchnorm net from the same weights on the
  same batches, evaluating both on the test set every --eval_every steps.

  Args:
    trainees: {"plain": Trainee, "batchnorm": Trainee}; restarted here.
    learning_rate: the SGD learning rate of both.
    sweep_key: the learning rate as text, for a run of the sweep; it labels
      the progress lines and the TensorBoard tags.
    details: None for a sweep run: it stops once both nets reached the top
      threshold, and a NaN loss only ends the net that diverged. For the main
      run, a MainRunDetails to fill; the run also writes TensorBoard
      histograms and losses, and a NaN loss stops the program.
  Returns:
    A PairRun.
  """
  for trainee in trainees.values():
    trainee.restart(learning_rate)
  run = PairRun([], {name: [] for name in NETS}, {name: [] for name in NETS},
                {name: None for name in NETS})
  label = "" if sweep_key is None else f"lr={sweep_key} "
  tag = "" if sweep_key is None else f"lr_sweep/lr={sweep_key}/"
  progress = {name: Progress(FLAGS.steps, label=f"{label}{name}")
              for name in NETS}
  test_images = tf.constant(mnist.test.images)
  test_labels = tf.constant(mnist.test.labels)
  checkpoints = evaluation_steps(FLAGS.steps, FLAGS.eval_every)
  for step in range(FLAGS.steps + 1):
    if step == checkpoints[len(run.steps)]:
      run.steps.append(step)
      sigmoid_inputs = {}
      for name, trainee in trainees.items():
        accuracy = float("nan")
        if run.diverged_at[name] is None:
          accuracy, sigmoid_inputs[name] = trainee.evaluate(test_images,
                                                            test_labels)
        run.accuracy[name].append(float(accuracy))
        tf.summary.scalar(f"{tag}test_accuracy/{name}", accuracy, step=step)
      if details is not None:
        # The blog's view: the test set normalised as ONE batch, with its own
        # statistics; also what the sigmoids see while the net trains.
        accuracy, sigmoid_inputs["batchnorm"] = details.evaluate_test_batch(
            test_images, test_labels)
        details.accuracy_test_set_statistics.append(float(accuracy))
        tf.summary.scalar("test_accuracy/batchnorm_test_set_statistics",
                          accuracy, step=step)
        for name in NETS:
          record_sigmoid_input(name, sigmoid_inputs[name].numpy(), step,
                               details.percentiles[name])
      elif all(run.diverged_at[name] is not None or
               run.accuracy[name][-1] >= THRESHOLDS[-1] for name in NETS):
        print(f"{label}both nets reached {THRESHOLDS[-1]:.0%} or diverged; "
              f"stopping at step {step}", flush=True)
        break
    if step == FLAGS.steps:
      break
    images, labels = nn.ordered_batch(mnist.train.images, mnist.train.labels,
                                      FLAGS.batch_size, step)
    for name, trainee in trainees.items():
      if run.diverged_at[name] is not None:
        continue
      loss = float(trainee.train_step(images, labels))
      if details is None and not math.isfinite(loss):
        run.diverged_at[name] = step + 1
        print(f"{label}{name}: loss became {loss} at step {step + 1}; this "
              "net stops here", flush=True)
        continue
      progress[name].update(step + 1, loss)  # a NaN here ends the program
      run.losses[name].append(loss)
      if details is not None:
        tf.summary.scalar(f"loss/{name}", loss, step=step + 1)
  return run


def record_sigmoid_input(name, inputs, step, percentiles):
  """Keeps the 15/50/85th percentiles of the tracked sigmoid's input over the
  test set and writes TensorBoard histograms of it and of the whole layer."""
  values = inputs[:, FLAGS.tracked_unit]
  percentiles.append(np.percentile(values, PERCENTILES).tolist())
  tf.summary.histogram(f"{SIGMOID_INPUT_TAG}/unit_{FLAGS.tracked_unit}/{name}",
                       values, step=step)
  tf.summary.histogram(f"{SIGMOID_INPUT_TAG}/all_units/{name}", inputs,
                       step=step)


def plot_accuracy(run, test_set_statistics):
  """The blog's figure: test accuracy against training steps."""
  figure, (full, zoom) = plt.subplots(1, 2, figsize=(11, 4.2))
  for axes in (full, zoom):
    for name in NETS:
      axes.plot(run.steps, run.accuracy[name], label=LABELS[name])
    axes.plot(run.steps, test_set_statistics, color="tab:orange", linestyle=":",
              linewidth=1, label="With BN, test set as one batch")
    axes.set_xlabel("Training steps")
    axes.set_ylabel("Test accuracy")
    axes.grid(alpha=0.3)
  full.set_ylim(0, 1)
  full.set_title("Batch normalization accuracy")
  zoom.set_ylim(0.85, 1)
  zoom.set_title("The same, from 85%")
  zoom.legend(loc="lower right")
  figure.tight_layout()
  return figure


def plot_sigmoid_input(steps, percentiles):
  """BN paper figure 1(b, c): percentiles of one sigmoid's input over time."""
  figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
  for axis, name in zip(axes, NETS):
    values = np.asarray(percentiles[name])
    axis.fill_between(steps, values[:, 0], values[:, 2], alpha=0.25,
                      label="15th to 85th percentile")
    axis.plot(steps, values[:, 1], label="median")
    axis.plot(steps, values[:, [0, 2]], color="tab:blue", linewidth=0.8)
    axis.set_title(f"{LABELS[name]}: input to sigmoid {FLAGS.tracked_unit} "
                   "of layer 3" + ("\n(test set normalised as one batch)"
                                   if name == "batchnorm" else ""))
    axis.set_xlabel("Training steps")
    axis.grid(alpha=0.3)
  axes[0].set_ylabel("Sigmoid input over the 10,000 test images")
  axes[1].legend(loc="upper right")
  figure.tight_layout()
  return figure


def plot_sweep(sweep):
  """Test accuracy against steps for every learning rate of the sweep."""
  figure, axes = plt.subplots(1, len(sweep), figsize=(4.2 * len(sweep), 3.8),
                              squeeze=False, sharey=True)
  for axis, (rate, run) in zip(axes[0], sweep.items()):
    for name in NETS:
      axis.plot(run.steps, run.accuracy[name], label=LABELS[name])
    for threshold in THRESHOLDS:
      axis.axhline(threshold, color="grey", linestyle=":", linewidth=1)
    axis.set_title(f"learning rate {rate}")
    axis.set_xlabel("Training steps")
    axis.set_ylim(0, 1)  # a stuck net stays visible near the bottom
    axis.grid(alpha=0.3)
  axes[0][0].set_ylabel("Test accuracy")
  axes[0][-1].legend(loc="lower right")
  figure.tight_layout()
  return figure


def main(argv):
  del argv
  set_seed(FLAGS.seed)
  mnist = load_mnist(FLAGS.data_dir, validation_size=5000)
  outputs = RunOutputs(FLAGS.output_dir, overwrite=FLAGS.overwrite)
  print(f"MNIST from {mnist.source}: {len(mnist.train)} training, "
        f"{len(mnist.test)} test images", flush=True)
  weights = initial_weights(FLAGS.seed)
  trainees = {"plain": Trainee(PlainNet(weights)),
              "batchnorm": Trainee(BatchNormNet(weights, FLAGS.momentum,
                                                FLAGS.epsilon))}
  bn_net = trainees["batchnorm"].model
  details = MainRunDetails(make_evaluate(bn_net, training=True))
  with outputs.summary_writer.as_default():
    main_run = train_pair(mnist, trainees, FLAGS.learning_rate,
                          details=details)
    test_accuracy = {name: main_run.accuracy[name][-1] for name in NETS}
    test_set_statistics = details.accuracy_test_set_statistics

    # Before the sweep restarts the net: inference one example at a time.
    single_example = {}
    for key, training in (("batch_statistics", True),
                          ("population_statistics", False)):
      predictions = predict_one_at_a_time(bn_net, mnist.test.images,
                                          training).numpy()
      single_example[key] = float(np.mean(predictions == mnist.test.labels))
      if training:
        predicted_classes = np.unique(predictions).tolist()
    print(f"test accuracy after {FLAGS.steps} steps: without BN "
          f"{test_accuracy['plain']:.4f}, with BN "
          f"{test_accuracy['batchnorm']:.4f} (moving averages), "
          f"{test_set_statistics[-1]:.4f} (test set as one batch)",
          flush=True)
    print("one example at a time, with BN: batch statistics "
          f"{single_example['batch_statistics']:.4f} (every image classified "
          f"as {predicted_classes}), moving averages "
          f"{single_example['population_statistics']:.4f}", flush=True)

    sweep = {}
    for rate in parse_learning_rates(FLAGS.lr_sweep):
      key = f"{rate:g}"
      sweep[key] = (main_run if rate == FLAGS.learning_rate else
                    train_pair(mnist, trainees, rate, sweep_key=key))

  steps_to_accuracy = {}
  for key, run in sweep.items():
    steps_to_accuracy[key] = {
        name: steps_to_reach(run.steps, run.accuracy[name]) for name in NETS}
    steps_to_accuracy[key].update(
        steps_trained=run.steps[-1], diverged_at=run.diverged_at,
        best_accuracy={name: float(np.nanmax(run.accuracy[name]))
                       for name in NETS})
    print(f"lr {key}: " + "; ".join(
        describe_steps_to_accuracy(LABELS[name], steps_to_accuracy[key][name],
                                   run.diverged_at[name])
        for name in NETS), flush=True)

  outputs.save_figure(plot_accuracy(main_run, test_set_statistics),
                      "accuracy.png")
  outputs.save_figure(plot_sigmoid_input(main_run.steps, details.percentiles),
                      "sigmoid_input.png")
  if sweep:
    outputs.save_figure(plot_sweep(sweep), "lr_sweep.png")
  last = min(100, FLAGS.steps)
  outputs.finish({
      "test_accuracy": test_accuracy,
      "test_accuracy_test_set_statistics": test_set_statistics[-1],
      "single_example_accuracy": single_example,
      "single_example_batch_statistics_classes": predicted_classes,
      "steps_to_accuracy": steps_to_accuracy,
      "final_loss": {name: float(np.mean(main_run.losses[name][-last:]))
                     for name in NETS},
      "curves": {
          "steps": main_run.steps,
          "test_accuracy": main_run.accuracy,
          "test_accuracy_test_set_statistics": test_set_statistics,
          "sigmoid_input_percentiles": {
              "percentiles": list(PERCENTILES),
              "unit": FLAGS.tracked_unit,
              **details.percentiles},
          "lr_sweep": {
              key: {"steps": run.steps,
                    **{name: [None if math.isnan(value) else value
                              for value in run.accuracy[name]]  # diverged
                       for name in NETS}}
              for key, run in sweep.items()},
      },
      "trace_count": {name: trainees[name].train_step
                      .experimental_get_tracing_count() for name in NETS},
  })


if __name__ == "__main__":
  cli.run(main)
