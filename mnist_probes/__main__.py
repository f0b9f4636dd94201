"""Trains the blog's MLP, probes every layer with logistic regression, draws
each layer's principal components, and reruns the failed auxiliary-loss idea.
``python -m mnist_probes --helpfull`` lists the flags.

This file only adapts: flags -> ``train.Config`` -> ``train.run`` ->
results.json, figures and TensorBoard (the experiment is ``train.py``)."""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import os

from absl import flags
import tensorflow as tf

from mnist_probes import data, plots, train
from tfscratch import loop
from tfscratch.lab import cli
from tfscratch.lab.errors import DataError
from tfscratch.lab.monitor import Guard, Monitor, print_line
from tfscratch.lab.outputs import RunOutputs
from tfscratch.lab.seeding import set_seed

TRAIN_SPLIT_SIZE = 55_000
TEST_SPLIT_SIZE = 10_000
MAX_STEPS = 1_000_000  # TensorBoard keeps every step's loss: ~100 MB here
SNAPSHOT_MEMORY_LIMIT = 2**30  # bytes of layer snapshots kept for the sweep
BLOG = {
    "network_test_accuracy": 0.971,
    "probe_accuracy": [0.828, 0.931, 0.953, 0.966],
    "aux_experiment": {"base_accuracy": 0.971, "aux_accuracy": 0.9707},
}

FLAGS = flags.FLAGS
flags.DEFINE_enum("split", "blog", data.SPLITS,
                  "Which 55,000 of the 60,000 training images train: blog = "
                  "images 5,000-59,999 (TensorFlow 1's read_data_sets, as "
                  "the blog); first = images 0-54,999.")
cli.define_steps(10_000, help_text="SGD steps for the network (and again for "
                 "the auxiliary-loss network).", maximum=MAX_STEPS)
cli.define_batch_size(50, help_text="Images per SGD step (at most "
                      f"{TRAIN_SPLIT_SIZE // 2:,}: the walk skips the last "
                      "batch of the training split).")
cli.define_learning_rate(0.01, help_text="SGD learning rate (the loss is "
                         "summed, not averaged, over the batch).")
cli.define_eval_every(100)
cli.define_log_every(500)
flags.DEFINE_integer("probe_train_size", 1000, "The probes train on the "
                     "representations of this many first training images.",
                     lower_bound=10, upper_bound=TRAIN_SPLIT_SIZE)
flags.DEFINE_integer("probe_test_size", 1000, "The probes are scored on this "
                     "many first test images (their digits 0-3 are the "
                     "PCA plots' points).", lower_bound=10,
                     upper_bound=TEST_SPLIT_SIZE)
cli.define_float("probe_c", 1.0, "Inverse L2 strength C of the probes' "
                 "penalty ||W||^2 / (2C) (scikit-learn's C).", minimum=0,
                 exclusive=True)
cli.define_float("probe_tolerance", 1e-8, "A probe fit stops when every "
                 "component of the gradient of its objective / n is this "
                 "small.", minimum=0, exclusive=True)
cli.define_float("aux_weight", 0.1, "Weight of the auxiliary L1 loss (the "
                 "blog's 1e-1).", minimum=0)
flags.DEFINE_integer("aux_components", 3, "Principal components of the "
                     "trained net's layer 3 that layer 1's head regresses.",
                     lower_bound=1, upper_bound=100)
flags.DEFINE_list("sweep_steps", None,
                  "Training steps at which every layer is probed again "
                  "(each <= --steps); empty for no sweep. Default: 0, 100, "
                  "1000 and --steps, those not past --steps (0,100,1000,10000 "
                  "at the default --steps).")
flags.DEFINE_list("sweep_train_sizes", ["100", "1000", "10000"],
                  "Probe training-set sizes of the sweep (each <= "
                  f"{TRAIN_SPLIT_SIZE:,}).")
cli.define_run_flags(default_output_dir="runs/mnist_probes")
cli.define_data_dir_flag()


def _integers(values):
  try:
    return [int(value) for value in values]
  except ValueError:
    return None


flags.register_validator(
    "batch_size", lambda v: v <= TRAIN_SPLIT_SIZE // 2,
    f"--batch_size must be at most {TRAIN_SPLIT_SIZE // 2:,} (half the "
    "training split: the walk leaves out its last batch)")
