"""How the experiment trains and measures the two nets: plain functions over a
frozen ``Config``. No flags, no files, no printing: progress and TensorBoard
reach the loop only through the optional callbacks ``log`` and ``on_eval``.

Read in this order:

  Config          every setting of a run
  sgd_step        one training step of either net (the maths of training)
  build           both nets from ONE draw of N(0, 1) weights, each with its
                  SGD and its compiled functions (built once, traced once)
  evaluate        the test accuracy (and, looking inside, the blog's
                  one-batch view and the last layer's sigmoid inputs)
  train           one net from its initial weights: --steps steps, an
                  evaluation every eval_every steps -> a Curve
  train_both      the plain and the batchnorm net at one learning rate
  single_example_accuracy
                  the trained BN net classifying one image at a time
  sweep           both nets at every learning rate of the sweep, for
                  ``sweep_seeds`` seeds (the BN paper's claims, measured)
  steps_to_reach  the first evaluated step at 90%, 93% and 95% test accuracy

The loop runs in the graph
--------------------------
A training step of these small nets is well under a millisecond of work.
Called from Python once per step, with a batch cut from a NumPy array and the
loss read back, the cores would idle between steps. So the 55,000 training
images are put in the graph ONCE, as a constant, and
``tfscratch.loop.compile_steps`` runs K steps per call: each step gathers its
batch with ``tf.gather``, at the rows the post's ``next_batch`` would have
returned (``data.py``: the first epoch in order, then reshuffled every epoch,
seeded; ``--batch_order=ordered`` walks images i*B .. i*B + B - 1 modulo
55,000 instead, as ``nn.ordered_batch`` does on the host). Python is
entered once per evaluation (every 50 steps by default), where it has to
read the test accuracy anyway. The weights, losses and
accuracies are the same, bit for bit, as with one host-fed step per call
(tests check it); only the time changes (about 2x fewer seconds per step).

Built once, traced once
-----------------------
A ``tf.function`` captures variables, not their values. So every run (the
main one, then each learning rate of the sweep) reuses the same compiled
functions: ``restart`` assigns the saved initial values to the same
variables and the new learning rate to the optimizer's learning-rate
variable, and nothing is retraced. ``trace_counts`` reports it (1 each).
Another seed of the sweep is the same: its initial weights are assigned, and
the shuffles' seed is a variable of the walk.
"""
import dataclasses
import functools
from typing import Callable, NamedTuple, Optional

import numpy as np
import tensorflow as tf

from batchnorm_manual import data
from batchnorm_manual.model import (HIDDEN_SIZES, REVISED_HIDDEN_SIZES,
                                    BatchNormNet, PlainNet, initial_weights,
                                    predict_one_at_a_time)
from tfscratch import loop, nn
from tfscratch.optimizers import SGD

NETS = ("plain", "batchnorm")
THRESHOLDS = (0.90, 0.93, 0.95)
PERCENTILES = (15, 50, 85)
# The post's second figure: the test-set mean of the input to the first five
# sigmoids of the second hidden layer.
POST_FIGURE_LAYER, POST_FIGURE_UNITS = 1, 5
# Training accuracy and loss (for the regularisation claim) are measured on
# the first this many training images, in inference mode.
MEASURED_TRAIN_IMAGES = 10_000
POST_VERSIONS = ("2016", "revised")
# Which single-example inference: normalising with the batch's own
# statistics (training=True) or with the moving averages (training=False).
SINGLE_EXAMPLE_MODES = {"batch_statistics": True,
                        "population_statistics": False}


@dataclasses.dataclass(frozen=True)
class Config:
  """The settings of one run of the experiment (defaults: the 2016 original
  post's; ``preset("revised")`` gives the revised post's).

  post_version: which post's setting this is ("2016" or "revised"), recorded
    with the results; the fields below are what the run uses.
  hidden_sizes: the hidden layers' widths (2016: 100, 100, 100; revised:
    100, 100).
  split: "blog" trains on images 5,000-59,999 (TensorFlow 1's mnist.train,
    which the post used); "first" on images 0-54,999.
  batch_order: "shuffled" (the post's reader: in order, then a seeded
    reshuffle every epoch; ``data.py``) or "ordered" (no shuffling).
  steps: training steps of each net in each run (the blog's 10,000).
  batch_size: examples per step (60), at least 2 (a batch of one has zero
    variance: BN would output beta and pass no gradient).
  learning_rate: of SGD in the main run. The loss is summed over the batch,
    so the step per example is this, not this / batch_size.
  momentum, epsilon: of every BN layer (Keras' meaning and defaults).
  eval_every: steps between test-set evaluations (the blog's 50).
  lr_sweep: the learning rates of the sweep (the main one is reused).
  sweep_seeds: the sweep trains every rate from seeds seed .. seed +
    sweep_seeds - 1 (each: its own weights and shuffles).
  tracked_unit: which sigmoid of the last hidden layer to follow.
  seed: of the N(0, 1) weights both nets start from, and of the shuffles.
  """
  post_version: str = "2016"
  hidden_sizes: tuple = HIDDEN_SIZES
  split: str = "blog"
  batch_order: str = "shuffled"
  steps: int = 10_000
  batch_size: int = 60
  learning_rate: float = 0.01
  momentum: float = 0.99
  epsilon: float = 1e-3
  eval_every: int = 50
  lr_sweep: tuple = ()
  sweep_seeds: int = 1
  tracked_unit: int = 0
  seed: int = 0


