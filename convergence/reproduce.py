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
   ``<output_dir>/<optimizer>``.
3. ``<output_dir>/summary.md``: the table of means, stds and p-values.

``--studies`` picks what to run: ``blog`` (the default) is the above;
``lr_map``, ``best``, ``paired`` and ``persistence`` are issue 12's studies
(``convergence/studies.py``; ``make reproduce-convergence-studies``), which
write ``<output_dir>/studies.md``, ``studies.json`` and their figures.

Run again, it keeps what is done and matches the request: the sweep of an
optimizer whose grid and settings are unchanged, and a finished full run
whose recorded settings are those requested (one with other settings is
refused, never reported as this one; --overwrite redoes it). An interrupted
full run resumes from its finished chunks. --overwrite redoes everything.
"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import json
import os
import shutil
import subprocess
import sys
import time

from absl import flags
import numpy as np

from convergence import data as data_lib
from convergence import scale
from convergence import studies as studies_lib
from convergence import train
from tfscratch.lab import cli
from tfscratch.lab.errors import ScratchError
from tfscratch.lab.files import write_atomically
from tfscratch.lab.files import write_json
from tfscratch.lab.outputs import check_output_dir
from tfscratch.lab.seeding import set_seed

FLAGS = flags.FLAGS
SWEEP_GRID = {"adagrad": [0.001, 0.003, 0.01, 0.03, 0.1],
              "adam": [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03]}
# The sweep's networks are runs far beyond any full run's, so the rate is
# not chosen on the very networks it is then reported for.
SWEEP_FIRST_RUN = 1_000_000

flags.DEFINE_integer("num_runs", 500, "Networks per strategy in each full "
                     "run.", lower_bound=2, upper_bound=SWEEP_FIRST_RUN)
flags.DEFINE_integer("sweep_runs", 20, "Networks per strategy and rate in "
                     "the learning-rate sweep.", lower_bound=1,
                     upper_bound=1000)
cli.define_float("step_scale", 1.0, "Passed to every run (and the sweep): "
                 "less than 1 for a quick trial of this script; at most 100.",
                 minimum=0, exclusive=True, maximum=100)
cli.define_choice_list("optimizers", list(train.DEFAULT_LEARNING_RATES),
                       list(train.DEFAULT_LEARNING_RATES),
                       "Optimizers to run at full scale, comma-separated.")
flags.DEFINE_integer("workers", scale.default_workers(),
                     "Chunks trained at once, in the sweep and in each full "
                     "run.", lower_bound=1, upper_bound=scale.MAX_WORKERS)
flags.DEFINE_string("figures_dir", None, "If set, copy each run's figure "
                    "here as accuracy_distributions_<optimizer>.png (the "
                    "README's are in convergence/figures).")
cli.define_choice_list(
    "studies", ["blog"], list(studies_lib.STUDIES),
    "What to run, comma-separated: blog (the sweep and the three blog-scale "
    "runs of the README's first tables); issue 12's studies: lr_map "
    "(learning rate x strategy, --map_runs networks per cell, validation "
    "images), best (500 + 500 at each optimiser's best rate of lr_map), "
    "paired (SGD, the same --paired_runs starts for all layers, layer-wise, "
    "all layers for 1,400 steps and the two strategy switches), persistence "
    "(the SGD comparison at --persistence_scales times the training "
    "length). Each study writes under <output_dir>/<study>; the studies' "
    "tables go to <output_dir>/studies.md and studies.json.")
flags.DEFINE_integer("map_runs", 50, "Networks per strategy and learning "
                     "rate in the lr_map study.", lower_bound=2,
                     upper_bound=SWEEP_FIRST_RUN)
flags.DEFINE_integer("paired_runs", 500, "Initialisations in the paired "
                     "study (each trained with every strategy).",
                     lower_bound=2, upper_bound=SWEEP_FIRST_RUN)
flags.DEFINE_integer("persistence_runs", 500, "Networks per strategy in "
                     "each run of the persistence study.", lower_bound=2,
                     upper_bound=SWEEP_FIRST_RUN)
flags.DEFINE_list("persistence_scales", ["2", "4"], "Training lengths of "
                  "the persistence study, as multiples of the blog's "
                  "(passed as --step_scale; 1 is the best study's SGD run).")
