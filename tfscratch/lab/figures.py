"""Figure helpers: a headless matplotlib, atomic PNG saving, image grids."""
import io

import matplotlib

matplotlib.use("Agg")  # no display here; must precede pyplot's import
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from tfscratch.lab.files import write_atomically


def save_figure(figure, path, dpi=120):
  """Saves ``figure`` as PNG at ``path`` atomically, then closes it."""
  buffer = io.BytesIO()
  figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
  plt.close(figure)
  write_atomically(path, lambda f: f.write(buffer.getvalue()))


def image_grid(images, rows, columns, height=28, width=28, padding=1):
  """Tiles images into one (rows*(h+p)-p, columns*(w+p)-p) array.

  Args:
    images: array (n, height*width) or (n, height, width), n <= rows*columns.
  Returns:
    A float array; padding pixels are 1.0 (white between grey-scale digits).
  """
  images = np.asarray(images, dtype=np.float32).reshape(-1, height, width)
  grid = np.ones((rows * (height + padding) - padding,
                  columns * (width + padding) - padding), dtype=np.float32)
  for index, image in enumerate(images[:rows * columns]):
    top = (index // columns) * (height + padding)
    left = (index % columns) * (width + padding)
    grid[top:top + height, left:left + width] = image
  return grid
