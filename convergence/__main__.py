"""Trains hundreds of networks with each strategy and compares the test
accuracies they reach.  ``python -m convergence --helpfull`` lists the flags.

  python -m convergence                          # the blog: 500 + 500, SGD
  python -m convergence --optimizer adam         # beyond the blog
  # the same work split over two processes (or machines), then merged:
  python -m convergence --num_shards 2 --shard_index 0 --output_dir runs/s0
  python -m convergence --num_shards 2 --shard_index 1 --output_dir runs/s1
  python -m convergence --merge runs/s0,runs/s1 --output_dir runs/merged

An interrupted run keeps its finished chunks; the same command again resumes.
"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import math
import os
import time

from absl import flags
import numpy as np
import tensorflow as tf

from convergence import data as data_lib
from convergence import experiment
from convergence import plots
from convergence import results
from convergence import stats
from tfscratch.lab import cli
from tfscratch.lab.outputs import RunOutputs
from tfscratch.lab.progress import print_line
from tfscratch.lab.seeding import set_seed

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_runs", 500, "Networks trained with each strategy, "
                     "each from its own random initialisation (the blog: "
                     "500).", lower_bound=1)
flags.DEFINE_list("strategies", list(experiment.STRATEGIES),
                  "Training strategies, comma-separated: all_layers (1,000 "
                  "steps on the whole network), layerwise (200 steps on "
                  "layer 1, 200 on layers 1-2, then the same 1,000).")
flags.DEFINE_enum("optimizer", "sgd", ["sgd", "adagrad", "adam"],
                  "Optimizer of every phase (hand-written, "
                  "tfscratch.optimizers).")
flags.DEFINE_float(
    "learning_rate", None, "Base learning rate; the last phase drops to "
    f"{experiment.LR_DROP} x it after step 750. Default per optimizer: " +
    ", ".join(f"{k} {v}" for k, v in
              experiment.DEFAULT_LEARNING_RATES.items()) + ".")
flags.DEFINE_integer("train_size", data_lib.BLOG_TRAIN_SIZE,
                     "Training images, a multiple of the batch size "
                     f"{data_lib.BATCH_SIZE} (the blog: 1,000).",
                     lower_bound=data_lib.BATCH_SIZE)
flags.DEFINE_integer("train_offset", data_lib.BLOG_TRAIN_OFFSET,
                     "Index in MNIST's training file of the first training "
                     "image (5000: the blog's loader held out 0..4999).",
                     lower_bound=0)
flags.DEFINE_float("step_scale", 1.0, "Multiply every phase's number of "
                   "steps (and the step of the rate drop) by this, for quick "
                   "trials; 1 is the blog's schedule.")
flags.DEFINE_integer("chunk_size", 25, "Networks trained side by side in one "
                     "stack. Each finished chunk is checkpointed; a "
                     "resumed or sharded run must keep the same value.",
                     lower_bound=1)
flags.DEFINE_integer("num_shards", 1, "Split the chunks of every strategy "
                     "into this many shards, one per process or machine; "
                     "combine the shards' output directories with --merge.",
                     lower_bound=1)
flags.DEFINE_integer("shard_index", 0, "Which shard this process trains, "
                     "0..num_shards-1.", lower_bound=0)
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
                     "intervals).", lower_bound=100)
flags.DEFINE_integer("workers", len(os.sched_getaffinity(0)),
                     "Chunks trained at once, each op on one thread "
                     "(default: the CPUs this process may use). The numbers "
                     "do not depend on it.", lower_bound=1)
flags.DEFINE_integer("log_every", 200, "Steps between progress lines of a "
                     "chunk; 0 for only the last.", lower_bound=0)
cli.define_run_flags(default_output_dir="runs/convergence")
cli.define_data_dir_flag()


def _check_strategies(values):
  return (bool(values) and len(set(values)) == len(values) and
          set(values) <= set(experiment.STRATEGIES))


flags.register_validator(
    "strategies", _check_strategies,
    "--strategies must list one or both of all_layers, layerwise, each once")
flags.register_validator(
    "learning_rate", lambda v: v is None or (v > 0 and math.isfinite(v)),
    "--learning_rate must be positive")
flags.register_validator(
    "step_scale", lambda v: 0 < v <= 100,
    "--step_scale must be in (0, 100]")
flags.register_validator(
    "train_size", lambda v: v % data_lib.BATCH_SIZE == 0,
    f"--train_size must be a multiple of the batch size "
    f"{data_lib.BATCH_SIZE}")
flags.register_multi_flags_validator(
    ["shard_index", "num_shards"],
    lambda f: f["shard_index"] < f["num_shards"],
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


def train_chunks(strategies, chunks, config, data, outputs):
  """Trains (or takes from checkpoints) every chunk of every strategy,
  --workers at a time; returns dict strategy -> the accuracies of all its
  chunks' runs, in run order."""
  steps = {strategy: experiment.total_steps(strategy, config["step_scale"])
           for strategy in strategies}
  accuracies = {strategy: [None] * len(chunks) for strategy in strategies}
  tasks = []
  for strategy in strategies:
    for number, (first, end) in enumerate(chunks):
      path = results.checkpoint_path(outputs.staging_dir, strategy, first,
                                     end)
      if os.path.exists(path):
        accuracies[strategy][number] = results.load_chunk(
            path, config, strategy, first, end)
        print(f"{strategy} runs {first}-{end - 1}: kept from {path}",
              flush=True)
      else:
        tasks.append((strategy, number, first, end, path))

  def train_chunk(task, trainers, stop):
    strategy, number, first, end, path = task
    start = time.time()
    trainer = experiment.cached_trainer(
        trainers, data, strategy, end - first, config["optimizer"],
        config["learning_rate"], config["step_scale"])
    # The default summary writer is per thread.
    with outputs.summary_writer.as_default():
      chunk_accuracies = trainer.train_runs(
          range(first, end), config["seed"], log_every=FLAGS.log_every,
          summary_step=lambda step: number * steps[strategy] + step,
          stop=stop)["test"]
    results.save_chunk(path, config, strategy, first, end, chunk_accuracies)
    print_line(f"{strategy} runs {first}-{end - 1}: test accuracy "
               f"{100 * chunk_accuracies.mean():.2f}% ± "
               f"{100 * chunk_accuracies.std():.2f} "
               f"({time.time() - start:.1f} s, checkpointed)")
    return chunk_accuracies.tolist()

  try:
    trained = experiment.train_in_workers(train_chunk, tasks, FLAGS.workers)
  except KeyboardInterrupt:
    print_line(f"stopped: the finished chunks stay in {outputs.staging_dir}; "
               "the same command resumes")
    raise
  for (strategy, number, *_), chunk_accuracies in zip(tasks, trained):
    accuracies[strategy][number] = chunk_accuracies
  return {strategy: [a for chunk in accuracies[strategy] for a in chunk]
          for strategy in strategies}


