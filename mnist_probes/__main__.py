"""Trains the blog's MLP, probes every layer with logistic regression, draws
each layer's principal components, and reruns the failed auxiliary-loss idea.
``python -m mnist_probes --helpfull`` lists the flags."""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

from absl import flags
import numpy as np
import tensorflow as tf

from mnist_probes import data, plots
from mnist_probes.model import (MLP, AuxiliaryHead, make_aux_train_step,
                                make_forward, make_train_step)
from mnist_probes.pca import fit_pca
from mnist_probes.probe import LogisticRegression
from tfscratch.lab import cli
from tfscratch.lab.errors import DataError
from tfscratch.nn import accuracy, ordered_batch
from tfscratch.optimizers import SGD
from tfscratch.lab.outputs import RunOutputs
from tfscratch.lab.progress import Progress
from tfscratch.lab.seeding import set_seed

TRAIN_SPLIT_SIZE = 55_000
TEST_SPLIT_SIZE = 10_000
NUM_LAYERS = 4  # representations: the input and three hidden layers
PCA_DIGITS = (0, 1, 2, 3)
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
flags.DEFINE_integer("steps", 10_000, "SGD steps for the network (and again "
                     "for the auxiliary-loss network).", lower_bound=1)
flags.DEFINE_integer("batch_size", 50, "Images per SGD step.", lower_bound=1,
                     upper_bound=TRAIN_SPLIT_SIZE // 2)
flags.DEFINE_float("learning_rate", 0.01, "SGD learning rate (the loss is "
                   "summed, not averaged, over the batch).")
flags.DEFINE_integer("probe_train_size", 1000, "The probes train on the "
                     "representations of this many first training images.",
                     lower_bound=10, upper_bound=TRAIN_SPLIT_SIZE)
flags.DEFINE_integer("probe_test_size", 1000, "The probes are scored on this "
                     "many first test images (their digits 0-3 are the "
                     "PCA plots' points).", lower_bound=10,
                     upper_bound=TEST_SPLIT_SIZE)
flags.DEFINE_float("probe_c", 1.0, "Inverse L2 strength C of the probes' "
                   "penalty ||W||^2 / (2C) (scikit-learn's C).")
flags.DEFINE_float("probe_tolerance", 1e-8, "A probe fit stops when every "
                   "component of the gradient of its objective / n is this "
                   "small.")
flags.DEFINE_float("aux_weight", 0.1, "Weight of the auxiliary L1 loss "
                   "(the blog's 1e-1).")
flags.DEFINE_integer("aux_components", 3, "Principal components of the "
                     "trained net's layer 3 that layer 1's head regresses.",
                     lower_bound=1, upper_bound=100)
flags.DEFINE_list("sweep_steps", ["0", "100", "1000", "10000"],
                  "Training steps at which every layer is probed again "
                  "(each <= --steps); empty for no sweep.")
flags.DEFINE_list("sweep_train_sizes", ["100", "1000", "10000"],
                  "Probe training-set sizes of the sweep.")
flags.DEFINE_integer("eval_every", 100, "Steps between test-accuracy points "
                     "of the training curves.", lower_bound=1)
flags.DEFINE_integer("log_every", 500, "Steps between progress lines.",
                     lower_bound=1)
cli.define_run_flags(default_output_dir="runs/mnist_probes")
cli.define_data_dir_flag()


def _integers(values):
  try:
    return [int(value) for value in values]
  except ValueError:
    return None


flags.register_validator("learning_rate", lambda v: v > 0,
                         "--learning_rate must be positive")
flags.register_validator("probe_c", lambda v: v > 0,
                         "--probe_c must be positive")
flags.register_validator("probe_tolerance", lambda v: v > 0,
                         "--probe_tolerance must be positive")
flags.register_validator("aux_weight", lambda v: v >= 0,
                         "--aux_weight must be >= 0")
flags.register_validator(
    "sweep_train_sizes",
    lambda v: _integers(v) is not None and all(
        1 <= size <= TRAIN_SPLIT_SIZE for size in _integers(v)),
    f"--sweep_train_sizes must be integers in [1, {TRAIN_SPLIT_SIZE}] (the "
    "training split)")
flags.register_multi_flags_validator(
    ["sweep_steps", "steps"],
    lambda f: _integers(f["sweep_steps"]) is not None and all(
        0 <= step <= f["steps"] for step in _integers(f["sweep_steps"])),
    "--sweep_steps must be integers in [0, --steps]")


def _listed(values):
  return ", ".join(f"{value:.3f}" for value in values)


def representations(forward, images):
  """The four layers' activations for ``images``, as NumPy arrays."""
  return [r.numpy() for r in forward(tf.constant(images))[1]]


def test_accuracy(forward, test):
  return float(accuracy(forward(tf.constant(test.images))[0], test.labels))


def fit_probe(train_features, train_labels, test_features, test_labels,
              objective="multinomial"):
  """Fits one probe to convergence; returns its test accuracy and the fit."""
  probe = LogisticRegression(train_features.shape[1], C=FLAGS.probe_c,
                             objective=objective)
  fit = probe.fit(train_features, train_labels,
                  tolerance=FLAGS.probe_tolerance)
  if not fit.converged:
    print(f"warning: probe stopped at gradient {fit.gradient_norm:.2e} after "
          f"{fit.iterations} iterations, above --probe_tolerance", flush=True)
  return {"accuracy": probe.accuracy(test_features, test_labels),
          "iterations": fit.iterations, "gradient_norm": fit.gradient_norm,
          "converged": fit.converged}


def run_training(label, train_step, batch, forward, test, snapshot_at=(),
          snapshot=None):
  """Runs FLAGS.steps steps; returns the test-accuracy curve.

  Args:
    train_step: called as train_step(*batch(step)); returns the loss it
      minimised, or a tuple (loss, cross_entropy, l1_loss).
    snapshot_at: steps (0 = before training) at which ``snapshot(step)``
      is called.
  """
  curve = {"step": [0], "test_accuracy": [test_accuracy(forward, test)]}
  progress = Progress(FLAGS.steps, every=FLAGS.log_every, label=label)
  for step in range(FLAGS.steps):
    if step in snapshot_at:
      snapshot(step)
    losses = train_step(*batch(step))
    losses = losses if isinstance(losses, tuple) else (losses,)
    progress.update(step + 1, losses[0])
    for name, loss in zip(("loss", "cross_entropy", "l1_loss"), losses):
      tf.summary.scalar(f"{label}/{name}", loss, step=step + 1)
    if (step + 1) % FLAGS.eval_every == 0 or step + 1 == FLAGS.steps:
      curve["step"].append(step + 1)
      curve["test_accuracy"].append(test_accuracy(forward, test))
      tf.summary.scalar(f"{label}/test_accuracy",
                        curve["test_accuracy"][-1], step=step + 1)
  if FLAGS.steps in snapshot_at:
    snapshot(FLAGS.steps)
  return curve


def pca_figure(layers, labels):
  """The 3 x 4 grid: each layer's top 3 components, digits 0-3 only."""
  chosen = np.isin(labels, PCA_DIGITS)
  fits = [fit_pca(layer[chosen], 3) for layer in layers]
  figure = plots.pca_grid(
      [fit.transform(layer[chosen]).numpy() for fit, layer in zip(fits,
                                                                  layers)],
      labels[chosen], [fit.explained_variance_ratio.numpy() for fit in fits],
      PCA_DIGITS)
  return figure, [fit.explained_variance_ratio.numpy() for fit in fits]


def sweep_table(records, steps, sizes):
  """A Markdown table: probe accuracy per layer for each (size, step)."""
  lines = ["| probe train size | step | input | h1 | h2 | h3 | deeper is "
           "better? |", "|---|---|---|---|---|---|---|"]
  for size in sizes:
    for step in steps:
      record = next(r for r in records
                    if r["step"] == step and r["train_size"] == size)
      cells = " | ".join(f"{a:.3f}" for a in record["accuracy"])
      verdict = "yes" if record["deeper_is_better"] else (
          f"no (best: layer {record['best_layer']})")
      lines.append(f"| {size} | {step} | {cells} | {verdict} |")
  return "\n".join(lines)


def main(argv):
  del argv
  set_seed(FLAGS.seed)
  sweep_steps = sorted(set(_integers(FLAGS.sweep_steps)))
  sweep_sizes = sorted(set(_integers(FLAGS.sweep_train_sizes)))
  train, test, source = data.load_train_test(FLAGS.data_dir, FLAGS.split)
  largest = max([FLAGS.probe_train_size] + sweep_sizes)
  if largest > len(train) or FLAGS.probe_test_size > len(test):
    raise DataError(
        f"probes need {largest} training and {FLAGS.probe_test_size} test "
        f"images but {source} has {len(train)} and {len(test)}")
  outputs = RunOutputs(FLAGS.output_dir, overwrite=FLAGS.overwrite)
  # The blog walks batches with start = (50 * i) % 54950: it wraps one batch
  # before the end of the 55,000 images, so the last batch is never seen.
  walk = len(train) - FLAGS.batch_size
  walk_images = train.images[:walk]
  walk_labels = train.labels[:walk]
  probe_test = test.take(FLAGS.probe_test_size)

  model = MLP(seed=FLAGS.seed)
  forward = make_forward(model)
  train_step = make_train_step(model, SGD(model.weights, FLAGS.learning_rate),
                               FLAGS.batch_size)
  # Sweep snapshots: every layer of the first `largest` training images and
  # of the probe's test images, at each sweep step.
  snapshots = {}

  def snapshot(step):
    snapshots[step] = (representations(forward, train.images[:largest]),
                       representations(forward, probe_test.images))

  with outputs.summary_writer.as_default():
    base_curve = run_training(
        "base", train_step,
        lambda step: ordered_batch(walk_images, walk_labels, FLAGS.batch_size,
                                   step),
        forward, test, snapshot_at=set(sweep_steps), snapshot=snapshot)
    network_accuracy = base_curve["test_accuracy"][-1]
    print(f"network test accuracy: {network_accuracy:.4f} (blog "
          f"{BLOG['network_test_accuracy']})", flush=True)

    # The blog's probes: every layer of the trained net.
    train_layers = representations(
        forward, train.images[:FLAGS.probe_train_size])
    test_layers = representations(forward, probe_test.images)
    # Fits are cached by (layer, step, size); the input layer never trains,
    # so its probe depends on the size alone.
    probe_cache = {}

    def probe_at(layer, step, size, train_reps, test_reps):
      key = (layer, step if layer else None, size)
      if key not in probe_cache:
        probe_cache[key] = fit_probe(train_reps[layer][:size],
                                     train.labels[:size],
                                     test_reps[layer], probe_test.labels)
      return probe_cache[key]

    probes = [probe_at(layer, FLAGS.steps, FLAGS.probe_train_size,
                       train_layers, test_layers)
              for layer in range(NUM_LAYERS)]
    probe_accuracy = [probe["accuracy"] for probe in probes]
    # The blog's own probe: scikit-learn 2016's one-vs-rest default.
    ovr_probes = [fit_probe(train_layers[layer],
                            train.labels[:FLAGS.probe_train_size],
                            test_layers[layer], probe_test.labels, "ovr")
                  for layer in range(NUM_LAYERS)]
    ovr_accuracy = [probe["accuracy"] for probe in ovr_probes]
    for layer, value in enumerate(probe_accuracy):
      tf.summary.scalar("probe/accuracy", value, step=layer)
    print(f"probe accuracy per layer: {_listed(probe_accuracy)} (blog "
          f"{_listed(BLOG['probe_accuracy'])}); one-vs-rest as the blog: "
          f"{_listed(ovr_accuracy)}", flush=True)
    figure, pca_ratios = pca_figure(test_layers, probe_test.labels)
    outputs.save_figure(figure, "pca_grid.png")
    outputs.save_figure(plots.probe_accuracy(
        probe_accuracy, ovr_accuracy, BLOG["probe_accuracy"],
        FLAGS.probe_train_size, FLAGS.probe_test_size), "probe_accuracy.png")

    # The failed idea: same initial weights, plus an L1 loss pulling a linear
    # head on layer 1 toward the top principal components of the trained
    # net's layer 3 (PCA fitted on the whole training split, as the blog).
    layer3 = representations(forward, train.images)[3]
    targets = fit_pca(layer3, FLAGS.aux_components).transform(layer3).numpy()
    targets = targets[:walk]
    aux_model = MLP(seed=FLAGS.seed)
    head = AuxiliaryHead(outputs=FLAGS.aux_components, seed=FLAGS.seed)
    aux_step = make_aux_train_step(
        aux_model, head,
        SGD(aux_model.weights + head.weights, FLAGS.learning_rate),
        FLAGS.batch_size, FLAGS.aux_weight)

    def aux_batch(step):
      images, labels = ordered_batch(walk_images, walk_labels,
                                     FLAGS.batch_size, step)
      batch_targets, _ = ordered_batch(targets, walk_labels, FLAGS.batch_size,
                                       step)
      return images, labels, batch_targets

    aux_curve = run_training("aux", aux_step, aux_batch,
                             make_forward(aux_model), test)
    print(f"auxiliary-loss net test accuracy: "
          f"{aux_curve['test_accuracy'][-1]:.4f} (blog "
          f"{BLOG['aux_experiment']['aux_accuracy']}); base "
          f"{network_accuracy:.4f}", flush=True)
    outputs.save_figure(plots.accuracy_curves(base_curve, aux_curve,
                                              BLOG["aux_experiment"]),
                        "accuracy_curves.png")

    # Beyond the blog: probes at several points in training and for several
    # probe training-set sizes.
    records = []
    for size in sweep_sizes if sweep_steps else []:
      for step in sweep_steps:
        accuracies = [probe_at(layer, step, size, *snapshots[step])["accuracy"]
                      for layer in range(NUM_LAYERS)]
        records.append({
            "step": step, "train_size": size, "accuracy": accuracies,
            "deeper_is_better": bool(np.all(np.diff(accuracies) > 0)),
            "best_layer": int(np.argmax(accuracies))})
        print(f"sweep: step {step}, {size} probe training images: "
              f"{_listed(accuracies)}", flush=True)
    if records:
      outputs.save_figure(plots.probe_sweep(records, sweep_steps, sweep_sizes),
                          "probe_sweep.png")
      print(sweep_table(records, sweep_steps, sweep_sizes), flush=True)

  # One evaluation is noisy (the curves move by ~0.004 between points), so
  # the curves are also compared point by point and over the second half.
  base_points = np.array(base_curve["test_accuracy"][1:])
  aux_points = np.array(aux_curve["test_accuracy"][1:])
  second_half = np.array(base_curve["step"][1:]) > FLAGS.steps / 2
  half_means = [float(np.mean(points[second_half]))
                for points in (base_points, aux_points)]
  print(f"second half of training, mean test accuracy: base "
        f"{half_means[0]:.4f}, auxiliary {half_means[1]:.4f}; the auxiliary "
        f"net is ahead at {int(np.sum(aux_points > base_points))} of "
        f"{len(aux_points)} evaluations", flush=True)
  ordering_matches = bool(np.all(np.diff(probe_accuracy) > 0))
  print("probe accuracy rises with depth, as in the blog: "
        f"{'yes' if ordering_matches else 'NO'}", flush=True)
  outputs.finish({
      "network_test_accuracy": network_accuracy,
      "probe_accuracy": probe_accuracy,
      "probe_fits": probes,
      "probe_accuracy_ovr": ovr_accuracy,
      "probe_fits_ovr": ovr_probes,
      "layer_ordering_matches_blog": ordering_matches,
      "pca_explained_variance_ratio": pca_ratios,
      "aux_experiment": {
          "base_accuracy": network_accuracy,
          "aux_accuracy": aux_curve["test_accuracy"][-1],
          "base_accuracy_second_half_mean": half_means[0],
          "aux_accuracy_second_half_mean": half_means[1],
          "evaluations_aux_ahead": int(np.sum(aux_points > base_points)),
          "evaluations_aux_behind": int(np.sum(aux_points < base_points)),
          "aux_weight": FLAGS.aux_weight,
          "base_curve": base_curve,
          "aux_curve": aux_curve,
      },
      "probe_sweep": {"steps": sweep_steps, "train_sizes": sweep_sizes,
                      "results": records},
      "blog": BLOG,
      "trace_counts": {"base": train_step.experimental_get_tracing_count(),
                       "aux": aux_step.experimental_get_tracing_count()},
  })


if __name__ == "__main__":
  cli.run(main)