flags.DEFINE_integer("num_permutations", None, "Relabellings for each run's "
                     "permutation p-values (default: python -m "
                     "convergence's).", lower_bound=100,
                     upper_bound=10_000_000)
flags.register_validator(
    "persistence_scales",
    lambda v: bool(v) and all(studies_lib.is_scale(x) for x in v),
    "--persistence_scales must list numbers in (0, 100], comma-separated")
cli.define_run_flags(default_output_dir="runs/reproduce/convergence")
cli.define_data_dir_flag()



def sweep(data, optimizer):
  """Mean validation accuracy of every rate in the grid; returns the rows and
  the best rate. The (rate, strategy) pairs train --workers at a time."""
  runs = range(SWEEP_FIRST_RUN, SWEEP_FIRST_RUN + FLAGS.sweep_runs)
  tasks = [(learning_rate, strategy)
           for learning_rate in SWEEP_GRID[optimizer]
           for strategy in train.STRATEGIES]

  def train_chunk(task, stacks, stop):
    del stacks  # every task has a rate of its own: nothing to reuse
    learning_rate, strategy = task
    config = train.Config(optimizer=optimizer, learning_rate=learning_rate,
                          step_scale=FLAGS.step_scale, seed=FLAGS.seed)

    def log(first_step, losses):
      del first_step, losses  # a rate that blows up just loses the sweep
      if stop.is_set():
        raise scale.Cancelled(str(task))

    return float(np.mean(train.train_runs(
        config, data, strategy, runs, splits=("validation",),
        log=log)["validation"]))

  accuracies = dict(zip(tasks, scale.train_in_workers(
      train_chunk, tasks, FLAGS.workers)))
  rows = []
  for learning_rate in SWEEP_GRID[optimizer]:
    row = {"learning_rate": learning_rate}
    for strategy in train.STRATEGIES:
      row[strategy] = accuracies[learning_rate, strategy]
    row["mean"] = float(np.mean([row[s] for s in train.STRATEGIES]))
    print(f"{optimizer} lr {learning_rate:g}: validation accuracy " +
          ", ".join(f"{s} {100 * row[s]:.2f}%" for s in train.STRATEGIES),
          flush=True)
    rows.append(row)
  best = max(rows, key=lambda row: row["mean"])["learning_rate"]
  return rows, best


def requested_config(optimizer, learning_rate, num_runs=None,
                     step_scale=None, paired=False, first_run=0):
  """The settings a full run must have recorded to be this one."""
  return {"optimizer": optimizer, "learning_rate": learning_rate,
          "num_runs": FLAGS.num_runs if num_runs is None else num_runs,
          "seed": FLAGS.seed,
          "step_scale": FLAGS.step_scale if step_scale is None else step_scale,
          "batch_size": data_lib.BATCH_SIZE,
          "train_size": data_lib.BLOG_TRAIN_SIZE,
          "train_offset": data_lib.BLOG_TRAIN_OFFSET,
          "chunk_size": scale.DEFAULT_CHUNK_SIZE,
          "paired": paired, "first_run": first_run}


def finished_run_matches(output_dir, requested, strategies=None):
  """True if ``output_dir`` holds a finished run of ``requested`` (and of
  ``strategies``, if given); False if it holds none; ScratchError if it
  holds one with other settings."""
  path = os.path.join(output_dir, "results.json")
  if not os.path.exists(path):
    return False
  try:
    with open(path, encoding="utf-8") as f:
      result = json.load(f)
    recorded = result.get("config")
  except (OSError, ValueError, AttributeError) as error:
    raise ScratchError(f"{path}: unreadable ({error}); pass --overwrite to "
                       "redo the run") from error
  recorded = recorded if isinstance(recorded, dict) else {}
  if strategies is not None:
    recorded = dict(recorded, strategies=result.get("strategies"))
    requested = dict(requested, strategies=list(strategies))
  differences = [f"{key} {recorded.get(key, 'missing')!r} (requested "
                 f"{value!r})" for key, value in requested.items()
                 if recorded.get(key) != value]
  if differences:
    raise ScratchError(
        f"{output_dir} holds a finished run with other settings: "
        f"{', '.join(differences)}; pass --overwrite to redo it, or choose "
        "another --output_dir")
  return True


