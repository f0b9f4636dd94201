"""Timing helpers the benchmarks share (run as scripts, so a sibling module).

The machine is shared and noisy: every variant is timed in the same process,
in alternating rounds, and compared by the median of its rounds.
"""
import statistics
import time

import keras
import tensorflow as tf


def in_graph_timer(train_steps, steps_per_call):
  """``run(first_step, steps)``: ``steps`` steps of a compiled loop
  (``tfscratch.loop.compile_steps``), ``steps_per_call`` per call."""

  def run(first_step, steps):
    done = 0
    while done < steps:
      k = min(steps_per_call, steps - done)
      losses = train_steps(first_step + done, k)
      done += k
    losses.numpy()  # wait for the last call

  return run


def alternating_medians(timers, steps, repeats, width=8, warm_up=100):
  """Runs every timer ``repeats`` times in alternation after a warm-up (which
  also traces); prints steps/s per timer and returns {name: median seconds}."""
  for run in timers.values():
    run(0, warm_up)
  seconds = {name: [] for name in timers}
  for repeat in range(repeats):
    for name, run in timers.items():
      start = time.perf_counter()
      run(warm_up + repeat * steps, steps)
      seconds[name].append(time.perf_counter() - start)
  median = {name: statistics.median(values) for name, values in seconds.items()}
  print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}; {steps} steps "
        f"x {repeats} alternating repeats")
  for name in timers:
    print(f"  {name:>{width}}: {steps / median[name]:8,.0f} steps/s  "
          f"(median of {', '.join(f'{s:.3f}' for s in seconds[name])} s)")
  return median
