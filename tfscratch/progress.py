"""Progress lines for long training loops, with a NaN guard."""
import math
import sys
import time

from tfscratch.errors import NonFiniteError


def print_line(text):
  """Prints ``text`` and a newline in one write, flushed: lines printed by
  threads working side by side never run into each other (``print`` writes
  the text and its newline separately)."""
  sys.stdout.write(text + "\n")
  sys.stdout.flush()


def format_duration(seconds):
  seconds = int(round(seconds))
  return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
  """Prints ``step, loss, steps/s, ETA`` every ``every`` steps.

  ``update`` also checks the loss at every step it is given: a NaN or
  infinite loss stops training with a ``NonFiniteError`` naming the step,
  instead of silently training on garbage.
  """

  def __init__(self, total_steps, every=None, label=""):
    self.total_steps = total_steps
    self.every = every or max(1, total_steps // 20)
    self.label = f"{label} " if label else ""
    self.start_time = time.time()

  def update(self, step, loss):
    """Records finished step ``step`` (1-based) with its loss."""
    loss = float(loss)
    if not math.isfinite(loss):
      raise NonFiniteError(
          f"{self.label}loss became {loss} at step {step}; lower the learning "
          "rate or check the data")
    if step % self.every and step != self.total_steps:
      return
    elapsed = time.time() - self.start_time
    rate = step / elapsed if elapsed > 0 else float("inf")
    remaining = (self.total_steps - step) / rate if rate > 0 else 0.0
    print_line(f"{self.label}step {step:>{len(str(self.total_steps))}}/"
               f"{self.total_steps}  loss {loss:.4f}  {rate:,.0f} steps/s  "
               f"ETA {format_duration(remaining)}")