flags.register_validator(
    "sweep_train_sizes",
    lambda v: _integers(v) is not None and all(
        1 <= size <= TRAIN_SPLIT_SIZE for size in _integers(v)),
    f"--sweep_train_sizes must be integers in [1, {TRAIN_SPLIT_SIZE}] (the "
    "training split)")
flags.register_multi_flags_validator(
    ["sweep_steps", "steps"],
    lambda f: f["sweep_steps"] is None or (
        _integers(f["sweep_steps"]) is not None and all(
            0 <= step <= f["steps"] for step in _integers(f["sweep_steps"]))),
    "--sweep_steps must be integers in [0, --steps]")


def config_from_flags():
  return cli.config_from_flags(
      train.Config,
      sweep_steps=(None if FLAGS.sweep_steps is None
                   else tuple(_integers(FLAGS.sweep_steps))),
      sweep_train_sizes=tuple(_integers(FLAGS.sweep_train_sizes)))


def _snapshots_fit(f):
  sweep_steps = (None if f["sweep_steps"] is None
                 else _integers(f["sweep_steps"]))
  sizes = _integers(f["sweep_train_sizes"])
  if (sweep_steps is None and f["sweep_steps"] is not None) or sizes is None:
    return True  # the flag's own validator reports it
  config = train.Config(
      steps=f["steps"], probe_train_size=f["probe_train_size"],
      probe_test_size=f["probe_test_size"], sweep_steps=sweep_steps,
      sweep_train_sizes=tuple(sizes))
  return train.snapshot_bytes(config) <= SNAPSHOT_MEMORY_LIMIT


flags.register_multi_flags_validator(
    ["sweep_steps", "sweep_train_sizes", "probe_train_size",
     "probe_test_size", "steps"], _snapshots_fit,
    "the sweep would keep more than 1 GiB of layer snapshots (one per "
    "--sweep_steps, each of the largest of --sweep_train_sizes and "
    "--probe_train_size plus --probe_test_size images): use fewer sweep "
    "steps or smaller sizes")


def _curve(curve):
  return {"step": curve.step, "test_accuracy": curve.test_accuracy}


def _listed(values):
  return ", ".join(f"{value:.3f}" for value in values)


def sweep_table(records):
  """A Markdown table: probe accuracy per layer for each (size, step)."""
  lines = ["| probe train size | step | input | h1 | h2 | h3 | deeper is "
           "better? |", "|---|---|---|---|---|---|---|"]
  for record in records:
    cells = " | ".join(f"{a:.3f}" for a in record["accuracy"])
    verdict = "yes" if record["deeper_is_better"] else (
        f"no (best: layer {record['best_layer']})")
    lines.append(f"| {record['train_size']} | {record['step']} | {cells} | "
                 f"{verdict} |")
  return "\n".join(lines)


# Each network's TensorBoard loss writer, for results.json's trace_counts.
LOSS_WRITERS = {}


def make_log(name):
  """Progress lines, TensorBoard and the divergence guard for network
  ``name`` ("base" or "aux"): a blown-up run stops here, one line, before
  anything is published."""
  monitor = Monitor(FLAGS.steps, FLAGS.log_every,
                    Guard(FLAGS.divergence_factor, FLAGS.divergence_patience,
                          label=f"{name} net"),
                    label=name, tag=f"{name}/loss")
  LOSS_WRITERS[f"{name}_loss_writer"] = monitor.write_losses

  def log(first_step, losses):
    if losses.ndim == 1:
      return monitor.record(first_step, losses)
    # The auxiliary net's steps return (loss, cross_entropy, l1_loss). The
    # monitor writes every step's loss; the two parts go to TensorBoard as
    # one mean per read (a tf.summary call costs about a millisecond, more
    # than a training step).
    step = first_step + len(losses)
    tf.summary.scalar(f"{name}/cross_entropy", losses[:, 1].mean(), step=step)
    tf.summary.scalar(f"{name}/l1_loss", losses[:, 2].mean(), step=step)
    return monitor.record(first_step, losses[:, 0])

  return log


