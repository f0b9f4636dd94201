"""The BN paper's three claims, measured on the sweep's curves.

Ioffe & Szegedy (2015) say batch normalization (1) enables higher learning
rates, (2) acts as a regularizer and (3) speeds training up (14 times fewer
steps on ImageNet). ``train.sweep`` trains both nets at every learning rate
from several seeds; this file reduces those curves to one table per claim.
Plain functions over {seed: {rate: {net: Curve}}}; no TensorFlow.

Spreads are over seeds (each seed: its own N(0, 1) weights and shuffles):
mean, sample standard deviation (ddof=1; 0 for one seed), min and max.
"""
import numpy as np

from batchnorm_manual.train import NETS, THRESHOLDS, steps_to_reach

# The "final" accuracy is the mean of the evaluations over the last this
# many steps: one evaluation is noisy (the plain net moves by a point
# between two evaluations 50 steps apart).
FINAL_WINDOW = 1000


def spread(values):
  """{"mean", "std", "min", "max", "n"} of a list of numbers (None if it is
  empty)."""
  if not values:
    return None
  values = np.asarray(values, np.float64)
  return {"mean": float(values.mean()),
          "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
          "min": float(values.min()), "max": float(values.max()),
          "n": len(values)}


def final_mean(curve, values):
  """Mean of ``values`` (one per evaluated step of ``curve``) over the last
  FINAL_WINDOW steps; None if the run diverged."""
  if curve.diverged_at is not None or not values:
    return None
  last = curve.steps[-1]
  return float(np.mean([value for step, value in zip(curve.steps, values)
                        if step >= last - FINAL_WINDOW]))


def learning_rates(runs):
  """Claim 1. {rate: {net: {"final_accuracy": spread, "diverged": count,
  "steps_to": {threshold: spread of the steps over the seeds that reached
  it, with "reached": how many did}}}}."""
  table = {}
  seeds = list(runs)
  for rate in runs[seeds[0]]:
    table[rate] = {}
    for name in NETS:
      curves = [runs[seed][rate][name] for seed in seeds]
      finals = [final_mean(c, c.accuracy) for c in curves]
      reached = [steps_to_reach(c) for c in curves]
      table[rate][name] = {
          "final_accuracy": spread([f for f in finals if f is not None]),
          "diverged": sum(c.diverged_at is not None for c in curves),
          "steps_to": {
              key: {"reached": sum(r[key] is not None for r in reached),
                    **(spread([r[key] for r in reached
                               if r[key] is not None]) or {})}
              for key in reached[0]}}
  return table


def best_rate(table, name, key=None):
  """The net's best learning rate: the highest mean final accuracy among
  rates no seed diverged at; with ``key`` ("0.90"...), the rate every seed
  reaches that accuracy at, in the fewest steps on average (None if none)."""
  candidates = []
  for rate, nets in table.items():
    entry = nets[name]
    if entry["diverged"] or entry["final_accuracy"] is None:
      continue
    if key is None:
      candidates.append((-entry["final_accuracy"]["mean"], rate))
    else:
      steps = entry["steps_to"][key]
      if steps["reached"] == entry["final_accuracy"]["n"]:
        candidates.append((steps["mean"], rate))
  return min(candidates)[1] if candidates else None


def regularisation(runs, rates):
  """Claim 2. For each net at ``rates[net]``: the final (last FINAL_WINDOW
  steps) training and test accuracy and loss, and the gaps train - test
  (accuracy) and test - train (loss), each a spread over seeds. A
  regulariser narrows the gaps."""
  result = {}
  for name in NETS:
    rate = rates[name]
    if rate is None:
      continue
    curves = [seed_runs[rate][name] for seed_runs in runs.values()]
    finals = {key: [final_mean(c, getattr(c, key)) for c in curves]
              for key in ("accuracy", "train_accuracy", "test_loss",
                          "train_loss")}
    usable = [i for i in range(len(curves))
              if None not in [values[i] for values in finals.values()]]
    result[name] = {"learning_rate": rate, **{
        key: spread([values[i] for i in usable])
        for key, values in finals.items()},
        "accuracy_gap": spread([finals["train_accuracy"][i] -
                                finals["accuracy"][i] for i in usable]),
        "loss_gap": spread([finals["test_loss"][i] - finals["train_loss"][i]
                            for i in usable])}
  return result


def speed_up(runs, table):
  """Claim 3. For each threshold: each net at its own best rate for it
  (``best_rate``), the steps to reach it, and the ratio plain steps / BN
  steps seed by seed (a spread). Missing when either net never reaches the
  threshold at any rate on every seed."""
  result = {}
  for threshold in THRESHOLDS:
    key = f"{threshold:.2f}"
    rates = {name: best_rate(table, name, key) for name in NETS}
    entry = {"best_rate": rates}
    if None not in rates.values():
      steps = {name: [steps_to_reach(seed_runs[rates[name]][name])[key]
                      for seed_runs in runs.values()] for name in NETS}
      entry.update(
          steps={name: spread(values) for name, values in steps.items()},
          ratio=spread([p / b for p, b in zip(steps["plain"],
                                              steps["batchnorm"])]))
    result[key] = entry
  return result


def summarize(runs):
  """{"learning_rates", "best_rate", "regularisation" (at each net's best
  rate), "regularisation_at_0.01" (the post's rate, if swept), "speed_up"}."""
  table = learning_rates(runs)
  best = {name: best_rate(table, name) for name in NETS}
  summary = {"learning_rates": table, "best_rate": best,
             "regularisation": regularisation(runs, best),
             "speed_up": speed_up(runs, table)}
  if "0.01" in table:
    summary["regularisation_at_0.01"] = regularisation(
        runs, {name: "0.01" for name in NETS})
  return summary
