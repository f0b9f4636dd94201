"""Lesson 3: the experiment. Two ways to train the blog's network.

  all_layers:  1,000 steps on head 3 (the whole network)
  layerwise:     200 steps on head 1 (layer 1 + head 1),
                 200 steps on head 2 (layers 1-2 + head 2),
               then the same 1,000 steps on head 3

and the controls of issue 12 (``CONTROL_STRATEGIES``), which the blog did
not run:

  all_layers_equal  1,400 steps on head 3, the rate dropping at step 1,050:
                    all layers with layer-wise's step count and the same
                    schedule shape (three quarters at the base rate)
  switch_layer3     all_layers, then layer 3 and its head redrawn at random
                    (layers 1-2 kept) and 1,000 more steps on head 3
  switch_layers23   the same, layers 2 and 3 (and heads 2, 3) redrawn

Learning rate (the blog's SGD): 0.01 in every phase, except that the final
1,000-step phase drops to 0.003 from step 750 on. For other optimizers the
base rate is theirs and the drop keeps the same ratio, 0.3. Each phase starts
its batches again at image 0 and has an optimizer of its own (in the blog,
three separate ``minimize`` ops), so Adagrad accumulators and Adam moments
start fresh in each phase.

Everything here works on a stack of N networks (``stacked.py``), read top to
bottom:

  build        the stack, one optimizer and one compiled loop per phase, and
               the compiled evaluation: built once, traced once, reused for
               every set of N networks (``train_stack`` resets what it must)
  train_stack  N networks from given initial weights through every phase
  evaluate     each network's accuracy on a split
  train_runs   all three for the networks ``runs`` of a strategy

Steps run ``config.block_steps`` per call of the compiled loop; the host
reads the losses only between calls, when it hands them to ``log``.
"""
import dataclasses
import typing

from convergence import data as data_lib
from convergence import stacked
from tfscratch import optimizers


class Phase(typing.NamedTuple):
  """Training on head ``head`` for ``steps`` steps; the learning rate drops
  to LR_DROP times the base rate from step ``drop_at`` on (None: never).
  ``redraw`` > 0: before the phase, layers redraw..3 and their heads get
  fresh random weights (``stacked.StackedNetworks.assign_layers``)."""
  head: int
  steps: int
  drop_at: typing.Optional[int]
  redraw: int = 0


FINAL_PHASE = Phase(head=3, steps=1000, drop_at=750)
STRATEGIES = {
    "all_layers": (FINAL_PHASE,),
    "layerwise": (Phase(head=1, steps=200, drop_at=None),
                  Phase(head=2, steps=200, drop_at=None),
                  FINAL_PHASE),
}
# Issue 12's controls. Not in STRATEGIES: the blog's two stay the default.
CONTROL_STRATEGIES = {
    "all_layers_equal": (Phase(head=3, steps=1400, drop_at=1050),),
    "switch_layer3": (FINAL_PHASE, FINAL_PHASE._replace(redraw=3)),
    "switch_layers23": (FINAL_PHASE, FINAL_PHASE._replace(redraw=2)),
}
ALL_STRATEGIES = {**STRATEGIES, **CONTROL_STRATEGIES}
# Seed stream of each strategy: its networks start from weights no network
# of another strategy shares (independent samples, as the blog's were).
# Config.paired: every strategy uses all_layers' stream instead, so network
# ``run`` of each strategy starts from the same weights.
STREAMS = {"all_layers": 0, "layerwise": 1, "all_layers_equal": 2,
           "switch_layer3": 3, "switch_layers23": 4}
# The fresh weights of a redrawn layer: network ``run`` of this stream.
REDRAW_STREAM = 1000
LR_DROP = 0.3  # the blog's 0.01 -> 0.003
# Base learning rates. sgd: the blog's. adagrad, adam: the best of a sweep
# on the validation images (convergence/README.md, "Beyond the blog").
DEFAULT_LEARNING_RATES = {"sgd": 0.01, "adagrad": 0.03, "adam": 0.01}


@dataclasses.dataclass(frozen=True)
class Config:
  """Everything that decides the numbers, except the data.

  Attributes:
    optimizer: "sgd", "adagrad" or "adam" (tfscratch.optimizers).
    learning_rate: the base rate of every phase.
    batch_size: images per step (the blog: 50).
    step_scale: every phase's steps (and the step of the rate drop) times
      this; 1 is the blog's schedule, less for quick trials.
    seed: network ``run`` of a strategy starts from weights that depend on
      (seed, strategy, run) only (``stacked.run_weights``).
    block_steps: steps per call of the compiled loop: enough that Python's
      turn between calls costs nothing, few enough to stop promptly. The
      numbers do not depend on it (a test checks this, bit for bit).
    paired: every strategy's network ``run`` starts from the same weights
      (all_layers' stream), so the strategies can be compared init by init.
  """
  optimizer: str = "sgd"
  learning_rate: float = DEFAULT_LEARNING_RATES["sgd"]
  batch_size: int = data_lib.BATCH_SIZE
  step_scale: float = 1.0
  seed: int = 0
  block_steps: int = 50
  paired: bool = False


def stream(config, strategy):
  """The seed stream of ``strategy``'s initial weights (see STREAMS)."""
  return STREAMS["all_layers" if config.paired else strategy]


def phases(strategy, step_scale=1.0):
  """The phases of ``strategy`` with every step count (and the step of the
  rate drop) multiplied by ``step_scale``."""
  if step_scale == 1.0:
    return ALL_STRATEGIES[strategy]
  return tuple(
      phase._replace(steps=max(1, round(phase.steps * step_scale)),
                     drop_at=None if phase.drop_at is None
                     else round(phase.drop_at * step_scale))
      for phase in ALL_STRATEGIES[strategy])


