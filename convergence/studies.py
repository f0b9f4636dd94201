"""Issue 12's studies: run machinery and report, not a lesson.

  python -m convergence.reproduce --studies lr_map,best,paired,persistence \
      --output_dir runs/reproduce/convergence_studies \
      --figures_dir convergence/figures

Every network is trained by ``python -m convergence`` (``reproduce.full_run``:
a finished run with the same recorded settings is kept, an interrupted one
resumes, one with other settings is refused). This module decides which runs,
and turns their results.json files into ``studies.json``, ``studies.md`` and
the figures:

  lr_map       for each optimiser and each rate of LR_GRID, --map_runs
               networks per strategy (runs 1,000,000 up: no reported network),
               scored on the 5,000 held-out validation images. The best rate
               has the best mean over both strategies (the rule of the old
               sweep).
  best         500 + 500 networks at each optimiser's best rate (SGD's best
               is 0.01: that run is the blog's, at default flags).
  paired       SGD 0.01, --paired: the same --paired_runs starts trained with
               all_layers, layerwise, all_layers_equal (1,400 steps) and the
               two strategy switches (train.CONTROL_STRATEGIES).
  persistence  the blog's SGD comparison at --persistence_scales times its
               training length (--step_scale), --persistence_runs per strategy.
"""
import json
import math
import os
import shutil

import numpy as np

from convergence import stats
from convergence import train
from tfscratch.lab.errors import ScratchError
from tfscratch.lab.figures import plt
from tfscratch.lab.figures import save_figure
from tfscratch.lab.files import write_atomically
from tfscratch.lab.files import write_json

STUDIES = ("blog", "lr_map", "best", "paired", "persistence")
# Half-decade steps (x ~3.16), bracketing the rate the blog used or the old
# sweep chose (SGD 0.01, Adagrad 0.03, Adam 0.01); Adagrad's and Adam's
# include every rate of the old sweep. SGD's loss blows up from 0.03 on, so
# its grid adds 0.005 and 0.02 around its best and where the ranking flips.
LR_GRID = {"sgd": [0.001, 0.003, 0.005, 0.01, 0.02, 0.03, 0.1, 0.3],
           "adagrad": [0.001, 0.003, 0.01, 0.03, 0.1, 0.3],
           "adam": [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03]}
MAP_FIRST_RUN = 1_000_000
# The map keeps a rate at which the loss blows up (SGD from 0.03: the mean
# loss passes 10x its first value within 150 steps) and reports the
# accuracies its networks end with: only a NaN stops a run.
MAP_FLAGS = ("--divergence_factor=1e9",)
# A cell whose networks end below this training accuracy diverged.
DIVERGED_ACCURACY = 0.5
PAIRED_STRATEGIES = ["all_layers", "layerwise", "all_layers_equal",
                     "switch_layer3", "switch_layers23"]
SGD_RATE = train.DEFAULT_LEARNING_RATES["sgd"]
# Restart tail: E[best of N] for these N.
TAIL_SIZES = [1, 2, 5, 10, 20, 50, 100, 200, 500]
STRATEGY_LABELS = {"all_layers": "all layers", "layerwise": "layer-wise",
                   "all_layers_equal": "all layers, 1,400 steps",
                   "switch_layer3": "switch: layer 3 redrawn",
                   "switch_layers23": "switch: layers 2-3 redrawn"}


def is_scale(text):
  try:
    value = float(text)
  except ValueError:
    return False
  return math.isfinite(value) and 0 < value <= 100


def load(run_dir):
  with open(os.path.join(run_dir, "results.json"), encoding="utf-8") as f:
    return json.load(f)


def percent(value):
  return 100 * np.asarray(value, np.float64)


def verdict(low, high):
  """Which strategy a 95% interval of (all layers - layer-wise) favours."""
  if low > 0:
    return "all layers ahead"
  if high < 0:
    return "layer-wise ahead"
  return "inside the noise"