# What each post version changes from the defaults (the 2016 original). The
# revised post's inference section: 784-100-100-10, 40,000 steps, moving
# averages with decay (our momentum) 0.999.
PRESETS = {"2016": {},
           "revised": {"hidden_sizes": REVISED_HIDDEN_SIZES, "steps": 40_000,
                       "momentum": 0.999}}


def preset(post_version, **overrides):
  """The Config of ``post_version``'s setting, with ``overrides``."""
  if post_version not in PRESETS:
    raise ValueError(f"post_version must be one of {POST_VERSIONS}, "
                     f"not {post_version!r}")
  return Config(**{"post_version": post_version, **PRESETS[post_version],
                   **overrides})


def sgd_step(net, optimizer, images, labels):
  """One SGD step of either net on one batch; returns the loss before it.

  The loss is the blog's: cross-entropy summed over the batch. After the
  update, the batchnorm net folds this batch's moments (computed under the
  weights the loss was computed with: the same values Keras folds in while
  it runs the layer) into its moving averages.
  """
  with tf.GradientTape() as tape:
    forward = net.forward(images, training=True)
    loss = nn.summed_cross_entropy(forward.logits, labels)
  optimizer.apply(tape.gradient(loss, net.weights))
  net.update_moving_statistics(forward.batch_moments)
  return loss


class Evaluation(NamedTuple):
  """One net on the 10,000 test images after ``step`` training steps.

  accuracy: as deployed (the batchnorm net normalising with its moving
    averages).
  accuracy_as_one_batch: the blog's evaluation: the test set pushed through
    as ONE batch, normalised with its own statistics (for the plain net, the
    same as ``accuracy``). None unless ``train`` was asked to look inside.
  sigmoid_inputs: (10000, 100) float32 NumPy, what the last hidden layer's
    sigmoids get in that one-batch pass. None unless asked, as above.
  post_figure_means: (5,), the test-set mean of the input to sigmoids 0-4 of
    the second hidden layer in that pass (the post's second figure). None
    unless asked.
  measured: {"train_accuracy", "train_loss", "test_loss"} (losses: mean
    cross-entropy per example; train: the first MEASURED_TRAIN_IMAGES
    training images), as deployed; None if the learner has no ``measure``.
  """
  step: int
  accuracy: float
  accuracy_as_one_batch: Optional[float] = None
  sigmoid_inputs: Optional[np.ndarray] = None
  post_figure_means: Optional[np.ndarray] = None
  measured: Optional[dict] = None


def compile_evaluate(net, images, labels, training):
  """``evaluate() -> (test accuracy, every hidden layer's sigmoid inputs,
  each (10000, 100))`` on the test set held in the graph. ``training=True``:
  the batchnorm net normalises with the statistics of the test set as one
  batch; False: with its moving averages."""

  @tf.function
  def evaluate():
    forward = net.forward(images, training=training)
    return nn.accuracy(forward.logits, labels), forward.sigmoid_inputs

  return evaluate


def compile_measure(net, train_images, train_labels, test_images,
                    test_labels):
  """``measure() -> (test accuracy, train accuracy, train loss, test
  loss)``, as deployed (moving averages), the losses as mean cross-entropy
  per example: what the regularisation claim compares (a regulariser
  narrows the gap between training and test). One pass over each set."""

  def loss(images, labels):
    logits = net(images, training=False)
    return (nn.accuracy(logits, labels),
            nn.summed_cross_entropy(logits, labels) / len(labels))

  @tf.function
  def measure():
    train_accuracy, train_loss = loss(train_images, train_labels)
    test_accuracy, test_loss = loss(test_images, test_labels)
    return test_accuracy, train_accuracy, train_loss, test_loss

  return measure