def full_run(optimizer, learning_rate, output_dir=None, strategies=None,
             extra_flags=(), **settings):
  """``python -m convergence`` in its own process (by default at blog
  scale, into <output_dir>/<optimizer>); a finished run of the same
  settings is kept, an interrupted one resumes.

  Args:
    strategies: None for the default two, else a list.
    extra_flags: more flags for python -m convergence, none of which may
      change a number (so a finished run is kept whatever they were).
    settings: num_runs, step_scale, paired, first_run (requested_config).
  """
  if output_dir is None:
    output_dir = os.path.join(FLAGS.output_dir, optimizer)
  requested = requested_config(optimizer, learning_rate, **settings)
  if not FLAGS.overwrite and finished_run_matches(output_dir, requested,
                                                  strategies):
    print(f"{optimizer}: kept the finished run in {output_dir}", flush=True)
    return output_dir
  command = [sys.executable, "-m", "convergence", f"--optimizer={optimizer}",
             f"--learning_rate={learning_rate}",
             f"--num_runs={requested['num_runs']}", f"--seed={FLAGS.seed}",
             f"--step_scale={requested['step_scale']}",
             f"--workers={FLAGS.workers}", f"--output_dir={output_dir}"]
  if requested["paired"]:
    command.append("--paired")
  if requested["first_run"]:
    command.append(f"--first_run={requested['first_run']}")
  if strategies is not None:
    command.append(f"--strategies={','.join(strategies)}")
  if FLAGS.num_permutations is not None:
    command.append(f"--num_permutations={FLAGS.num_permutations}")
  command += list(extra_flags)
  if FLAGS.data_dir:
    command.append(f"--data_dir={FLAGS.data_dir}")
  if FLAGS.overwrite:  # redo it all, an interrupted run's chunks too
    command += ["--overwrite", "--noresume"]
  print(" ".join(command), flush=True)
  # The child's progress goes straight to stdout; its stderr is kept to
  # report a failure in one line.
  start = time.time()
  child = subprocess.run(command, stderr=subprocess.PIPE, text=True,
                         check=False)
  if child.returncode == 0:
    sys.stderr.write(child.stderr)
    print(f"{output_dir}: {time.time() - start:.0f} s", flush=True)
    return output_dir
  lines = child.stderr.strip().splitlines() or ["(no message)"]
  reason = lines[-1].removeprefix("error: ")
  raise ScratchError(f"the {optimizer} run failed (exit code "
                     f"{child.returncode}): {reason}")


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
  scale.use_one_thread_per_op(FLAGS.workers)
  set_seed(FLAGS.seed)
  check_output_dir(FLAGS.output_dir)
  os.makedirs(FLAGS.output_dir, exist_ok=True)
  if "blog" in FLAGS.studies:
    blog()
  issue12 = [study for study in FLAGS.studies if study != "blog"]
  if issue12:
    studies_lib.run_studies(issue12, full_run, FLAGS)


def blog():
  """The sweep, the three blog-scale runs and summary.md."""
  learning_rates = {"sgd": train.DEFAULT_LEARNING_RATES["sgd"]}
  sweep_path = os.path.join(FLAGS.output_dir, "sweep.json")
  sweeps = {}
  if os.path.exists(sweep_path) and not FLAGS.overwrite:
    with open(sweep_path) as f:
      sweeps = json.load(f)
  for optimizer in [o for o in FLAGS.optimizers if o in SWEEP_GRID]:
    settings = {"grid": SWEEP_GRID[optimizer], "sweep_runs": FLAGS.sweep_runs,
                "seed": FLAGS.seed, "step_scale": FLAGS.step_scale}
    earlier = sweeps.get(optimizer, {})
    if {k: earlier.get(k) for k in settings} == settings:
      print(f"{optimizer}: learning rate {earlier['best']:g} from the "
            f"earlier sweep in {sweep_path}", flush=True)
    else:
      rows, best = sweep(scale.load_data(FLAGS.data_dir,
                                         data_lib.BLOG_TRAIN_SIZE,
                                         data_lib.BLOG_TRAIN_OFFSET),
                         optimizer)
      sweeps[optimizer] = dict(settings, rows=rows, best=best)
      write_json(sweep_path, sweeps)
    learning_rates[optimizer] = sweeps[optimizer]["best"]
    if learning_rates[optimizer] != train.DEFAULT_LEARNING_RATES[optimizer]:
      print(f"note: {optimizer}'s best rate {learning_rates[optimizer]:g} is "
            "not its default in train.DEFAULT_LEARNING_RATES", flush=True)
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