def compare_cell(all_layers, layerwise, seed):
  """Means, 95% intervals, difference and Welch p of two samples."""
  welch = stats.welch_t_test(all_layers, layerwise)
  low, high = stats.bootstrap_difference_interval(all_layers, layerwise,
                                                  seed=seed)
  return {"all_layers": stats.mean(all_layers),
          "all_layers_ci95": stats.bootstrap_interval(all_layers, seed=seed),
          "layerwise": stats.mean(layerwise),
          "layerwise_ci95": stats.bootstrap_interval(layerwise, seed=seed),
          "difference": stats.mean(all_layers) - stats.mean(layerwise),
          "difference_ci95": [low, high], "welch_p": welch["p"],
          "verdict": verdict(low, high), "count": len(all_layers)}


# Running ---------------------------------------------------------------------


def run_lr_map(full_run, flags, out):
  cells = {}
  for optimizer in flags.optimizers:
    for learning_rate in LR_GRID[optimizer]:
      run_dir = os.path.join(out, "lr_map", f"{optimizer}_lr{learning_rate:g}")
      try:
        full_run(optimizer, learning_rate, output_dir=run_dir,
                 num_runs=flags.map_runs, first_run=MAP_FIRST_RUN,
                 extra_flags=MAP_FLAGS)
      except ScratchError as error:  # a rate that blows up loses the map
        print(f"{run_dir}: {error}", flush=True)
        cells[optimizer, learning_rate] = {"failed": str(error)}
        continue
      cells[optimizer, learning_rate] = run_dir
  return cells


def best_rates(out, optimizers, seed):
  """Each optimiser's lr_map rows and best rate (mean validation accuracy
  over both strategies)."""
  rows, best = {}, {}
  for optimizer in optimizers:
    rows[optimizer] = []
    for learning_rate in LR_GRID[optimizer]:
      run_dir = os.path.join(out, "lr_map", f"{optimizer}_lr{learning_rate:g}")
      row = {"learning_rate": learning_rate}
      if not os.path.exists(os.path.join(run_dir, "results.json")):
        row["failed"] = "no finished run (diverged, or not run)"
        rows[optimizer].append(row)
        continue
      result = load(run_dir)
      for split, key in (("validation", "validation_accuracies"),
                         ("test", "accuracies")):
        row[split] = compare_cell(result["all_layers"][key],
                                  result["layerwise"][key], seed)
      for strategy in train.STRATEGIES:
        row[f"{strategy}_train_loss"] = result[strategy]["mean_train_losses"]
        row[f"{strategy}_train_accuracy"] = result[strategy][
            "mean_train_accuracies"]
      row["mean"] = (row["validation"]["all_layers"] +
                     row["validation"]["layerwise"]) / 2
      # The loss blew up: both strategies at chance on their own training
      # images. Their difference means nothing.
      row["diverged"] = all(row[f"{s}_train_accuracy"] < DIVERGED_ACCURACY
                            for s in train.STRATEGIES)
      row["seconds"] = result.get("wall_time_seconds")
      rows[optimizer].append(row)
    finished = [row for row in rows[optimizer] if "mean" in row]
    if finished:
      best[optimizer] = max(finished, key=lambda r: r["mean"])["learning_rate"]
  return rows, best


def run_studies(studies, full_run, flags):
  """Runs the requested studies (keeping finished runs), then writes the
  report of every study whose runs are there."""
  out = flags.output_dir
  if "lr_map" in studies:
    run_lr_map(full_run, flags, out)
  if "best" in studies:
    _, best = best_rates(out, flags.optimizers, flags.seed)
    for optimizer in flags.optimizers:
      if optimizer not in best:
        raise ScratchError(f"no lr_map result for {optimizer}: run "
                           "--studies=lr_map first")
      full_run(optimizer, best[optimizer],
               output_dir=os.path.join(out, "best", optimizer))
  if "paired" in studies:
    full_run("sgd", SGD_RATE, output_dir=os.path.join(out, "paired", "sgd"),
             strategies=PAIRED_STRATEGIES, num_runs=flags.paired_runs,
             paired=True)
  if "persistence" in studies:
    for text in flags.persistence_scales:
      step_scale = float(text) * flags.step_scale
      full_run("sgd", SGD_RATE, step_scale=step_scale,
               num_runs=flags.persistence_runs,
               output_dir=os.path.join(out, "persistence",
                                       f"sgd_x{step_scale:g}"))
  report(out, flags)


