"""The two training strategies, and training a chunk of runs of one of them.

  all_layers:  1,000 steps on head 3 (the whole network)
  layerwise:     200 steps on head 1 (layer 1 + head 1),
                 200 steps on head 2 (layers 1-2 + head 2),
               then the same 1,000 steps on head 3

Learning rate (the blog's SGD): 0.01 in every phase, except that the final
1,000-step phase drops to 0.003 from step 750 on. For other optimizers the
base rate is theirs and the drop keeps the same ratio, 0.3. Each phase starts
its batches again at image 0 and has an optimizer of its own (in the blog,
three separate ``minimize`` ops), so Adagrad accumulators and Adam moments
start fresh in each phase.

Chunks in parallel. A chunk's training is a chain of small matrix products
that one core runs nearly as fast as two, so ``train_in_workers`` trains
several chunks at once, each op on a single thread: with 2 cores, two chunks
take little longer than one. Every op on one thread also makes a chunk's
numbers independent of how many run beside it.
"""
import collections
from concurrent import futures
import threading

import tensorflow as tf

from convergence import data as data_lib
from convergence import model as model_lib
from tfscratch import optimizers
from tfscratch.lab.progress import Progress

Phase = collections.namedtuple("Phase", ["head", "steps", "drop_at"])
Phase.__doc__ = """Training on one head: ``steps`` steps; the learning rate
drops to LR_DROP times the base rate from step ``drop_at`` (None: never)."""

FINAL_PHASE = Phase(head=3, steps=1000, drop_at=750)
STRATEGIES = {
    "all_layers": (FINAL_PHASE,),
    "layerwise": (Phase(head=1, steps=200, drop_at=None),
                  Phase(head=2, steps=200, drop_at=None),
                  FINAL_PHASE),
}
# Seed stream of each strategy: its runs start from weights no run of the
# other strategy shares (independent samples, as the blog's were).
STREAMS = {"all_layers": 0, "layerwise": 1}
LR_DROP = 0.3  # the blog's 0.01 -> 0.003
# Base learning rates. sgd: the blog's. adagrad, adam: the best of a sweep
# on the validation images (convergence/README.md, "Other optimisers").
DEFAULT_LEARNING_RATES = {"sgd": 0.01, "adagrad": 0.03, "adam": 0.01}
# Steps per call of the compiled training loop: enough that Python's turn
# between calls costs nothing, few enough for timely progress lines.
BLOCK_STEPS = 50


class Cancelled(Exception):
  """A chunk stopped early because another one failed (or Ctrl-C)."""


def phases(strategy, step_scale=1.0):
  """The phases of ``strategy``, every step count (and the step of the rate
  drop) multiplied by ``step_scale`` (1: the blog's; less for quick trials)."""
  if step_scale == 1.0:
    return STRATEGIES[strategy]
  return tuple(
      Phase(phase.head, max(1, round(phase.steps * step_scale)),
            None if phase.drop_at is None else round(phase.drop_at *
                                                     step_scale))
      for phase in STRATEGIES[strategy])


def total_steps(strategy, step_scale=1.0):
  return sum(phase.steps for phase in phases(strategy, step_scale))


