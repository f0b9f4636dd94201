"""The loss curve of a run, read against the three analytic yardsticks."""
import numpy as np

from tfscratch.lab.figures import plt

# The post plotted the mean loss of each block of this many windows.
POST_BLOCK = 100
YARDSTICKS = {"no_dependency": ("tab:red", "no dependency"),
              "first_dependency": ("tab:orange", "t-3 dependency only"),
              "both_dependencies": ("tab:green", "both dependencies")}


def plot_losses(losses, expected, title, windows_per_epoch=None):
  """Per-window losses (faint), the post's curve (mean of each block of 100
  windows), the yardsticks (dashed) and, for several epochs, where each new
  series starts (dotted)."""
  losses = np.asarray(losses, dtype=np.float64)
  figure, axes = plt.subplots(figsize=(10, 4.5))
  axes.plot(np.arange(1, losses.size + 1), losses, color="tab:blue",
            alpha=0.25, linewidth=0.5, label="loss per window")
  block = min(POST_BLOCK, losses.size)
  blocks = losses.size // block
  means = losses[:blocks * block].reshape(blocks, block).mean(axis=1)
  axes.plot(np.arange(1, blocks + 1) * block, means, color="tab:blue",
            marker="." if blocks <= 100 else None,
            label=f"mean of each {block} windows (the post's curve)")
  for key, (color, label) in YARDSTICKS.items():
    axes.axhline(expected[key], color=color, linestyle="--",
                 label=f"{label}: {expected[key]:.3f}")
  if windows_per_epoch and losses.size > windows_per_epoch:
    for start in range(windows_per_epoch, losses.size, windows_per_epoch):
      axes.axvline(start, color="grey", linestyle=":", linewidth=0.8)
  axes.set_xlabel("window (training step)")
  axes.set_ylabel("cross-entropy (nats/step)")
  axes.set_title(title)
  axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
  return figure
