"""Watching a training loop from the host: progress lines, TensorBoard, and
the guard that stops a run gone wrong.

A compiled loop (``tfscratch.loop.compile_steps``) returns the loss of every
step it took, once per call. The host hands those losses to a ``Monitor``:

  monitor = Monitor(total_steps, every=log_every, guard=Guard(...))
  losses = train_steps(done, k)                # k steps in the graph
  monitor.record(done, losses)                 # one host read per k steps

``Guard`` refuses to let a broken run publish numbers:
  * a NaN or infinite loss stops the run, naming the exact step;
  * a loss that stays above ``factor`` times its first value for
    ``patience`` reads in a row stops it too ("divergence"): a run with a
    far too large learning rate can wander at a huge but finite loss and
    would otherwise end with exit code 0 and meaningless statistics.
"""
import math
import sys
import time

import numpy as np
import tensorflow as tf

from tfscratch.lab.errors import DivergenceError, NonFiniteError


def print_line(text):
  """Prints ``text`` and a newline in one write, flushed: lines printed by
  threads working side by side never run into each other (``print`` writes
  the text and its newline separately)."""
  sys.stdout.write(text + "\n")
  sys.stdout.flush()


def format_duration(seconds):
  seconds = int(round(seconds))
  return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Guard:
  """Checks losses for NaN/inf and divergence (module docstring).

  Args:
    factor: a read whose mean loss exceeds ``factor`` times the loss of the
      first step counts as a strike.
    patience: this many strikes in a row stop the run.
    label: names the run in messages (e.g. "plain net").
  """

  def __init__(self, factor=10.0, patience=3, label=""):
    self.factor = factor
    self.patience = patience
    self.label = f"{label} " if label else ""
    self.first_loss = None
    self.strikes = 0

  def check(self, first_step, losses, last=False):
    """Checks the losses of steps first_step+1 .. first_step+len(losses)
    (1-based step numbers, as the progress lines print them). ``last``: the
    run's final read, where one strike is enough (a short run may have
    fewer reads than ``patience``, and must not publish a blown-up loss)."""
    losses = np.asarray(losses, dtype=np.float64).reshape(-1)
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
      raise NonFiniteError(
          f"{self.label}loss became {losses[bad[0]]} at step "
          f"{first_step + bad[0] + 1}; lower the learning rate or check the "
          "data")
    if not self.first_loss:
      # The first loss that is not 0 (a step that had nothing to learn from
      # reports 0) is the yardstick.
      nonzero = losses[losses != 0]
      self.first_loss = float(nonzero[0]) if nonzero.size else None
    if self.first_loss is None:
      return
    mean = float(np.mean(losses))
    if self.first_loss > 0 and mean > self.factor * self.first_loss:
      self.strikes += 1
    else:
      self.strikes = 0
    if self.strikes >= self.patience or (last and self.strikes):
      reads = (f"for {self.patience} reads in a row"
               if self.strikes >= self.patience else "at the end of the run")
      raise DivergenceError(
          f"{self.label}diverged: mean loss {mean:.4g} up to step "
          f"{first_step + losses.size} is more than {self.factor:g}x the "
          f"first step's {self.first_loss:.4g} {reads}; lower the learning "
          "rate (or raise --divergence_factor)")


class Monitor:
  """Prints ``step, loss, steps/s, ETA`` lines, writes the losses to
  TensorBoard (when a default summary writer is set), and guards them.

  Args:
    total_steps: the run's number of steps, for the ETA.
    every: print a line when a multiple of ``every`` steps is reached.
    guard: a Guard, or None for no checks.
    label: printed at the start of each line.
    tag: the TensorBoard scalar's name.
  """

  def __init__(self, total_steps, every=None, guard=None, label="",
               tag="loss"):
    self.total_steps = total_steps
    self.every = every or max(1, total_steps // 20)
    self.guard = guard
    self.label = f"{label} " if label else ""
    self.tag = tag
    self.start_time = time.time()
    self.write_losses = self._compile_writer()

  def _compile_writer(self):
    """One compiled call writes a whole read of losses to TensorBoard (one
    eager ``tf.summary.scalar`` per step cost more than the training)."""

    @tf.function(input_signature=[tf.TensorSpec([], tf.int64),
                                  tf.TensorSpec([None], tf.float32)])
    def write_losses(first_step, losses):
      for k in tf.range(tf.size(losses, out_type=tf.int64)):
        with tf.name_scope("/"):  # the tag stays "loss", not "while/loss"
          tf.summary.scalar(self.tag, losses[k], step=first_step + k + 1)

    # Every Monitor traces its own copy once (it captures its run's summary
    # writer); TensorFlow would count the copies as retraces of one function
    # and warn. results.json's trace_counts shows each is traced once.
    write_losses._omit_frequent_tracing_warning = True  # pylint: disable=protected-access
    return write_losses

  def record(self, first_step, losses):
    """Takes the losses of the steps after ``first_step`` (0-based count of
    steps done before them); returns them as a NumPy array."""
    losses = np.asarray(losses).reshape(-1)
    last_step = first_step + losses.size
    if self.guard is not None:
      self.guard.check(first_step, losses,
                       last=last_step == self.total_steps)
    # Only inside ``with writer.as_default():``, so tests and benchmarks
    # write nothing.
    if tf.summary.should_record_summaries():
      self.write_losses(tf.constant(first_step, tf.int64),
                        tf.constant(losses, tf.float32))
    if (last_step // self.every > first_step // self.every
        or last_step == self.total_steps):
      self.print(last_step, float(losses[-1]))
    return losses

  def print(self, step, loss):
    elapsed = time.time() - self.start_time
    rate = step / elapsed if elapsed > 0 else math.inf
    remaining = (self.total_steps - step) / rate if rate > 0 else 0.0
    print_line(f"{self.label}step {step:>{len(str(self.total_steps))}}/"
               f"{self.total_steps}  loss {loss:.4f}  {rate:,.0f} steps/s  "
               f"ETA {format_duration(remaining)}")