def full_metrics(config, strategies, accuracies, seed):
  """results.json of a whole experiment (unsharded, or merged shards)."""
  metrics = {"config": config, "strategies": strategies,
             "optimizer": config["optimizer"], "blog": BLOG}
  for strategy in strategies:
    metrics[strategy] = dict(
        stats.summary(accuracies[strategy], FLAGS.num_permutations, seed),
        accuracies=accuracies[strategy])
    print(f"{strategy:>10}: test accuracy {100 * metrics[strategy]['mean']:.2f}"
          f"% ± {100 * metrics[strategy]['std']:.2f} over "
          f"{len(accuracies[strategy])} networks (95% interval of the mean "
          f"{100 * metrics[strategy]['mean_ci95'][0]:.2f}.."
          f"{100 * metrics[strategy]['mean_ci95'][1]:.2f})", flush=True)
  metrics["tests"] = None
  if len(strategies) == 2:
    a, b = accuracies["all_layers"], accuracies["layerwise"]
    try:
      tests = stats.compare(a, b, FLAGS.num_permutations,
                            FLAGS.num_permutations, seed)
    except ValueError as error:  # fewer than 2 values, or no spread at all
      print(f"no tests: {error}", flush=True)
    else:
      metrics["tests"] = tests
      print(f"all_layers - layerwise: {100 * tests['mean_difference']:+.3f} "
            f"points; Welch p={tests['welch_p']:.3g}, permutation "
            f"p={tests['permutation_p']:.3g}, KS D="
            f"{tests['ks_statistic']:.3f} (p={tests['ks_p']:.3g})",
            flush=True)
  return metrics