def total_steps(strategy, step_scale=1.0):
  return sum(phase.steps for phase in phases(strategy, step_scale))


@dataclasses.dataclass(frozen=True)
class Stack:
  """N networks and what trains them with one strategy (see ``build``)."""
  strategy: str
  networks: stacked.StackedNetworks
  phases: tuple
  optimizers: tuple      # one per phase
  train_steps: tuple     # one compiled loop per phase
  correct_counts: typing.Callable
  loss_sums: typing.Callable


def build(config, data, strategy, num_networks, schedule=None):
  """Builds a Stack of ``num_networks`` networks for ``strategy``.

  Args:
    data: a Mnist from ``data.blog_data``: the stack trains on data.train.
    schedule: phases to train instead of the strategy's own (tests).
  """
  schedule = (phases(strategy, config.step_scale) if schedule is None
              else tuple(schedule))
  networks = stacked.StackedNetworks(
      stacked.zero_weights(num_networks),
      lit=stacked.lit_pixels(data.train.images))
  batches = data_lib.batches(data.train, networks.lit, config.batch_size)
  phase_optimizers = tuple(
      optimizers.make_optimizer(config.optimizer,
                                networks.phase_variables(phase.head),
                                config.learning_rate)
      for phase in schedule)
  return Stack(
      strategy=strategy, networks=networks, phases=schedule,
      optimizers=phase_optimizers,
      train_steps=tuple(
          stacked.make_train_steps(networks, phase.head, optimizer, batches)
          for phase, optimizer in zip(schedule, phase_optimizers)),
      correct_counts=stacked.make_correct_counts(networks),
      loss_sums=stacked.make_loss_sums(networks))


def train_stack(stack, config, weights, log=None, redrawn=None):
  """Trains the N networks of ``stack`` from stacked initial ``weights``
  through every phase of its strategy.

  Args:
    redrawn: stacked weights that a phase with ``redraw`` puts into the
      layers it redraws (``train_runs`` draws them).
    log: None, or ``log(first_step, losses)``, called after every call of
      the compiled loop with the mean loss of the N networks at each step
      taken (``first_step`` counts the steps before them, over all phases).
      It may raise to stop training (a guard, or a request to stop).
  """
  stack.networks.assign(weights)
  done = 0
  for phase, optimizer, train_steps in zip(stack.phases, stack.optimizers,
                                           stack.train_steps):
    if phase.redraw:
      stack.networks.assign_layers(redrawn, phase.redraw)
    optimizer.reset()  # a fresh optimizer in every phase, as in the blog
    step = 0
    while step < phase.steps:
      if step == phase.drop_at:
        optimizer.learning_rate.assign(config.learning_rate * LR_DROP)
      end = min(phase.steps, step + config.block_steps)
      if phase.drop_at is not None and step < phase.drop_at < end:
        end = phase.drop_at  # the drop falls between two calls
      losses = train_steps(step, end - step)
      if log is not None:
        log(done + step, losses)
      step = end
    done += phase.steps


def evaluate(stack, split):
  """Head 3's accuracy of each of the N networks on ``split``: (N,)."""
  return stacked.accuracies(stack.correct_counts, split.images, split.labels)


def mean_loss(stack, split):
  """Head 3's cross-entropy per image, averaged over ``split``, of each of
  the N networks: (N,). On the training images it is the loss training
  minimised (which sums it over a batch of 50), read once at the end."""
  return stacked.mean_losses(stack.loss_sums, split.images, split.labels)


def train_runs(config, data, strategy, runs, splits=("test",), log=None,
               stack=None, losses=()):
  """Trains the networks ``runs`` of ``strategy`` side by side.

  Network i starts from ``stacked.run_weights(config.seed,
  stream(config, strategy), runs[i])``; a redrawn layer takes its fresh
  weights from ``stacked.run_weights(config.seed, REDRAW_STREAM, runs[i])``.

  Args:
    splits: the names of the splits of ``data`` to evaluate on.
    log: see ``train_stack``.
    stack: a Stack built for len(runs) networks of ``strategy`` with this
      config and data, to reuse; None builds one.
    losses: names of splits whose mean loss (``mean_loss``) to return too.
  Returns:
    dict split name -> float64 (len(runs),) accuracies, and
    "<split>_loss" -> float64 (len(runs),) for each split in ``losses``.
  """
  runs = list(runs)
  if stack is None:
    stack = build(config, data, strategy, len(runs))
  redrawn = None
  if any(phase.redraw for phase in stack.phases):
    redrawn = stacked.initial_weights(config.seed, REDRAW_STREAM, runs)
  train_stack(stack, config, stacked.initial_weights(
      config.seed, stream(config, strategy), runs), log, redrawn)
  results = {name: evaluate(stack, getattr(data, name)) for name in splits}
  for name in losses:
    results[f"{name}_loss"] = mean_loss(stack, getattr(data, name))
  return results


def trace_counts(stack):
  """How often each compiled function of ``stack`` was traced (1 each)."""
  counts = {f"phase{number}_head{phase.head}_train_steps":
            train_steps.experimental_get_tracing_count()
            for number, (phase, train_steps) in enumerate(
                zip(stack.phases, stack.train_steps), start=1)}
  counts["correct_counts"] = (
      stack.correct_counts.experimental_get_tracing_count())
  counts["loss_sums"] = stack.loss_sums.experimental_get_tracing_count()
  return counts
