"""Trains hundreds of networks with each strategy and compares the test
accuracies they reach.  ``python -m convergence --helpfull`` lists the flags.

  python -m convergence                          # the blog: 500 + 500, SGD
  python -m convergence --optimizer adam         # beyond the blog
  # the same work split over two processes (or machines), then merged:
  python -m convergence --num_shards 2 --shard_index 0 --output_dir runs/s0
  python -m convergence --num_shards 2 --shard_index 1 --output_dir runs/s1
  python -m convergence --merge runs/s0,runs/s1 --output_dir runs/merged
  # issue 12: both strategies from the same 500 starts, plus all layers for
  # layer-wise's 1,400 steps; init i of every strategy is the same
  python -m convergence --paired \
      --strategies all_layers,layerwise,all_layers_equal

An interrupted run keeps its finished chunks; the same command again resumes.
Flags -> train.Config -> scale.train_chunks (which calls train.train_runs
chunk after chunk) -> statistics, figure and results.json.
"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import dataclasses
import os

from absl import flags
import numpy as np
import tensorflow as tf

from convergence import data as data_lib
from convergence import plots
from convergence import scale
from convergence import stats
from convergence import train
from tfscratch.lab import cli
from tfscratch.lab.errors import ScratchError
from tfscratch.lab.mnist import DATA_DIR_ENV
from tfscratch.lab.outputs import RunOutputs
from tfscratch.lab.outputs import program_flags
from tfscratch.lab.seeding import set_seed

FLAGS = flags.FLAGS
# The sweep of reproduce.py trains runs from here up: no full run reaches it.
MAX_RUNS = 1_000_000
MNIST_TRAIN_IMAGES = 60_000
# Run indices are folded into seeds as int32.
MAX_FIRST_RUN = 2**31 - 1 - MAX_RUNS

flags.DEFINE_integer("num_runs", 500, "Networks trained with each strategy, "
                     "each from its own random initialisation (the blog: "
                     "500).", lower_bound=1, upper_bound=MAX_RUNS)
cli.define_choice_list("strategies", list(train.STRATEGIES),
                       list(train.ALL_STRATEGIES),
                       "Training strategies, comma-separated: all_layers "
                       "(1,000 steps on the whole network), layerwise (200 "
                       "steps on layer 1, 200 on layers 1-2, then the same "
                       "1,000); controls: all_layers_equal (1,400 steps on "
                       "the whole network, rate drop at 1,050), "
                       "switch_layer3 / switch_layers23 (all_layers, then "
                       "layer 3 / layers 2-3 redrawn at random and 1,000 "
                       "more steps).")
flags.DEFINE_boolean("paired", False, "Network i of every strategy starts "
                     "from the same initial weights (all_layers' seed "
                     "stream), so the strategies are compared init by init "
                     "(paired tests in results.json). Default: independent "
                     "starts, as in the blog.")
flags.DEFINE_integer("first_run", 0, "Index of the first network of each "
                     "strategy: networks first_run..first_run+num_runs-1 "
                     "(a network's start depends on its index; the "
                     "learning-rate studies use 1,000,000 up, networks no "
                     "reported run trains).", lower_bound=0,
                     upper_bound=MAX_FIRST_RUN)
cli.define_optimizer("sgd", "Optimizer of every phase (hand-written, "
                     "tfscratch.optimizers).")
# No default: it depends on --optimizer.
cli.define_learning_rate(
    None, help_text="Base learning rate; the last phase drops to "
    f"{train.LR_DROP} x it after step 750. Default per optimizer: " +
    ", ".join(f"{k} {v}" for k, v in train.DEFAULT_LEARNING_RATES.items()) +
    ".")
cli.define_batch_size(data_lib.BATCH_SIZE, "Training images per step (the "
                      "blog: 50); --train_size must be a multiple of it.")
flags.DEFINE_integer("train_size", data_lib.BLOG_TRAIN_SIZE,
                     "Training images (the blog: 1,000), walked in order.",
                     lower_bound=1, upper_bound=MNIST_TRAIN_IMAGES)
flags.DEFINE_integer("train_offset", data_lib.BLOG_TRAIN_OFFSET,
                     "Index in MNIST's training file of the first training "
                     "image (5000: the blog's loader held out 0..4999).",
                     lower_bound=0, upper_bound=MNIST_TRAIN_IMAGES - 1)
cli.define_float("step_scale", 1.0, "Multiply every phase's number of steps "
                 "(and the step of the rate drop) by this, for quick trials; "
                 "1 is the blog's schedule. At most 100.", minimum=0,
                 exclusive=True, maximum=100)
flags.DEFINE_integer("chunk_size", scale.DEFAULT_CHUNK_SIZE, "Networks "
                     "trained side by side in one stack. Each finished chunk "
                     "is checkpointed; a resumed or sharded run must keep "
                     "the same value.",
                     lower_bound=1, upper_bound=1000)
flags.DEFINE_integer("num_shards", 1, "Split the chunks of every strategy "
                     "into this many shards, one per process or machine, "
                     "each with its own --output_dir; combine those with "
                     "--merge.", lower_bound=1)
flags.DEFINE_integer("shard_index", None, "Which shard this process "
                     "trains, 0..num_shards-1. Default: the job array's task "
                     "index, $SLURM_ARRAY_TASK_ID (SLURM) or "
                     "$JOB_COMPLETION_INDEX (Kubernetes Indexed Job), when "
                     "--num_shards > 1 and one is set; else 0.",
                     lower_bound=0)
flags.DEFINE_boolean("resume", True, "Keep the chunks an interrupted run "
                     "finished (in <output_dir>.partial) and train only the "
                     "rest. --noresume starts over.")
flags.DEFINE_list("merge", None, "Instead of training, merge the results of "
                  "these shard output directories (comma-separated, all "
                  "shards of one experiment) into --output_dir, with the "
                  "statistics and figure of an unsharded run. The shards' "
                  "own settings are used; they are never modified.")
flags.DEFINE_integer("num_permutations", 10_000, "Relabellings for the "
                     "permutation p-values (and resamples for the bootstrap "
                     "intervals).", lower_bound=100, upper_bound=10_000_000)
flags.DEFINE_integer("workers", scale.default_workers(),
                     "Chunks trained at once, each op on one thread "
                     "(default: the CPUs this process may use). The numbers "
                     "do not depend on it.", lower_bound=1,
                     upper_bound=scale.MAX_WORKERS)
cli.define_log_every(200)
cli.define_run_flags(default_output_dir="runs/convergence")
cli.define_data_dir_flag()

flags.register_validator(
    "merge", lambda v: v is None or (bool(v) and all(p.strip() for p in v)),
    "--merge needs the shards' output directories, comma-separated (it got "
    "none; to train, leave --merge out)")
flags.register_multi_flags_validator(
    ["train_size", "batch_size"],
    lambda f: f["train_size"] % f["batch_size"] == 0,
    "--train_size must be a multiple of --batch_size")
flags.register_multi_flags_validator(
    ["train_size", "train_offset"],
    lambda f: f["train_offset"] + f["train_size"] <= MNIST_TRAIN_IMAGES,
    f"--train_offset + --train_size must be at most {MNIST_TRAIN_IMAGES:,}, "
    "the images of MNIST's training file")
flags.register_multi_flags_validator(
    ["shard_index", "num_shards"],
    lambda f: f["shard_index"] is None or f["shard_index"] < f["num_shards"],
    "--shard_index must be less than --num_shards (shards are numbered "
    "0..num_shards-1)")
flags.register_multi_flags_validator(
    ["num_shards", "num_runs", "chunk_size"],
    lambda f: f["num_shards"] <= -(-f["num_runs"] // f["chunk_size"]),
    "--num_shards must not exceed the number of chunks, "
    "ceil(num_runs / chunk_size): shards take whole chunks (lower "
    "--chunk_size to split finer)")

# The blog's numbers (500 networks each, SGD), for results.json and the
# README.
BLOG = {"all_layers": {"mean": 0.87867, "std": 0.00274425},
        "layerwise": {"mean": 0.876439, "std": 0.00234411}}


def shard_index():
  """--shard_index, else the job array's index (scale.SHARD_INDEX_VARIABLES)
  when sharding, else 0."""
  if FLAGS.shard_index is not None:
    return FLAGS.shard_index
  if FLAGS.num_shards == 1:
    return 0
  try:
    found = scale.shard_index_from_environment()
  except ValueError as error:
    raise ScratchError(str(error)) from error
  if found is None:
    raise ScratchError(f"--num_shards={FLAGS.num_shards} needs --shard_index "
                       "(or a job array's $SLURM_ARRAY_TASK_ID or "
                       "$JOB_COMPLETION_INDEX)")
  index, name = found
  if index >= FLAGS.num_shards:
    raise ScratchError(f"${name}={index} is not a shard index below "
                       f"--num_shards={FLAGS.num_shards} (shards are "
                       "numbered 0..num_shards-1; SLURM: --array=0-"
                       f"{FLAGS.num_shards - 1})")
  print(f"shard {index} of {FLAGS.num_shards}, from ${name}", flush=True)
  return index


def run():
  """Trains this process's chunks; writes a full result or a shard's."""
  scale.use_one_thread_per_op(FLAGS.workers)
  set_seed(FLAGS.seed)
  index = shard_index()
  config = cli.config_from_flags(
      train.Config, learning_rate=(
          FLAGS.learning_rate or train.DEFAULT_LEARNING_RATES[FLAGS.optimizer]))
  # What a checkpoint must have been written with to be reused.
  settings = dict(dataclasses.asdict(config), train_size=FLAGS.train_size,
                  train_offset=FLAGS.train_offset, first_run=FLAGS.first_run)
  # Data errors surface before anything is written.
  data = scale.load_data(FLAGS.data_dir, FLAGS.train_size, FLAGS.train_offset)
  outputs = RunOutputs(FLAGS.output_dir, overwrite=FLAGS.overwrite,
                       resume=FLAGS.resume,
                       protected=[FLAGS.data_dir, os.environ.get(DATA_DIR_ENV)])
  chunks = scale.shard_chunks(FLAGS.num_runs, FLAGS.chunk_size,
                              FLAGS.num_shards, index, FLAGS.first_run)
  print(f"{config.optimizer}, lr {config.learning_rate:g}: runs "
        f"{chunks[0][0]}..{chunks[-1][1] - 1} of {FLAGS.num_runs} per "
        f"strategy in {len(chunks)} chunk(s) of up to {FLAGS.chunk_size} "
        f"networks, on {len(data.train)} training images", flush=True)
  metrics_of, trace_counts = scale.train_chunks(
      config, data, FLAGS.strategies, chunks, outputs, settings,
      FLAGS.workers, FLAGS.log_every,
      (FLAGS.divergence_factor, FLAGS.divergence_patience))
  settings.update(num_runs=FLAGS.num_runs, chunk_size=FLAGS.chunk_size)
  if FLAGS.num_shards == 1:
    write_full_results(outputs, settings, FLAGS.strategies, metrics_of,
                       {"trace_counts": trace_counts})
    return
  # A shard: its networks' numbers and its place; the statistics come at
  # --merge.
  metrics = {"config": settings, "strategies": FLAGS.strategies,
             "trace_counts": trace_counts,
             "shard": {"index": index, "num_shards": FLAGS.num_shards}}
  for strategy in FLAGS.strategies:
    metrics[strategy] = dict(
        metrics_of[strategy], runs=[chunks[0][0], chunks[-1][1]],
        mean=stats.mean(metrics_of[strategy]["accuracies"]),
        std=stats.std(metrics_of[strategy]["accuracies"]))
  # The index used, even when it came from the job array's variable.
  outputs.finish(metrics, recorded_flags=dict(
      program_flags(), shard_index=index))


def merge(paths):
  """Merges shards into the results of one unsharded run. What is recorded
  is what produced the numbers: the shards' seed and flags (those they
  share), with this process's --num_permutations for the statistics."""
  config, strategies, accuracies, shards = scale.read_shards(paths)
  print(f"merging {len(paths)} shards: {config['num_runs']} runs per "
        "strategy", flush=True)
  shard_dirs = [scale.shard_dir(path) for path in paths]
  outputs = RunOutputs(FLAGS.output_dir, overwrite=FLAGS.overwrite,
                       protected=shard_dirs)
  shard_flags = [shard.get("flags") or {} for shard in shards]
  recorded_flags = {key: value for key, value in shard_flags[0].items()
                    if all(f.get(key) == value for f in shard_flags)}
  recorded_flags.update(num_permutations=FLAGS.num_permutations,
                        merge=list(paths))
  trace_counts = {}
  for shard in shards:
    for name, count in (shard.get("trace_counts") or {}).items():
      trace_counts[name] = max(count, trace_counts.get(name, 0))
  # The other per-network lists (training loss and accuracy, validation
  # accuracy), in shard order, where every shard has them.
  metrics_of = {}
  for strategy in strategies:
    metrics_of[strategy] = {"accuracies": accuracies[strategy]}
    for name in scale.METRIC_NAMES.values():
      parts = [shard[strategy].get(name) for shard in shards]
      if name != "accuracies" and all(isinstance(p, list) for p in parts):
        metrics_of[strategy][name] = [a for part in parts for a in part]
  write_full_results(
      outputs, config, strategies, metrics_of,
      {"trace_counts": trace_counts,
       "merged_from": [os.path.abspath(d) for d in shard_dirs]},
      recorded_flags=recorded_flags)


