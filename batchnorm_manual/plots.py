"""The README's figures, from the Curves ``train`` returns and the claims'
summary (``claims.summarize``)."""
import numpy as np

from batchnorm_manual.claims import FINAL_WINDOW
from batchnorm_manual.train import NETS, POST_FIGURE_LAYER, THRESHOLDS
from tfscratch.lab.figures import plt

LABELS = {"plain": "Without BN", "batchnorm": "With BN"}


def plot_accuracy(main_run):
  """The blog's figure: test accuracy against training steps, with the BN
  net's one-batch evaluation (the blog's way) dotted."""
  figure, (full, zoom) = plt.subplots(1, 2, figsize=(11, 4.2))
  batchnorm = main_run["batchnorm"]
  for axes in (full, zoom):
    for name in NETS:
      axes.plot(main_run[name].steps, main_run[name].accuracy,
                label=LABELS[name])
    axes.plot(batchnorm.steps, batchnorm.accuracy_as_one_batch,
              color="tab:orange", linestyle=":", linewidth=1,
              label="With BN, test set as one batch")
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


def plot_sigmoid_input(main_run, tracked_unit):
  """BN paper figure 1(b, c): percentiles of one sigmoid's input over time."""
  figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
  for axis, name in zip(axes, NETS):
    steps = main_run[name].steps
    values = np.asarray(main_run[name].percentiles)
    axis.fill_between(steps, values[:, 0], values[:, 2], alpha=0.25,
                      label="15th to 85th percentile")
    axis.plot(steps, values[:, 1], label="median")
    axis.plot(steps, values[:, [0, 2]], color="tab:blue", linewidth=0.8)
    axis.set_title(f"{LABELS[name]}: input to sigmoid {tracked_unit} "
                   "of the last hidden layer" +
                   ("\n(test set normalised as one batch)"
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
      axis.plot(run[name].steps, run[name].accuracy, label=LABELS[name])
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


def plot_post_sigmoid_means(main_run):
  """The post's second figure, as drawn: for sigmoids 0-4 of the second
  hidden layer (rows), the mean of its input over the test set against
  training steps, without BN (left) and with BN (right; the test set
  normalised as one batch, as the post did, which makes this mean beta)."""
  means = {name: np.asarray(main_run[name].post_figure_means)
           for name in NETS}
  units = means["plain"].shape[1]
  figure, axes = plt.subplots(units, 2, figsize=(6, 2.4 * units))
  for row in range(units):
    for column, name in enumerate(NETS):
      axis = axes[row][column]
      axis.plot(main_run[name].steps, means[name][:, row], linewidth=0.8)
      axis.set_title(f"{LABELS[name]}, unit {row}", fontsize=9)
      axis.tick_params(labelsize=7)
      axis.grid(alpha=0.3)
  for axis in axes[-1]:
    axis.set_xlabel("Training steps")
  figure.suptitle(f"Mean over the test set of the input to sigmoids 0-"
                  f"{units - 1} of layer {POST_FIGURE_LAYER + 1}",
                  fontsize=10)
  figure.tight_layout()
  return figure


def plot_claims(sweep, summary):
  """The BN paper's claims on the sweep: (left) final test accuracy against
  the learning rate, mean over seeds with min-max bars; (middle, right)
  training and test accuracy and loss over training of each net at its
  best rate, one line per seed."""
  figure, (rates_axis, accuracy_axis, loss_axis) = plt.subplots(
      1, 3, figsize=(15, 4.2))
  table = summary["learning_rates"]
  rates = sorted(table, key=float)
  for name in NETS:
    xs, means, lows, highs = [], [], [], []
    for rate in rates:
      entry = table[rate][name]["final_accuracy"]
      if entry is None:
        continue
      xs.append(float(rate))
      means.append(entry["mean"])
      lows.append(entry["mean"] - entry["min"])
      highs.append(entry["max"] - entry["mean"])
    rates_axis.errorbar(xs, means, yerr=[lows, highs], marker="o",
                        capsize=3, label=LABELS[name])
  rates_axis.set_xscale("log")
  rates_axis.set_xlabel("Learning rate")
  rates_axis.set_ylabel(f"Test accuracy (mean of the last {FINAL_WINDOW} "
                        "steps)")
  rates_axis.set_title(f"Learning rates ({len(sweep)} seeds, min-max bars)")
  rates_axis.grid(alpha=0.3)
  rates_axis.legend(loc="lower left")
  colours = {"plain": "tab:blue", "batchnorm": "tab:orange"}
  for name in NETS:
    rate = summary["best_rate"][name]
    if rate is None:
      continue
    for index, runs in enumerate(sweep.values()):
      curve = runs[rate][name]
      label = (lambda what: f"{LABELS[name]} {what} (lr {rate})"
               if index == 0 else None)
      accuracy_axis.plot(curve.steps, curve.train_accuracy,
                         color=colours[name], linestyle="--", linewidth=0.8,
                         label=label("train"))
      accuracy_axis.plot(curve.steps, curve.accuracy, color=colours[name],
                         linewidth=0.8, label=label("test"))
      loss_axis.plot(curve.steps, curve.train_loss, color=colours[name],
                     linestyle="--", linewidth=0.8, label=label("train"))
      loss_axis.plot(curve.steps, curve.test_loss, color=colours[name],
                     linewidth=0.8, label=label("test"))
  accuracy_axis.set_ylim(0.85, 1)
  accuracy_axis.set_title("Regularisation: accuracy at each best rate")
  loss_axis.set_ylim(0, 0.5)
  loss_axis.set_title("Regularisation: cross-entropy per example")
  for axis in (accuracy_axis, loss_axis):
    axis.set_xlabel("Training steps")
    axis.grid(alpha=0.3)
    axis.legend(loc="best", fontsize=7)
  figure.tight_layout()
  return figure