# Report ----------------------------------------------------------------------


def report(out, flags):
  """studies.json, studies.md and the figures, from the finished runs."""
  results, lines = {}, []
  figures = {}
  rows, best = best_rates(out, [o for o in LR_GRID], flags.seed)
  if any("mean" in row for r in rows.values() for row in r):
    results["lr_map"] = {"rows": rows, "best": best,
                         "map_runs": flags.map_runs}
    lines += lr_map_table(rows, best)
    figures["lr_map.png"] = lr_map_figure(rows)
  best_dirs = {o: os.path.join(out, "best", o) for o in LR_GRID}
  best_dirs = {o: d for o, d in best_dirs.items()
               if os.path.exists(os.path.join(d, "results.json"))}
  if best_dirs:
    results["best"], table = best_table(best_dirs)
    lines += table
  paired_dir = os.path.join(out, "paired", "sgd")
  if os.path.exists(os.path.join(paired_dir, "results.json")):
    results["paired"], table = paired_section(load(paired_dir), flags.seed)
    lines += table
  persistence = persistence_runs(out, best_dirs.get("sgd"))
  if len(persistence) > 1:
    results["persistence"], table = persistence_section(persistence,
                                                        flags.seed)
    lines += table
    figures["persistence_gap.png"] = persistence_figure(
        results["persistence"])
  tail_source = best_dirs.get("sgd")
  if tail_source:
    results["restart_tail"], table = restart_tail(load(tail_source))
    lines += table
    figures["restart_tail.png"] = restart_tail_figure(results["restart_tail"])
  if "paired" in results and tail_source:
    results["switch"], table = switch_section(
        load(paired_dir), load(tail_source),
        persistence.get(2.0) and load(persistence[2.0]))
    lines += table
  write_json(os.path.join(out, "studies.json"), results)
  text = "\n".join(lines) + "\n"
  write_atomically(os.path.join(out, "studies.md"),
                   lambda f: f.write(text.encode("utf-8")))
  for name, figure in figures.items():
    path = os.path.join(out, name)
    save_figure(figure, path, dpi=100)
    if flags.figures_dir:
      os.makedirs(flags.figures_dir, exist_ok=True)
      shutil.copyfile(path, os.path.join(flags.figures_dir, name))
  print(text, flush=True)


def fmt_cell(cell):
  low, high = cell["difference_ci95"]
  return (f"{100 * cell['all_layers']:.2f} / {100 * cell['layerwise']:.2f} | "
          f"{100 * cell['difference']:+.2f} ({100 * low:+.2f}..{100 * high:+.2f})"
          f" | {cell['welch_p']:.2g} | {cell['verdict']}")