class StackTrainer:
  """Trains stacks of N networks with one strategy, chunk after chunk.

  The model, the optimizers (one per phase) and the compiled steps are built
  once; ``train`` assigns a chunk's initial weights and resets every
  optimizer to its initial state, so no chunk traces anything anew.

  Args:
    data: a data.ExperimentData.
    strategy: a key of STRATEGIES.
    num_networks: N, the networks per chunk.
    optimizer_name: "sgd", "adagrad" or "adam" (tfscratch.optimizers).
    learning_rate: the base rate; None for DEFAULT_LEARNING_RATES.
    step_scale: see ``phases``.
    schedule: a tuple of Phases to train instead of the strategy's own.
  """

  def __init__(self, data, strategy, num_networks, optimizer_name="sgd",
               learning_rate=None, step_scale=1.0, schedule=None):
    self.data = data
    self.strategy = strategy
    self.learning_rate = (DEFAULT_LEARNING_RATES[optimizer_name]
                          if learning_rate is None else learning_rate)
    self.schedule = (phases(strategy, step_scale) if schedule is None
                     else schedule)
    self.model = model_lib.StackedNetworks(
        model_lib.zero_weights(num_networks),
        lit=model_lib.lit_pixels(data.train.images))
    batches = data_lib.batches(data.train, self.model.lit)
    self.optimizers, self.steps = [], []
    for phase in self.schedule:
      optimizer = optimizers.make_optimizer(
          optimizer_name, self.model.phase_variables(phase.head),
          self.learning_rate)
      self.optimizers.append(optimizer)
      self.steps.append(model_lib.make_train_steps(
          self.model, phase.head, optimizer, batches))
    self.correct_counts = model_lib.make_correct_counts(self.model)

  def train(self, weights, label="", log_every=200, summary_step=None,
            evaluate_on=("test",), stop=None, block_steps=BLOCK_STEPS):
    """Trains N networks from stacked initial ``weights``.

    Args:
      log_every: steps between progress lines (0: only the last).
      summary_step: if given, a function(step) -> global step at which the
        mean loss is written to the default tf.summary writer every 10 steps.
      evaluate_on: the splits of ``data`` to measure head 3's accuracy on.
      stop: a threading.Event; once set, training ends at the next block of
        steps with ``Cancelled``.
      block_steps: steps per call of the compiled loop (1: a call per step,
        Python stepping the loop, for comparison).
    Returns:
      dict split name -> float64 array (N,) of accuracies.
    Raises:
      NonFiniteError: some network's loss became NaN or infinite.
    """
    self.model.assign(weights)
    for optimizer in self.optimizers:
      optimizer.reset()
    progress = Progress(sum(phase.steps for phase in self.schedule),
                        every=log_every or 10**9, label=label)
    done = 0
    for phase, optimizer, train_steps in zip(self.schedule, self.optimizers,
                                             self.steps):
      step = 0
      while step < phase.steps:
        if stop is not None and stop.is_set():
          raise Cancelled(label)
        if step == phase.drop_at:
          optimizer.learning_rate.assign(self.learning_rate * LR_DROP)
        end = min(phase.steps, step + block_steps)
        if phase.drop_at is not None and step < phase.drop_at < end:
          end = phase.drop_at
        for mean_loss in train_steps(step, end - step).numpy():
          done += 1
          progress.update(done, mean_loss)
          if summary_step is not None and done % 10 == 0:
            tf.summary.scalar(f"loss/{self.strategy}", mean_loss,
                              step=summary_step(done))
        step = end
    return {name: model_lib.accuracies(self.correct_counts,
                                       getattr(self.data, name).images,
                                       getattr(self.data, name).labels)
            for name in evaluate_on}

  def train_runs(self, runs, seed, **kwargs):
    """Trains runs ``runs`` (N indices) of the strategy: network i starts
    from model.run_weights(seed, STREAMS[strategy], runs[i])."""
    runs = list(runs)
    return self.train(
        model_lib.initial_weights(seed, STREAMS[self.strategy], runs),
        label=f"{self.strategy} runs {runs[0]}-{runs[-1]}", **kwargs)


def cached_trainer(trainers, data, strategy, num_networks, optimizer_name,
                   learning_rate=None, step_scale=1.0):
  """The StackTrainer for (strategy, num_networks) in ``trainers`` (a
  worker's dict, see ``train_in_workers``), built on first use. Chunks of a
  strategy share a trainer; the last chunk may be shorter and get its own."""
  key = (strategy, num_networks)
  if key not in trainers:
    trainers[key] = StackTrainer(data, strategy, num_networks, optimizer_name,
                                 learning_rate, step_scale)
  return trainers[key]


def train_runs(data, strategy, runs, optimizer_name="sgd",
               learning_rate=None, seed=0, step_scale=1.0, schedule=None,
               **kwargs):
  """Trains the networks ``runs`` of ``strategy`` side by side, once.

  Arguments as StackTrainer's and StackTrainer.train's.
  Returns:
    (dict split name -> accuracies (len(runs),), the trained
    StackedNetworks).
  """
  runs = list(runs)
  trainer = StackTrainer(data, strategy, len(runs), optimizer_name,
                         learning_rate, step_scale, schedule)
  return trainer.train_runs(runs, seed, **kwargs), trainer.model


def use_one_thread_per_op(workers):
  """Runs every TensorFlow op on one thread, ``workers`` at a time (one per
  chunk in flight). Must come before the process's first TensorFlow op."""
  tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.threading.set_inter_op_parallelism_threads(workers)


def train_in_workers(train_chunk, tasks, workers):
  """Calls ``train_chunk(task, trainers, stop)`` for every task, ``workers``
  tasks at a time, each in a thread of its own.

  TensorFlow runs a compiled loop without holding Python's lock, so threads
  suffice. Each thread passes its own dict ``trainers`` to every task it
  runs, to keep the StackTrainers it builds: a trainer's variables hold one
  chunk at a time. An error (or Ctrl-C) sets ``stop``, drops the tasks not
  started, waits for the chunks in flight to stop (``Cancelled``) and is
  raised.

  Returns:
    The results of ``train_chunk``, in the order of ``tasks``.
  """
  stop = threading.Event()
  local = threading.local()

  def work(task):
    if stop.is_set():
      raise Cancelled(str(task))
    if not hasattr(local, "trainers"):
      local.trainers = {}
    try:
      return train_chunk(task, local.trainers, stop)
    except BaseException:
      stop.set()  # before this thread can take another task
      raise

  with futures.ThreadPoolExecutor(workers) as pool:
    pending = [pool.submit(work, task) for task in tasks]
    try:
      futures.wait(pending, return_when=futures.FIRST_EXCEPTION)
    finally:  # all done, or an error or Ctrl-C: stop the chunks in flight
      stop.set()
      for future in pending:
        future.cancel()
  for future in pending:
    error = None if future.cancelled() else future.exception()
    if error is not None and not isinstance(error, Cancelled):
      raise error
  return [future.result() for future in pending]
