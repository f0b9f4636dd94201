"""The blog's figure: the distribution of test accuracy under each strategy."""
import numpy as np

from convergence import stats
from tfscratch.lab.figures import plt

LABELS = {"all_layers": "Train all layers",
          "layerwise": "Train layer-by-layer",
          "all_layers_equal": "All layers, 1,400 steps",
          "switch_layer3": "All layers, layer 3 redrawn, retrained",
          "switch_layers23": "All layers, layers 2-3 redrawn, retrained"}
ACCURACY_STEP = 0.01  # percent: one of the 10,000 test images
COLORS = {"all_layers": "tab:blue", "layerwise": "tab:green",
          "all_layers_equal": "tab:orange", "switch_layer3": "tab:red",
          "switch_layers23": "tab:purple"}


def plot_distributions(accuracies, title):
  """Histograms (as densities) with a Gaussian kernel density line each, as
  seaborn's distplot drew them in the blog.

  Args:
    accuracies: dict strategy -> test accuracies (fractions).
  """
  figure, axes = plt.subplots(figsize=(8, 4.5))
  pooled = np.concatenate([np.asarray(a) for a in accuracies.values()]) * 100
  low, high = pooled.min(), pooled.max()
  margin = max(0.1, 0.1 * (high - low))
  grid = np.linspace(low - margin, high + margin, 400)
  # Accuracies are whole numbers of test images (steps of 0.01%): bin edges
  # fall halfway between such steps, every bin as wide as a whole number of
  # steps, about 25 bins in all.
  step = ACCURACY_STEP * max(1, round((high - low) / 25 / ACCURACY_STEP))
  bins = np.arange(low - ACCURACY_STEP / 2, high + step, step)
  for strategy, values in accuracies.items():
    values = np.asarray(values) * 100
    color = COLORS.get(strategy)
    label = (f"{LABELS.get(strategy, strategy)}: {np.mean(values):.2f}% "
             f"± {np.std(values):.2f} (n={len(values)})")
    axes.hist(values, bins=bins, density=True, alpha=0.35, color=color,
              label=label)
    if len(values) > 1 and np.std(values) > 0:
      axes.plot(grid, stats.gaussian_kde(values, grid), color=color,
                linewidth=2)
    axes.axvline(np.mean(values), color=color, linestyle="--", linewidth=1)
  axes.set_xlabel("test accuracy of head 3 (%)")
  axes.set_ylabel("density")
  axes.set_title(title)
  axes.legend(loc="upper left")
  return figure
