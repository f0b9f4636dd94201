"""The inversion figures: image grids checked, scaled, saved and logged.

``save_figures`` draws the six figures of a run from ``train.Results``.

Every grid goes through ``require_finite`` first, so a NaN or infinite pixel
stops the run with the stage and step that produced it instead of being
written as a black square to a PNG or to TensorBoard.
"""
import numpy as np
import tensorflow as tf

from tfscratch.lab.errors import NonFiniteError
from tfscratch.lab.figures import image_grid
from tfscratch.lab.figures import plt

FIGURE_IMAGES = 36  # the first 36 test images, as 6x6 grids


def require_finite(images, what, stage, step):
  """Raises NonFiniteError unless every value of ``images`` is finite.

  Args:
    images: array-like, any shape.
    what: what the images are, for the message ("inverse projections").
    stage, step: the training stage and its last step that produced them.
  """
  images = np.asarray(images)
  bad = ~np.isfinite(images)
  if bad.any():
    raise NonFiniteError(
        f"{what}: {int(bad.sum())} of {images.size} values are NaN or "
        f"infinite after {stage} step {step}; no image written")


def display_range(images):
  """Stretches each image to [0, 1] on its own: (x - min) / (max - min).

  This is what matplotlib's ``imshow`` did to every panel of the blog's
  figures (the default colour scale runs from the image's minimum to its
  maximum), and it is needed because inverse projections are not confined to
  [0, 1]. A constant image becomes 0.

  Args:
    images: (n, pixels).
  """
  images = np.asarray(images, dtype=np.float64)
  low = images.min(axis=1, keepdims=True)
  spread = images.max(axis=1, keepdims=True) - low
  return np.where(spread > 0, (images - low) / np.where(spread > 0, spread, 1),
                  0.0).astype(np.float32)


def grid_figure(panels, columns, title=None, panel_inches=3.2):
  """One figure of side-by-side image grids, white digits on black.

  Args:
    panels: list of (title, images (n, 784) already in [0, 1]); each becomes
      a grid of ``ceil(n / columns)`` rows.
    columns: images per grid row (6 for 6x6 grids).
    panel_inches: width of one panel; at the 120 dpi of save_figure, 2.4
      inches show a 10x10 grid (289 pixels) at about its own resolution.
  Returns:
    (figure, grids): the matplotlib figure and the grid arrays, in order.
  """
  grids = []
  for _, images in panels:
    rows = -(-len(images) // columns)
    grids.append(image_grid(images, rows, columns))
  figure, axes = plt.subplots(1, len(panels),
                              figsize=(panel_inches * len(panels),
                                       panel_inches + 0.4), squeeze=False)
  for axis, (panel_title, _), grid in zip(axes[0], panels, grids):
    # The blog's colour map (Greys_r); padding between digits shows white.
    axis.imshow(grid, cmap="Greys_r", vmin=0.0, vmax=1.0,
                interpolation="nearest")
    axis.set_title(panel_title, fontsize=9)
    axis.axis("off")
  if title:
    figure.suptitle(title, fontsize=10)
  figure.tight_layout()
  return figure, grids


def save_grids(outputs, name, panels, columns, stage, step, title=None,
               panel_inches=3.2):
  """Checks, scales and writes one figure: ``<name>.png`` and TensorBoard.

  Each panel's images are checked with ``require_finite`` (naming ``stage``
  and ``step``), stretched with ``display_range``, tiled, saved together as
  ``<name>.png`` in the run directory, and logged separately as
  ``tf.summary.image("<name>/<panel title>")``.

  Args:
    outputs: the run's tfscratch.lab.outputs.RunOutputs.
    panels: list of (title, raw images (n, 784)).
  """
  for panel_title, images in panels:
    require_finite(images, f"{name} ({panel_title})", stage, step)
  scaled = [(t, display_range(images)) for t, images in panels]
  figure, grids = grid_figure(scaled, columns, title, panel_inches)
  outputs.save_figure(figure, f"{name}.png")
  with outputs.summary_writer.as_default():
    for (panel_title, _), grid in zip(panels, grids):
      tf.summary.image(f"{name}/{panel_title}", grid[None, :, :, None],
                       step=0)


METHODS = (("original", "test image"), ("learned_inverse", "learned inverse"),
           ("gradient_inverse", "gradient inverse"))


def save_examples(outputs, results):
  """``blog_examples.png``: the blog's two examples (``train.BLOG_EXAMPLES``),
  one row each: the test image, its learned-inverse projection and its
  gradient inversion, each titled with the class the network gives it and
  that class's softmax probability (``results.examples``).

  The images are among the first 36, which the grids of ``save_figures``
  have already checked (``require_finite``) and logged to TensorBoard.
  """
  images = {"original": results.originals, "learned_inverse": results.learned,
            "gradient_inverse": results.gradient}
  examples = results.examples
  figure, axes = plt.subplots(len(examples), len(METHODS),
                              figsize=(2.2 * len(METHODS),
                                       2.8 * len(examples)), squeeze=False)
  for axes_row, (name, example) in zip(axes, examples.items()):
    index = int(name.rsplit("_", 1)[1])
    for axis, (method, label) in zip(axes_row, METHODS):
      image = display_range(images[method][index][None]).reshape(28, 28)
      axis.imshow(image, cmap="Greys_r",
                  vmin=0.0, vmax=1.0, interpolation="nearest")
      seen = example[method]
      axis.set_title(f"{label}\nnet: {seen['class']} "
                     f"(p = {seen['probability']:.2f})", fontsize=8)
      axis.axis("off")
    axes_row[0].set_title(f"test image {index} (label {example['label']})\n"
                          f"net: {example['original']['class']} (p = "
                          f"{example['original']['probability']:.2f})",
                          fontsize=8)
  figure.tight_layout()
  outputs.save_figure(figure, "blog_examples.png")


def save_figures(outputs, results, config):
  """Writes the six PNG figures (and their TensorBoard images) of a run.

  Args:
    outputs: the run's RunOutputs.
    results: train.Results; config: the train.Config that produced them
      (the stage and step each figure names if an image is not finite).
  """
  originals = results.originals[:FIGURE_IMAGES]
  learned = results.learned[:FIGURE_IMAGES]
  save_grids(outputs, "inverse_projections",
             [("first 36 test images", originals),
              ("inverse projections", learned)],
             columns=6, stage="inverse training", step=config.inverse_steps)
  save_grids(outputs, "generated_digits",
             [("generated digits 1-9", results.generated)], columns=3,
             stage="code generation", step=config.generate_steps)
  # The blog rounds to one decimal before plotting, hiding faint noise.
  save_grids(outputs, "features",
             [("layer-2 features", np.round(results.features, 1))],
             columns=10, stage="inverse training", step=config.inverse_steps,
             panel_inches=2.4)
  save_grids(outputs, "reconstructions",
             [("test images", originals), ("learned inverse", learned),
              ("gradient inverse", results.gradient[:FIGURE_IMAGES])],
             columns=6, stage="gradient inversion",
             step=config.inversion_steps)
  save_grids(outputs, "class_images",
             [("codes projected back (blog)", results.generated),
              ("pixels optimised (gradient)", results.class_images)],
             columns=3, stage="class-conditional inversion",
             step=config.inversion_steps)
  save_examples(outputs, results)