def lr_map_table(rows, best):
  lines = ["## Learning rate x strategy (validation accuracy, %)", "",
           "| optimiser | lr | all layers / layer-wise | difference (95% CI) "
           "| Welch p | verdict | training loss, all / layer-wise | "
           "test: difference (95% CI) |",
           "|---|---|---|---|---|---|---|---|"]
  for optimizer, optimizer_rows in rows.items():
    for row in optimizer_rows:
      mark = " (best)" if best.get(optimizer) == row["learning_rate"] else ""
      if "failed" in row:
        lines.append(f"| {optimizer} | {row['learning_rate']:g} | "
                     f"{row['failed']} | | | | | |")
        continue
      test = row["test"]
      cell = fmt_cell(row["validation"])
      if row["diverged"]:
        cell = cell.rsplit("|", 1)[0] + "| diverged: both at chance"
      lines.append(
          f"| {optimizer} | {row['learning_rate']:g}{mark} | {cell} | "
          f"{row['all_layers_train_loss']:.4f} / "
          f"{row['layerwise_train_loss']:.4f} | "
          f"{100 * test['difference']:+.2f} ({100 * test['difference_ci95'][0]:+.2f}"
          f"..{100 * test['difference_ci95'][1]:+.2f}) |")
  return lines + [""]


def lr_map_figure(rows):
  figure, axes = plt.subplots(1, len(rows), figsize=(5 * len(rows), 4))
  axes = np.atleast_1d(axes)
  for axis, (optimizer, optimizer_rows) in zip(axes, rows.items()):
    done = [row for row in optimizer_rows
            if "validation" in row and not row["diverged"]]
    diverged = [row["learning_rate"] for row in optimizer_rows
                if row.get("diverged")]
    rates = [row["learning_rate"] for row in done]
    for strategy, color in (("all_layers", "tab:blue"),
                            ("layerwise", "tab:green")):
      means = [100 * row["validation"][strategy] for row in done]
      lows = [100 * row["validation"][f"{strategy}_ci95"][0] for row in done]
      highs = [100 * row["validation"][f"{strategy}_ci95"][1] for row in done]
      axis.errorbar(rates, means,
                    yerr=[np.subtract(means, lows), np.subtract(highs, means)],
                    marker="o", capsize=3, color=color,
                    label=STRATEGY_LABELS[strategy])
    axis.set_xscale("log")
    # A strategy that blows up at one rate (SGD 0.02: all layers) would
    # flatten the rest: the axis keeps to the points above 50%, and the
    # others are written at its foot.
    means = [100 * row["validation"][s] for row in done
             for s in ("all_layers", "layerwise")]
    if means and min(means) < 100 * DIVERGED_ACCURACY:
      kept = [m for m in means if m >= 100 * DIVERGED_ACCURACY]
      axis.set_ylim(min(kept) - 0.3, max(kept) + 0.3)
      for row in done:
        for strategy in ("all_layers", "layerwise"):
          value = 100 * row["validation"][strategy]
          if value < 100 * DIVERGED_ACCURACY:
            axis.annotate(f"{STRATEGY_LABELS[strategy]}: {value:.1f}%",
                          (row["learning_rate"], min(kept) - 0.3),
                          textcoords="offset points", xytext=(-40, 8),
                          fontsize=8, arrowprops={"arrowstyle": "->"})
    if diverged:  # drawn at chance level they would flatten the rest
      axis.set_xlim(right=max(diverged) * 1.5)
      for rate in diverged:
        axis.axvline(rate, color="gray", linestyle=":")
      axis.text(min(diverged), axis.get_ylim()[0], " diverged (chance)",
                rotation=90, va="bottom", color="gray")
    axis.set_xlabel("base learning rate")
    axis.set_title(f"{optimizer} ({done[0]['validation']['count']} networks "
                   "per point)" if done else optimizer)
    axis.grid(alpha=0.3)
  axes[0].set_ylabel("validation accuracy, mean and 95% CI (%)")
  axes[0].legend()
  return figure


