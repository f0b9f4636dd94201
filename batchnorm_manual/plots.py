"""The three figures of the README, from the Curves ``train`` returns."""
import numpy as np

from batchnorm_manual.train import NETS, THRESHOLDS
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