def compile_predict_one_at_a_time(net, training):
  """``model.predict_one_at_a_time`` compiled once for any number of images."""
  return tf.function(
      lambda images: predict_one_at_a_time(net, images, training),
      input_signature=[tf.TensorSpec([None, nn.NUM_PIXELS], tf.float32)])


class Learner(NamedTuple):
  """One net with its optimizer and compiled functions (see ``build``).

  initial_values: every variable of ``net`` as built, for ``restart``.
  evaluate: on the test set as deployed (``compile_evaluate``).
  evaluate_as_one_batch: the batchnorm net on the test set as one batch;
    None for the plain net, which has no batch statistics (``evaluate``
    serves both views).
  predict_one_at_a_time: {mode: compiled predict} for the batchnorm net
    (modes in ``SINGLE_EXAMPLE_MODES``); empty for the plain net, whose
    prediction does not depend on the rest of the batch.
  initial_values_of: ``seed -> initial_values`` of another seed (the
    sweep's); None: only ``initial_values``.
  walk: the batches' walk (``loop.make_walk``), reset to the run's seed.
  measure: ``compile_measure``'s function, or None.
  """
  net: tf.Module
  optimizer: SGD
  initial_values: list
  train_steps: Callable
  evaluate: Callable
  evaluate_as_one_batch: Optional[Callable]
  predict_one_at_a_time: dict
  initial_values_of: Optional[Callable] = None
  walk: object = None
  measure: Optional[Callable] = None


def build(config, mnist):
  """Both nets, from the same N(0, 1) weights, ready to train.

  Args:
    mnist: an object with ``train`` and ``test`` splits, each with ``images``
      float32 (n, 784) and ``labels`` int64 (n,) (``tfscratch.lab.mnist``'s
      Mnist). ``config.batch_size`` must not exceed the training images.
  Returns:
    {"plain": Learner, "batchnorm": Learner}.
  """
  make_net = {
      "plain": PlainNet,
      "batchnorm": functools.partial(BatchNormNet, momentum=config.momentum,
                                     epsilon=config.epsilon)}

  def initial_values_of(name, seed):
    # A throw-away net of that seed: its variables in the order of ours.
    net = make_net[name](initial_weights(seed, config.hidden_sizes))
    return [v.numpy() for v in net.variables]

  weights = initial_weights(config.seed, config.hidden_sizes)
  nets = {name: make(weights) for name, make in make_net.items()}
  # Held in the graph once, shared by every compiled function.
  train_images = tf.constant(mnist.train.images)
  train_labels = tf.constant(mnist.train.labels)
  test_images = tf.constant(mnist.test.images)
  test_labels = tf.constant(mnist.test.labels)
  # Both nets see the same batches, as in the post (one next_batch, two
  # training steps).
  walk = loop.make_walk(config.batch_order, config.batch_size,
                        len(mnist.train.labels), data.walk_seed(config.seed))
  learners = {}
  for name, net in nets.items():
    optimizer = SGD(net.weights, config.learning_rate)
    batchnorm = isinstance(net, BatchNormNet)

    def step(i, net=net, optimizer=optimizer):
      rows = walk(i)
      return sgd_step(net, optimizer, tf.gather(train_images, rows),
                      tf.gather(train_labels, rows))

    learners[name] = Learner(
        net=net,
        optimizer=optimizer,
        initial_values=[v.numpy() for v in net.variables],
        initial_values_of=functools.partial(initial_values_of, name),
        walk=walk,
        measure=compile_measure(
            net, train_images[:MEASURED_TRAIN_IMAGES],
            train_labels[:MEASURED_TRAIN_IMAGES], test_images, test_labels),
        train_steps=loop.compile_steps(step),
        evaluate=compile_evaluate(net, test_images, test_labels,
                                  training=False),
        evaluate_as_one_batch=(
            compile_evaluate(net, test_images, test_labels, training=True)
            if batchnorm else None),
        predict_one_at_a_time=(
            {mode: compile_predict_one_at_a_time(net, training)
             for mode, training in SINGLE_EXAMPLE_MODES.items()}
            if batchnorm else {}))
  return learners