def best_table(best_dirs):
  results = {}
  lines = ["## Blog scale at each optimiser's best rate (test accuracy, %)",
           "",
           "| optimiser (lr) | all layers | layer-wise | difference (95% CI) "
           "| Welch p | training loss, all / layer-wise | training accuracy, "
           "all / layer-wise | wall time |",
           "|---|---|---|---|---|---|---|---|"]
  for optimizer, run_dir in best_dirs.items():
    result = load(run_dir)
    tests = result["tests"]
    low, high = tests["mean_difference_ci95"]
    results[optimizer] = {
        "learning_rate": result["config"]["learning_rate"],
        "all_layers": result["all_layers"]["mean"],
        "all_layers_std": result["all_layers"]["std"],
        "layerwise": result["layerwise"]["mean"],
        "layerwise_std": result["layerwise"]["std"],
        "difference": tests["mean_difference"],
        "difference_ci95": [low, high], "welch_p": tests["welch_p"],
        "train_losses": [result[s]["mean_train_losses"]
                         for s in train.STRATEGIES],
        "train_accuracies": [result[s]["mean_train_accuracies"]
                             for s in train.STRATEGIES],
        "seconds": result.get("wall_time_seconds")}
    r = results[optimizer]
    lines.append(
        f"| {optimizer} ({r['learning_rate']:g}) | {100 * r['all_layers']:.2f}"
        f" ± {100 * r['all_layers_std']:.2f} | {100 * r['layerwise']:.2f} ± "
        f"{100 * r['layerwise_std']:.2f} | {100 * r['difference']:+.2f} "
        f"({100 * low:+.2f}..{100 * high:+.2f}) | {r['welch_p']:.3g} | "
        f"{r['train_losses'][0]:.4f} / {r['train_losses'][1]:.4f} | "
        f"{100 * r['train_accuracies'][0]:.2f} / "
        f"{100 * r['train_accuracies'][1]:.2f} | {seconds(r['seconds'])} |")
  return results, lines + [""]


def seconds(value):
  return "—" if value is None else f"{value:.0f} s"


def paired_section(result, seed):
  """Every strategy against all_layers and against layerwise, init by init."""
  accuracies = {s: result[s]["accuracies"] for s in result["strategies"]}
  section = {"count": len(accuracies["all_layers"]),
             "seconds": result.get("wall_time_seconds"), "strategies": {},
             "pairs": {}}
  lines = [f"## Paired: the same {section['count']} starts, SGD 0.01 "
           "(test accuracy, %)", "",
           "| strategy | steps | test accuracy | training loss | training "
           "accuracy |", "|---|---|---|---|---|"]
  for strategy in result["strategies"]:
    part = result[strategy]
    section["strategies"][strategy] = {
        "mean": part["mean"], "std": part["std"],
        "train_loss": part["mean_train_losses"],
        "train_accuracy": part["mean_train_accuracies"],
        "steps": train.total_steps(strategy)}
    lines.append(f"| {STRATEGY_LABELS[strategy]} | "
                 f"{train.total_steps(strategy):,} | {100 * part['mean']:.2f} "
                 f"± {100 * part['std']:.2f} | "
                 f"{part['mean_train_losses']:.4f} | "
                 f"{100 * part['mean_train_accuracies']:.2f} |")
  lines += ["", "| pair (a − b) | mean difference (95% CI) | a better / ties "
            "| paired t p | sign p | Wilcoxon p | correlation |",
            "|---|---|---|---|---|---|---|"]
  pairs = [("all_layers", s) for s in result["strategies"]
           if s != "all_layers"]
  if "all_layers_equal" in accuracies and "layerwise" in accuracies:
    pairs.append(("all_layers_equal", "layerwise"))
  for a, b in pairs:
    paired = stats.paired_compare(accuracies[a], accuracies[b])
    section["pairs"][f"{a}-{b}"] = paired
    low, high = paired["mean_difference_ci95"]
    lines.append(
        f"| {STRATEGY_LABELS[a]} − {STRATEGY_LABELS[b]} | "
        f"{100 * paired['mean_difference']:+.3f} ({100 * low:+.3f}.."
        f"{100 * high:+.3f}) | {100 * paired['fraction_a_better']:.1f}% / "
        f"{100 * paired['fraction_ties']:.1f}% | {paired['t_p']:.3g} | "
        f"{paired['sign_p']:.3g} | {paired['wilcoxon_p']:.3g} | "
        f"{paired['correlation']:.2f} |")
  del seed
  return section, lines + [""]