def main(argv):
  del argv
  config = config_from_flags()
  set_seed(config.seed)
  train_split, test_split, source = data.load_train_test(FLAGS.data_dir,
                                                         FLAGS.split)
  largest = config.largest_probe_train_size
  if largest > len(train_split) or config.probe_test_size > len(test_split):
    raise DataError(
        f"probes need {largest} training and {config.probe_test_size} test "
        f"images but {source} has {len(train_split)} and {len(test_split)}")
  if config.batch_size > len(train_split):
    raise DataError(
        f"--batch_size={config.batch_size} is more than the "
        f"{len(train_split)} training images of {source}")
  data_dir = source if os.path.isdir(source) else None
  outputs = RunOutputs(FLAGS.output_dir, overwrite=FLAGS.overwrite,
                       protected=[data_dir])
  with outputs.summary_writer.as_default():
    result = train.run(config, train_split, test_split, make_log, print_line)
    for name, curve in (("base", result.base_curve),
                        ("aux", result.aux_curve)):
      for step, value in zip(curve.step, curve.test_accuracy):
        tf.summary.scalar(f"{name}/test_accuracy", value, step=step)
    for layer, value in enumerate(result.probe_accuracy):
      tf.summary.scalar("probe/accuracy", value, step=layer)

  aux = result.aux
  print_line(f"network test accuracy: {result.test_accuracy:.4f} (blog "
             f"{BLOG['network_test_accuracy']}); auxiliary-loss net "
             f"{aux['aux_accuracy']:.4f} (blog "
             f"{BLOG['aux_experiment']['aux_accuracy']})")
  print_line(f"probe accuracy per layer: {_listed(result.probe_accuracy)} "
             f"(blog {_listed(BLOG['probe_accuracy'])}); one-vs-rest as the "
             f"blog: {_listed(result.probe_accuracy_ovr)}")
  print_line(f"second half of training, mean test accuracy: base "
             f"{aux['base_accuracy_second_half_mean']:.4f}, auxiliary "
             f"{aux['aux_accuracy_second_half_mean']:.4f}; the auxiliary net "
             f"is ahead at {aux['evaluations_aux_ahead']} of "
             f"{len(result.aux_curve.step) - 1} evaluations")
  ordering_matches = all(later > earlier for earlier, later in zip(
      result.probe_accuracy, result.probe_accuracy[1:]))
  print_line("probe accuracy rises with depth, as in the blog: "
             f"{'yes' if ordering_matches else 'NO'}")
  if result.sweep:
    print_line(sweep_table(result.sweep))

  outputs.save_figure(plots.pca_grid(*result.pca, train.PCA_DIGITS),
                      "pca_grid.png")
  outputs.save_figure(plots.probe_accuracy(
      result.probe_accuracy, result.probe_accuracy_ovr,
      BLOG["probe_accuracy"], config.probe_train_size,
      config.probe_test_size), "probe_accuracy.png")
  outputs.save_figure(plots.accuracy_curves(
      _curve(result.base_curve), _curve(result.aux_curve),
      BLOG["aux_experiment"]), "accuracy_curves.png")
  if result.sweep:
    outputs.save_figure(plots.probe_sweep(
        result.sweep, config.sweep_at, config.sweep_sizes), "probe_sweep.png")
  outputs.finish({
      "test_accuracy": result.test_accuracy,
      "final_loss": result.base_curve.final_loss,
      "probe_accuracy": result.probe_accuracy,
      "probe_fits": result.probes,
      "probe_accuracy_ovr": result.probe_accuracy_ovr,
      "probe_fits_ovr": result.probes_ovr,
      "layer_ordering_matches_blog": ordering_matches,
      "pca_explained_variance_ratio": result.pca.explained_variance_ratio,
      "aux_experiment": {
          **aux, "aux_weight": config.aux_weight,
          "base_curve": _curve(result.base_curve),
          "aux_curve": _curve(result.aux_curve)},
      "probe_sweep": {"steps": list(config.sweep_at),
                      "train_sizes": list(config.sweep_sizes),
                      "results": result.sweep},
      "blog": BLOG,
      "trace_counts": {**result.trace_counts,
                       **loop.trace_counts(**LOSS_WRITERS)},
  })


if __name__ == "__main__":
  cli.run(main)
