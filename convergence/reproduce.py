"""Reproduces the blog's experiment and the README's table, start to finish.

  python -m convergence.reproduce --output_dir runs/reproduce/convergence \
      --figures_dir convergence/figures

1. Learning rates for Adagrad and Adam: for each rate of a small grid,
   ``--sweep_runs`` networks of each strategy are trained and measured on the
   validation images (MNIST training-file images 0..4,999, never trained on;
   never the test set). The rate with the best mean validation accuracy over
   both strategies is kept.
2. ``python -m convergence`` at blog scale (500 + 500 networks) with SGD (the
   blog's rates) and with Adagrad and Adam at their chosen rates, each into
   ``<output_dir>/<optimizer>``. Run again after an interruption, it resumes.
3. ``<output_dir>/summary.md``: the table of means, stds and p-values.

Run again, it keeps what is done (the sweep of an optimizer whose grid and
settings are unchanged, finished full runs) and resumes an interrupted full
run; --overwrite redoes everything.
"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import json
import os
import shutil
import subprocess
import sys

from absl import flags
import numpy as np

from convergence import data as data_lib
from convergence import experiment
from tfscratch.lab import cli
from tfscratch.lab.outputs import write_atomically
from tfscratch.lab.outputs import write_json
from tfscratch.lab.seeding import set_seed

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_runs", 500, "Networks per strategy in each full "
                     "run.", lower_bound=2)
flags.DEFINE_integer("sweep_runs", 20, "Networks per strategy and rate in "
                     "the learning-rate sweep.", lower_bound=1)
flags.DEFINE_float("step_scale", 1.0, "Passed to every run (and the sweep): "
                   "less than 1 for a quick trial of this script.")
flags.DEFINE_list("optimizers", ["sgd", "adagrad", "adam"],
                  "Optimizers to run at full scale.")
flags.DEFINE_integer("workers", len(os.sched_getaffinity(0)),
                     "Chunks trained at once, in the sweep and in each full "
                     "run.", lower_bound=1)
flags.DEFINE_string("figures_dir", None, "If set, copy each run's figure "
                    "here as accuracy_distributions_<optimizer>.png (the "
                    "README's are in convergence/figures).")
cli.define_run_flags(default_output_dir="runs/reproduce/convergence")
cli.define_data_dir_flag()

SWEEP_GRID = {"adagrad": [0.001, 0.003, 0.01, 0.03, 0.1],
              "adam": [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03]}
# The sweep's networks are runs far beyond any full run's, so the rate is
# not chosen on the very networks it is then reported for.
SWEEP_FIRST_RUN = 1_000_000


def sweep(data, optimizer):
  """Mean validation accuracy of every rate in the grid; returns the rows and
  the best rate. The (rate, strategy) pairs train --workers at a time."""
  runs = range(SWEEP_FIRST_RUN, SWEEP_FIRST_RUN + FLAGS.sweep_runs)
  tasks = [(learning_rate, strategy)
           for learning_rate in SWEEP_GRID[optimizer]
           for strategy in experiment.STRATEGIES]

  def train_chunk(task, trainers, stop):
    del trainers  # every task has a rate of its own: nothing to reuse
    learning_rate, strategy = task
    trainer = experiment.StackTrainer(data, strategy, len(runs), optimizer,
                                      learning_rate, FLAGS.step_scale)
    return float(np.mean(trainer.train_runs(
        runs, FLAGS.seed, log_every=0, evaluate_on=("validation",),
        stop=stop)["validation"]))

  accuracies = dict(zip(tasks, experiment.train_in_workers(
      train_chunk, tasks, FLAGS.workers)))
  rows = []
  for learning_rate in SWEEP_GRID[optimizer]:
    row = {"learning_rate": learning_rate}
    for strategy in experiment.STRATEGIES:
      row[strategy] = accuracies[learning_rate, strategy]
    row["mean"] = float(np.mean([row[s] for s in experiment.STRATEGIES]))
    print(f"{optimizer} lr {learning_rate:g}: validation accuracy " +
          ", ".join(f"{s} {100 * row[s]:.2f}%" for s in experiment.STRATEGIES),
          flush=True)
    rows.append(row)
  best = max(rows, key=lambda row: row["mean"])["learning_rate"]
  return rows, best


def full_run(optimizer, learning_rate):
  """``python -m convergence`` at blog scale in its own process."""
  output_dir = os.path.join(FLAGS.output_dir, optimizer)
  if os.path.exists(os.path.join(output_dir, "results.json")) and not (
      FLAGS.overwrite):
    print(f"{optimizer}: kept the finished run in {output_dir}", flush=True)
    return output_dir
  command = [sys.executable, "-m", "convergence", f"--optimizer={optimizer}",
             f"--learning_rate={learning_rate}",
             f"--num_runs={FLAGS.num_runs}", f"--seed={FLAGS.seed}",
             f"--step_scale={FLAGS.step_scale}",
             f"--workers={FLAGS.workers}", f"--output_dir={output_dir}"]
  if FLAGS.data_dir:
    command.append(f"--data_dir={FLAGS.data_dir}")
  if FLAGS.overwrite:
    command.append("--overwrite")
  print(" ".join(command), flush=True)
  subprocess.run(command, check=True)
  return output_dir


def summary_table(run_dirs):
  lines = ["| optimizer (lr) | all layers | layer-wise | difference "
           "(95% CI) | Welch p | permutation p | KS D (p) |",
           "|---|---|---|---|---|---|---|"]
  for optimizer, run_dir in run_dirs.items():
    with open(os.path.join(run_dir, "results.json")) as f:
      result = json.load(f)
    tests = result["tests"]
    low, high = tests["mean_difference_ci95"]
    lines.append(
        f"| {optimizer} ({result['config']['learning_rate']:g}) | "
        f"{100 * result['all_layers']['mean']:.2f}% ± "
        f"{100 * result['all_layers']['std']:.2f} | "
        f"{100 * result['layerwise']['mean']:.2f}% ± "
        f"{100 * result['layerwise']['std']:.2f} | "
        f"{100 * tests['mean_difference']:+.2f} ({100 * low:+.2f}.."
        f"{100 * high:+.2f}) | {tests['welch_p']:.2g} | "
        f"{tests['permutation_p']:.2g} | {tests['ks_statistic']:.3f} "
        f"({tests['ks_p']:.2g}) |")
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  experiment.use_one_thread_per_op(FLAGS.workers)
  set_seed(FLAGS.seed)
  os.makedirs(FLAGS.output_dir, exist_ok=True)
  learning_rates = {"sgd": experiment.DEFAULT_LEARNING_RATES["sgd"]}
  sweep_path = os.path.join(FLAGS.output_dir, "sweep.json")
  needed = [o for o in FLAGS.optimizers if o in SWEEP_GRID]
  sweeps = {}
  if os.path.exists(sweep_path) and not FLAGS.overwrite:
    with open(sweep_path) as f:
      sweeps = json.load(f)
  for optimizer in needed:
    settings = {"grid": SWEEP_GRID[optimizer], "sweep_runs": FLAGS.sweep_runs,
                "seed": FLAGS.seed, "step_scale": FLAGS.step_scale}
    earlier = sweeps.get(optimizer, {})
    if {k: earlier.get(k) for k in settings} == settings:
      print(f"{optimizer}: learning rate {earlier['best']:g} from the "
            f"earlier sweep in {sweep_path}", flush=True)
    else:
      rows, best = sweep(data_lib.load_data(FLAGS.data_dir), optimizer)
      sweeps[optimizer] = dict(settings, rows=rows, best=best)
      write_json(sweep_path, sweeps)
    learning_rates[optimizer] = sweeps[optimizer]["best"]
    if (learning_rates[optimizer] !=
        experiment.DEFAULT_LEARNING_RATES[optimizer]):
      print(f"note: {optimizer}'s best rate {learning_rates[optimizer]:g} is "
            "not its default in experiment.DEFAULT_LEARNING_RATES",
            flush=True)
  run_dirs = {o: full_run(o, learning_rates[o]) for o in FLAGS.optimizers}
  if FLAGS.figures_dir:
    os.makedirs(FLAGS.figures_dir, exist_ok=True)
    for optimizer, run_dir in run_dirs.items():
      shutil.copyfile(
          os.path.join(run_dir, "accuracy_distributions.png"),
          os.path.join(FLAGS.figures_dir,
                       f"accuracy_distributions_{optimizer}.png"))
  table = summary_table(run_dirs)
  write_atomically(os.path.join(FLAGS.output_dir, "summary.md"),
                   lambda f: f.write(table.encode("utf-8")))
  print(table, flush=True)


if __name__ == "__main__":
  cli.run(main)