def persistence_runs(out, one_x_dir):
  runs = {}
  if one_x_dir:
    runs[1.0] = one_x_dir
  base = os.path.join(out, "persistence")
  if os.path.isdir(base):
    for name in os.listdir(base):
      path = os.path.join(base, name)
      if name.startswith("sgd_x") and os.path.exists(
          os.path.join(path, "results.json")):
        runs[float(name[len("sgd_x"):])] = path
  return dict(sorted(runs.items()))


def persistence_section(runs, seed):
  section = {}
  lines = ["## Persistence: the SGD comparison at longer training "
           "(test accuracy, %)", "",
           "| length | networks | all layers | layer-wise | difference (95% "
           "CI) | Welch p | training loss, all / layer-wise | training "
           "accuracy, all / layer-wise | wall time |",
           "|---|---|---|---|---|---|---|---|---|"]
  for step_scale, run_dir in runs.items():
    result = load(run_dir)
    cell = compare_cell(result["all_layers"]["accuracies"],
                        result["layerwise"]["accuracies"], seed)
    cell.update(
        step_scale=step_scale, seconds=result.get("wall_time_seconds"),
        train_losses=[result[s]["mean_train_losses"]
                      for s in train.STRATEGIES],
        train_accuracies=[result[s]["mean_train_accuracies"]
                          for s in train.STRATEGIES])
    section[f"{step_scale:g}"] = cell
    low, high = cell["difference_ci95"]
    lines.append(
        f"| {step_scale:g}× ({train.total_steps('all_layers', step_scale):,}"
        f" / {train.total_steps('layerwise', step_scale):,} steps) | "
        f"{cell['count']} + {cell['count']} | {100 * cell['all_layers']:.2f} |"
        f" {100 * cell['layerwise']:.2f} | {100 * cell['difference']:+.2f} "
        f"({100 * low:+.2f}..{100 * high:+.2f}) | {cell['welch_p']:.3g} | "
        f"{cell['train_losses'][0]:.4f} / {cell['train_losses'][1]:.4f} | "
        f"{100 * cell['train_accuracies'][0]:.2f} / "
        f"{100 * cell['train_accuracies'][1]:.2f} | "
        f"{seconds(cell['seconds'])} |")
  return section, lines + [""]


def persistence_figure(section):
  figure, axes = plt.subplots(figsize=(6, 4))
  scales = [float(k) for k in section]
  gaps = [100 * c["difference"] for c in section.values()]
  lows = [100 * c["difference_ci95"][0] for c in section.values()]
  highs = [100 * c["difference_ci95"][1] for c in section.values()]
  axes.errorbar(scales, gaps, yerr=[np.subtract(gaps, lows),
                                    np.subtract(highs, gaps)],
                marker="o", capsize=4)
  axes.axhline(0, color="gray", linewidth=1)
  axes.set_xscale("log", base=2)
  axes.set_xticks(scales)
  axes.set_xticklabels([f"{s:g}×" for s in scales])
  axes.set_xlabel("training length (× the blog's 1,000 / 1,400 steps)")
  axes.set_ylabel("all layers − layer-wise, test (points, 95% CI)")
  axes.set_title("SGD 0.01: the gap vs training length")
  axes.grid(alpha=0.3)
  return figure