def trace_counts(learners):
  """{"plain.train_steps": 1, ...}: the traces of every compiled function
  (more than 1 would mean a call changed its input signature; 0 that it
  never ran: ``evaluate`` is not needed when ``measure`` gives the accuracy
  and nothing inside is looked at)."""
  functions = {}
  for name, learner in learners.items():
    functions[f"{name}.train_steps"] = learner.train_steps
    functions[f"{name}.evaluate"] = learner.evaluate
    if learner.measure is not None:
      functions[f"{name}.measure"] = learner.measure
    if learner.evaluate_as_one_batch is not None:
      functions[f"{name}.evaluate_as_one_batch"] = (
          learner.evaluate_as_one_batch)
    for mode, predict in learner.predict_one_at_a_time.items():
      functions[f"{name}.predict_one_at_a_time.{mode}"] = predict
  return loop.trace_counts(**functions)


def restart(learner, learning_rate, seed=None):
  """Puts back the net's initial weights and statistics (those of ``seed``
  if given), restarts the walk with the seed's shuffles, and sets SGD's
  learning rate (a variable: changing it retraces nothing)."""
  values = learner.initial_values
  if seed is not None and learner.initial_values_of is not None:
    values = learner.initial_values_of(seed)
  for variable, value in zip(learner.net.variables, values):
    variable.assign(value)
  if learner.walk is not None and seed is not None:
    learner.walk.reset(data.walk_seed(seed))
  learner.optimizer.reset()
  learner.optimizer.learning_rate.assign(learning_rate)


@dataclasses.dataclass
class Curve:
  """What one run of one net recorded.

  steps: the evaluated steps: 0, eval_every, 2 eval_every, ..., and the last.
  accuracy: the test accuracy at each of them (see ``Evaluation``).
  accuracy_as_one_batch, percentiles: only when ``train`` looked inside:
    at each evaluated step, the blog's one-batch test accuracy and the
    15th/50th/85th percentiles over the test set of the tracked sigmoid's
    input (else empty); post_figure_means: the post's second figure (see
    ``Evaluation``), one (5,) list per evaluated step (else empty).
  train_accuracy, train_loss, test_loss: at each evaluated step, if the
    learner measures them (``Evaluation.measured``), else empty.
  losses: float32 (steps taken,), the training loss of every step.
  diverged_at: the step whose loss was NaN or infinite (training of this net
    stopped there), else None.
  """
  steps: list = dataclasses.field(default_factory=list)
  accuracy: list = dataclasses.field(default_factory=list)
  accuracy_as_one_batch: list = dataclasses.field(default_factory=list)
  percentiles: list = dataclasses.field(default_factory=list)
  post_figure_means: list = dataclasses.field(default_factory=list)
  train_accuracy: list = dataclasses.field(default_factory=list)
  train_loss: list = dataclasses.field(default_factory=list)
  test_loss: list = dataclasses.field(default_factory=list)
  losses: np.ndarray = dataclasses.field(
      default_factory=lambda: np.zeros(0, np.float32))
  diverged_at: Optional[int] = None

  def final_loss(self, last=100):
    """The mean training loss of the last ``last`` steps."""
    return float(np.mean(self.losses[-last:], dtype=np.float64))


def evaluate(learner, step, look_inside):
  """The Evaluation of ``learner``'s net after ``step`` steps.

  ``look_inside``: also the blog's view (the test set as one batch) and the
  last hidden layer's sigmoid inputs, which cost the batchnorm net a second
  pass over the test set.
  """
  measured = None
  if learner.measure is not None:
    accuracy, *values = learner.measure()
    measured = dict(zip(("train_accuracy", "train_loss", "test_loss"),
                        (float(value) for value in values)))
  if learner.measure is None or look_inside:
    accuracy, sigmoid_inputs = learner.evaluate()
  if not look_inside:
    return Evaluation(step, float(accuracy), measured=measured)
  one_batch_accuracy = accuracy
  if learner.evaluate_as_one_batch is not None:
    one_batch_accuracy, sigmoid_inputs = learner.evaluate_as_one_batch()
  post_figure = sigmoid_inputs[POST_FIGURE_LAYER][:, :POST_FIGURE_UNITS]
  return Evaluation(step, float(accuracy), float(one_batch_accuracy),
                    sigmoid_inputs[-1].numpy(),
                    np.mean(post_figure.numpy(), axis=0, dtype=np.float64),
                    measured)