def figure_title(config, counts):
  networks = " + ".join(str(n) for n in counts.values())
  return (f"Test accuracy of {networks} networks, {config['optimizer']} "
          f"(lr {config['learning_rate']:g})")


def write_full_results(outputs, config, strategies, accuracies, extra=None):
  metrics = full_metrics(config, strategies, accuracies, config["seed"])
  metrics.update(extra or {})
  with outputs.summary_writer.as_default():
    for strategy in strategies:
      tf.summary.histogram(f"test_accuracy/{strategy}",
                           np.asarray(accuracies[strategy]), step=0)
  outputs.save_figure(
      plots.plot_distributions(
          accuracies, figure_title(config, {s: len(accuracies[s])
                                            for s in strategies})),
      "accuracy_distributions.png")
  outputs.finish(metrics)


def train():
  experiment.use_one_thread_per_op(FLAGS.workers)
  set_seed(FLAGS.seed)
  learning_rate = (FLAGS.learning_rate or
                   experiment.DEFAULT_LEARNING_RATES[FLAGS.optimizer])
  config = {"seed": FLAGS.seed, "optimizer": FLAGS.optimizer,
            "learning_rate": learning_rate, "train_size": FLAGS.train_size,
            "train_offset": FLAGS.train_offset,
            "step_scale": FLAGS.step_scale}
  # Data errors surface before anything is written.
  data = data_lib.load_data(FLAGS.data_dir, FLAGS.train_size,
                            FLAGS.train_offset)
  outputs = RunOutputs(FLAGS.output_dir, overwrite=FLAGS.overwrite,
                       resume=FLAGS.resume)
  chunks = results.shard_chunks(FLAGS.num_runs, FLAGS.chunk_size,
                                FLAGS.num_shards, FLAGS.shard_index)
  print(f"{FLAGS.optimizer}, lr {learning_rate:g}: runs {chunks[0][0]}.."
        f"{chunks[-1][1] - 1} of {FLAGS.num_runs} per strategy in "
        f"{len(chunks)} chunk(s) of up to {FLAGS.chunk_size} networks, on "
        f"{len(data.train)} training images", flush=True)
  strategies = FLAGS.strategies
  accuracies = train_chunks(strategies, chunks, config, data, outputs)
  if FLAGS.num_shards == 1:
    write_full_results(outputs, dict(config, num_runs=FLAGS.num_runs,
                                     chunk_size=FLAGS.chunk_size),
                       strategies, accuracies)
    return
  # A shard: its accuracies and its place; the statistics come at --merge.
  metrics = {"config": dict(config, num_runs=FLAGS.num_runs,
                            chunk_size=FLAGS.chunk_size),
             "strategies": strategies,
             "shard": {"index": FLAGS.shard_index,
                       "num_shards": FLAGS.num_shards}}
  for strategy in strategies:
    metrics[strategy] = {"runs": [chunks[0][0], chunks[-1][1]],
                         "mean": stats.mean(accuracies[strategy]),
                         "std": stats.std(accuracies[strategy]),
                         "accuracies": accuracies[strategy]}
  outputs.finish(metrics)


def merge(paths):
  output_dir = os.path.abspath(FLAGS.output_dir)
  for path in paths:
    shard_dir = os.path.dirname(
        os.path.abspath(results.shard_results_path(path)))
    if shard_dir == output_dir:
      raise results.ShardError(
          f"--output_dir {FLAGS.output_dir} is one of the shards being "
          "merged; choose another directory (merging never changes the "
          "shards)")
  config, strategies, accuracies = results.read_shards(paths)
  print(f"merging {len(paths)} shards: {config['num_runs']} runs per "
        f"strategy", flush=True)
  outputs = RunOutputs(FLAGS.output_dir, overwrite=FLAGS.overwrite)
  write_full_results(outputs, config, strategies, accuracies,
                     {"merged_from": [os.path.abspath(p) for p in paths]})


def main(argv):
  del argv
  if FLAGS.merge:
    merge(FLAGS.merge)
  else:
    train()


if __name__ == "__main__":
  cli.run(main)
