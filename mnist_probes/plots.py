"""The experiment's figures (matplotlib), one function per PNG."""
import numpy as np

from tfscratch.lab.figures import plt

PC_PAIRS = ((0, 1), (0, 2), (1, 2))
DIGIT_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red")


def layer_name(layer):
  return "input (layer 0)" if layer == 0 else f"hidden layer {layer}"


def pca_grid(projections, labels, explained_variance_ratios, digits):
  """Scatter plots of PC pairs (rows) for each layer (columns).

  Args:
    projections: per layer, (n, 3) coordinates in its top 3 components.
    labels: (n,) the digit of each point.
    explained_variance_ratios: per layer, the 3 ratios (for axis labels).
    digits: the digits plotted, one colour each.
  """
  figure, axes = plt.subplots(len(PC_PAIRS), len(projections),
                              figsize=(2.6 * len(projections), 7.2))
  for layer, (points, ratios) in enumerate(zip(projections,
                                               explained_variance_ratios)):
    for row, (first, second) in enumerate(PC_PAIRS):
      ax = axes[row, layer]
      for digit, color in zip(digits, DIGIT_COLORS):
        chosen = labels == digit
        # Edgeless dots keep the PNG small (fewer anti-aliased shades).
        ax.scatter(points[chosen, first], points[chosen, second], s=3,
                   color=color, linewidths=0, label=str(digit))
      ax.set_xlabel(f"PC{first + 1} ({ratios[first]:.0%} of variance)",
                    fontsize=8)
      ax.set_ylabel(f"PC{second + 1} ({ratios[second]:.0%})", fontsize=8)
      ax.tick_params(labelsize=7)
      if row == 0:
        ax.set_title(layer_name(layer))
  axes[0, 0].legend(title="digit", markerscale=3, fontsize=8)
  figure.suptitle("Top principal components of each layer, digits "
                  f"{', '.join(map(str, digits))}")
  figure.tight_layout()
  return figure


def accuracy_curves(base_curve, aux_curve, blog):
  """Test accuracy during training: base net vs the auxiliary-loss net."""
  figure, axes = plt.subplots(1, 2, figsize=(11, 4))
  for ax, zoom in zip(axes, (False, True)):
    ax.plot(base_curve["step"], base_curve["test_accuracy"],
            label=f"base net (final {base_curve['test_accuracy'][-1]:.4f})")
    ax.plot(aux_curve["step"], aux_curve["test_accuracy"],
            label="auxiliary PCA loss on layer 1 "
            f"(final {aux_curve['test_accuracy'][-1]:.4f})")
    ax.set_xlabel("training step")
    ax.set_ylabel("test accuracy")
    if zoom:
      # The second half of training and the blog's final values.
      half = len(base_curve["step"]) // 2
      shown = (base_curve["test_accuracy"][half:] +
               aux_curve["test_accuracy"][half:] +
               [blog["base_accuracy"], blog["aux_accuracy"]])
      ax.set_xlim(base_curve["step"][half], base_curve["step"][-1])
      ax.set_ylim(min(shown) - 0.003, max(shown) + 0.003)
      ax.axhline(blog["base_accuracy"], color="tab:blue", linestyle=":",
                 label=f"blog base {blog['base_accuracy']}")
      ax.axhline(blog["aux_accuracy"], color="tab:orange", linestyle=":",
                 label=f"blog auxiliary {blog['aux_accuracy']}")
      ax.set_title("zoomed in")
    else:
      ax.set_title("base vs auxiliary loss")
    ax.legend(fontsize=8)
  figure.tight_layout()
  return figure


def probe_accuracy(ours, ours_ovr, blog, train_size, test_size):
  """Probe accuracy per layer: ours (multinomial and one-vs-rest) and the
  blog's."""
  figure, ax = plt.subplots(figsize=(6, 4))
  layers = np.arange(len(ours))
  ax.plot(layers, ours, "o-", label="ours (multinomial, today's default)")
  ax.plot(layers, ours_ovr, "^:", color="tab:green",
          label="ours (one-vs-rest, the blog's 2016 default)")
  ax.plot(layers, blog, "s--", color="tab:orange", label="blog")
  for layer, value in zip(layers, ours):
    ax.annotate(f"{value:.3f}", (layer, value), textcoords="offset points",
                xytext=(-4, 7), ha="right", fontsize=8)
  ax.set_xticks(layers, [layer_name(layer) for layer in layers], fontsize=8)
  ax.set_ylabel("probe test accuracy")
  ax.set_title(f"Logistic regression on each layer ({train_size} train, "
               f"{test_size} test images)", fontsize=10)
  ax.legend()
  figure.tight_layout()
  return figure


def probe_sweep(records, steps, train_sizes):
  """Probe accuracy per layer: one panel per probe training-set size, one
  line per point in training."""
  figure, axes = plt.subplots(1, len(train_sizes),
                              figsize=(4.2 * len(train_sizes), 4),
                              sharey=True, squeeze=False)
  colors = plt.cm.viridis(np.linspace(0, 0.9, len(steps)))
  for ax, size in zip(axes[0], train_sizes):
    for step, color in zip(steps, colors):
      accuracy = next(r["accuracy"] for r in records
                      if r["step"] == step and r["train_size"] == size)
      ax.plot(range(len(accuracy)), accuracy, "o-", color=color,
              label=f"after {step} steps")
    ax.set_xticks(range(len(accuracy)), ["input", "h1", "h2", "h3"])
    ax.set_xlabel("layer")
    ax.set_title(f"probe trained on {size} images")
    ax.grid(alpha=0.3)
  axes[0, 0].set_ylabel("probe test accuracy")
  axes[0, 0].legend(fontsize=8)
  figure.tight_layout()
  return figure