def train(config, learner, learning_rate, log=None, on_eval=None,
          look_inside=False, seed=None):
  """Trains one net from its initial weights for ``config.steps`` steps.

  The test set is evaluated at step 0, every ``config.eval_every`` steps and
  at the end; between evaluations the steps run in the graph, K per call.

  Args:
    learner: from ``build``; restarted here.
    log: ``log(first_step, losses)`` after every call of the compiled loop,
      with the losses (NumPy) of steps first_step + 1 .. first_step + K. It
      may raise to stop the run (the program's divergence guard does).
    on_eval: ``on_eval(evaluation)`` after every ``Evaluation``.
    look_inside: record the one-batch accuracy and the tracked sigmoid's
      input percentiles too (the main run's figures; see ``evaluate``).
    seed: the initial weights and shuffles to use (default config.seed).
  Returns:
    A Curve. A NaN or infinite loss ends the run early (``diverged_at``).
  """
  restart(learner, learning_rate,
          config.seed if seed is None else seed)
  curve = Curve()
  losses = []
  done = 0
  while True:
    if done % config.eval_every == 0 or done == config.steps:
      evaluation = evaluate(learner, done, look_inside)
      curve.steps.append(done)
      curve.accuracy.append(evaluation.accuracy)
      if look_inside:
        curve.accuracy_as_one_batch.append(evaluation.accuracy_as_one_batch)
        curve.percentiles.append(np.percentile(
            evaluation.sigmoid_inputs[:, config.tracked_unit],
            PERCENTILES).tolist())
        curve.post_figure_means.append(evaluation.post_figure_means.tolist())
      if evaluation.measured is not None:
        for key, value in evaluation.measured.items():
          getattr(curve, key).append(value)
      if on_eval is not None:
        on_eval(evaluation)
    if done == config.steps:
      break
    num_steps = min(config.eval_every - done % config.eval_every,
                    config.steps - done)
    chunk = learner.train_steps(done, num_steps).numpy()
    losses.append(chunk)
    if log is not None:
      log(done, chunk)
    finite = np.isfinite(chunk)
    if not finite.all():
      curve.diverged_at = done + int(np.argmin(finite)) + 1
      break
    done += num_steps
  if losses:
    curve.losses = np.concatenate(losses)
  return curve


def train_both(config, learners, learning_rate, callbacks=None,
               look_inside=False, seed=None):
  """{name: Curve}: each net trained from the same weights on the same
  batches. ``callbacks(name)`` gives the keyword arguments ``log`` and
  ``on_eval`` of that net's ``train``."""
  return {name: train(config, learner, learning_rate,
                      look_inside=look_inside, seed=seed,
                      **(callbacks(name) if callbacks else {}))
          for name, learner in learners.items()}


def single_example_accuracy(learner, images, labels):
  """The batchnorm net classifying each test image on its own.

  Returns:
    ({mode: test accuracy} for both ``SINGLE_EXAMPLE_MODES``, the sorted
    classes predicted with batch statistics: a single one, since a batch of
    one example normalises every input to beta).
  """
  accuracy, predictions = {}, {}
  for mode, predict in learner.predict_one_at_a_time.items():
    predictions[mode] = predict(images).numpy()
    accuracy[mode] = float(np.mean(predictions[mode] == labels))
  return accuracy, np.unique(predictions["batch_statistics"]).tolist()


def sweep(config, learners, main_run, callbacks=None):
  """Both nets at every learning rate of ``config.lr_sweep``, each for
  ``config.steps`` steps, from each of ``config.sweep_seeds`` seeds.

  Args:
    main_run: the main run's {name: Curve}, reused for its learning rate
      and seed.
    callbacks: ``callbacks(rate_key, name, seed)`` gives the ``log`` and
      ``on_eval`` keyword arguments of that run's ``train``.
  Returns:
    {seed: {rate key ("0.1"): {name: Curve}}}.
  """
  runs = {}
  for seed in range(config.seed, config.seed + config.sweep_seeds):
    runs[seed] = {}
    for rate in config.lr_sweep:
      key = f"{rate:g}"
      if rate == config.learning_rate and seed == config.seed:
        runs[seed][key] = main_run
      else:
        runs[seed][key] = train_both(
            config, learners, rate, seed=seed, callbacks=(
                None if callbacks is None else
                lambda name, key=key, seed=seed: callbacks(key, name, seed)))
  return runs


def steps_to_reach(curve):
  """{"0.90": first evaluated step with test accuracy >= 90%, or None;
  "0.93", "0.95": the same for 93% and 95%}."""
  reached = {}
  for threshold in THRESHOLDS:
    hits = [step for step, accuracy in zip(curve.steps, curve.accuracy)
            if accuracy >= threshold]
    reached[f"{threshold:.2f}"] = hits[0] if hits else None
  return reached