def write_full_results(outputs, config, strategies, metrics_of, extra,
                       recorded_flags=None):
  """Statistics, figure, TensorBoard histograms and results.json of a whole
  experiment (unsharded, or merged shards).

  Args:
    metrics_of: dict strategy -> dict of per-network lists, named as in
      scale.METRIC_NAMES ("accuracies" are the test accuracies).
  """
  seed = config["seed"]
  accuracies = {strategy: metrics_of[strategy]["accuracies"]
                for strategy in strategies}
  metrics = {"config": config, "strategies": strategies,
             "optimizer": config["optimizer"], "blog": BLOG, "tests": None}
  for strategy in strategies:
    metrics[strategy] = dict(
        stats.summary(accuracies[strategy], FLAGS.num_permutations, seed),
        **metrics_of[strategy])
    for name, values in metrics_of[strategy].items():
      if name != "accuracies":
        metrics[strategy][f"mean_{name}"] = stats.mean(values)
    print(f"{strategy:>10}: test accuracy {100 * metrics[strategy]['mean']:.2f}"
          f"% ± {100 * metrics[strategy]['std']:.2f} over "
          f"{len(accuracies[strategy])} networks (95% interval of the mean "
          f"{100 * metrics[strategy]['mean_ci95'][0]:.2f}.."
          f"{100 * metrics[strategy]['mean_ci95'][1]:.2f})", flush=True)
  # The one number every package's results.json has: here the mean over the
  # networks of the first strategy (all_layers unless --strategies says not).
  metrics["test_accuracy"] = metrics[strategies[0]]["mean"]
  if config.get("paired") and "all_layers" in strategies:
    # Init by init: each other strategy's network i against all_layers'.
    metrics["paired"] = {}
    for strategy in strategies:
      if strategy != "all_layers":
        paired = stats.paired_compare(accuracies["all_layers"],
                                      accuracies[strategy])
        metrics["paired"][f"all_layers-{strategy}"] = paired
        print(f"paired all_layers - {strategy}: "
              f"{100 * paired['mean_difference']:+.3f} points, all layers "
              f"better for {100 * paired['fraction_a_better']:.1f}% of "
              f"inits (ties {100 * paired['fraction_ties']:.1f}%); paired t "
              f"p={paired['t_p']:.3g}, sign p={paired['sign_p']:.3g}, "
              f"Wilcoxon p={paired['wilcoxon_p']:.3g}", flush=True)
  # Welch, permutation and KS tests assume independent samples; a paired
  # run's networks are not (network i of each shares its start), so it gets
  # only the paired tests above.
  if set(strategies) >= {"all_layers", "layerwise"} and not config.get(
      "paired"):
    try:
      tests = stats.compare(accuracies["all_layers"], accuracies["layerwise"],
                            FLAGS.num_permutations, FLAGS.num_permutations,
                            seed)
    except ValueError as error:  # fewer than 2 values, or no spread at all
      print(f"no tests: {error}", flush=True)
    else:
      metrics["tests"] = tests
      print(f"all_layers - layerwise: {100 * tests['mean_difference']:+.3f} "
            f"points; Welch p={tests['welch_p']:.3g}, permutation "
            f"p={tests['permutation_p']:.3g}, KS D="
            f"{tests['ks_statistic']:.3f} (p={tests['ks_p']:.3g})",
            flush=True)
  metrics.update(extra)
  with outputs.summary_writer.as_default():
    for strategy in strategies:
      tf.summary.histogram(f"test_accuracy/{strategy}",
                           np.asarray(accuracies[strategy]), step=0)
  networks = " + ".join(str(len(accuracies[s])) for s in strategies)
  outputs.save_figure(
      plots.plot_distributions(
          accuracies, f"Test accuracy of {networks} networks, "
          f"{config['optimizer']} (lr {config['learning_rate']:g})"),
      "accuracy_distributions.png")
  outputs.finish(metrics, recorded_flags=recorded_flags, seed=seed)


def main(argv):
  del argv
  if FLAGS.merge is not None:
    merge(FLAGS.merge)
  else:
    run()


if __name__ == "__main__":
  cli.run(main)