def restart_tail(result):
  """Best of N restarts: E[max of N] from the run distribution."""
  section, lines = {}, [
      "## Restart tail: the best of N random starts (test accuracy, %)", "",
      "| strategy | " + " | ".join(f"N={n}" for n in TAIL_SIZES) +
      " | 99th percentile | sample max |",
      "|---|" + "---|" * (len(TAIL_SIZES) + 2)]
  for strategy in train.STRATEGIES:
    values = result[strategy]["accuracies"]
    tail = {str(n): stats.expected_max(values, n) for n in TAIL_SIZES}
    section[strategy] = {"expected_max": tail,
                         "p99": float(np.quantile(values, 0.99)),
                         "max": float(np.max(values)),
                         "count": len(values)}
    lines.append(f"| {STRATEGY_LABELS[strategy]} | " +
                 " | ".join(f"{100 * v:.2f}" for v in tail.values()) +
                 f" | {100 * section[strategy]['p99']:.2f} | "
                 f"{100 * section[strategy]['max']:.2f} |")
  return section, lines + [""]


def restart_tail_figure(section):
  figure, axes = plt.subplots(figsize=(6, 4))
  for strategy, color in (("all_layers", "tab:blue"),
                          ("layerwise", "tab:green")):
    tail = section[strategy]["expected_max"]
    axes.plot([int(n) for n in tail], percent(list(tail.values())),
              marker="o", color=color, label=STRATEGY_LABELS[strategy])
  axes.set_xscale("log")
  axes.set_xlabel("random starts N")
  axes.set_ylabel("expected best test accuracy of N (%)")
  axes.set_title("The upper tail of restarts (SGD 0.01)")
  axes.grid(alpha=0.3)
  axes.legend()
  return figure


def switch_section(paired, reference, two_x):
  """Strategy switches against the random-start distribution."""
  random_starts = np.asarray(reference["all_layers"]["accuracies"])
  p99, best = np.quantile(random_starts, 0.99), random_starts.max()
  section = {"random_starts": {"count": len(random_starts),
                               "mean": float(random_starts.mean()),
                               "p99": float(p99), "max": float(best)}}
  lines = ["## Strategy switch: keep layers 1-2 (or 1), redraw the rest, "
           "retrain 1,000 steps (test accuracy, %)", "",
           f"Random-start distribution: all layers, {len(random_starts)} "
           f"networks, mean {100 * random_starts.mean():.2f}, 99th "
           f"percentile {100 * p99:.2f}, best {100 * best:.2f}.", "",
           "| variant | networks | mean ± std | best | above the 99th "
           "percentile | above the best | paired vs own network before the "
           "switch (better / mean) |", "|---|---|---|---|---|---|---|"]
  before = np.asarray(paired["all_layers"]["accuracies"])
  for strategy in ("switch_layer3", "switch_layers23"):
    if strategy not in paired["strategies"]:
      continue
    values = np.asarray(paired[strategy]["accuracies"])
    own = stats.paired_compare(values, before)
    entry = {"count": len(values), "mean": float(values.mean()),
             "std": float(values.std()), "max": float(values.max()),
             "fraction_above_p99": float(np.mean(values > p99)),
             "fraction_above_max": float(np.mean(values > best)),
             "paired_vs_before": own}
    if two_x:
      entry["welch_vs_2x_all_layers"] = stats.welch_t_test(
          values, two_x["all_layers"]["accuracies"])
    section[strategy] = entry
    lines.append(
        f"| {STRATEGY_LABELS[strategy]} | {len(values)} | "
        f"{100 * values.mean():.2f} ± {100 * values.std():.2f} | "
        f"{100 * values.max():.2f} | {100 * entry['fraction_above_p99']:.1f}%"
        f" | {100 * entry['fraction_above_max']:.1f}% | "
        f"{100 * own['fraction_a_better']:.1f}% / "
        f"{100 * own['mean_difference']:+.2f} (sign p {own['sign_p']:.2g}) |")
  if two_x:
    values = np.asarray(two_x["all_layers"]["accuracies"])
    section["all_layers_2x"] = {"count": len(values),
                                "mean": float(values.mean()),
                                "max": float(values.max())}
    lines += ["", f"Same 2,000-step budget without a switch (all layers at "
              f"2× length, {len(values)} networks): mean "
              f"{100 * values.mean():.2f}, best {100 * values.max():.2f}."]
  return section, lines + [""]
