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
  sweep           both nets at every learning rate of the sweep
  steps_to_reach  the first evaluated step at 90% and at 95% test accuracy

The loop runs in the graph
--------------------------
A training step of these small nets is well under a millisecond of work.
Called from Python once per step, with a batch cut from a NumPy array and the
loss read back, the cores would idle between steps. So the 55,000 training
images are put in the graph ONCE, as a constant, and
``tfscratch.loop.compile_steps`` runs K steps per call: each step gathers its
batch with ``tf.gather`` (batch i holds images i*B .. i*B + B - 1, modulo
55,000: the training set walked in order, as ``nn.ordered_batch`` does on the
host). Python is entered once per evaluation (every 50 steps by default),
where it has to read the test accuracy anyway. The weights, losses and
accuracies are the same, bit for bit, as with one host-fed step per call
(tests check it); only the time changes (about 2x fewer seconds per step).

Built once, traced once
-----------------------
A ``tf.function`` captures variables, not their values. So every run (the
main one, then each learning rate of the sweep) reuses the same compiled
functions: ``restart`` assigns the saved initial values to the same
variables and the new learning rate to the optimizer's learning-rate
variable, and nothing is retraced. ``trace_counts`` reports it (1 each).
"""
import dataclasses
import functools
from typing import Callable, NamedTuple, Optional

import numpy as np
import tensorflow as tf

from batchnorm_manual.model import (BatchNormNet, PlainNet, initial_weights,
                                    predict_one_at_a_time)
from tfscratch import loop, nn
from tfscratch.optimizers import SGD

NETS = ("plain", "batchnorm")
THRESHOLDS = (0.90, 0.95)
PERCENTILES = (15, 50, 85)
# Which single-example inference: normalising with the batch's own
# statistics (training=True) or with the moving averages (training=False).
SINGLE_EXAMPLE_MODES = {"batch_statistics": True,
                        "population_statistics": False}


@dataclasses.dataclass(frozen=True)
class Config:
  """The settings of one run of the experiment (defaults: the blog's).

  steps: training steps of each net in each run (the blog's 10,000).
  batch_size: examples per step (60), at least 2 (a batch of one has zero
    variance: BN would output beta and pass no gradient).
  learning_rate: of SGD in the main run. The loss is summed over the batch,
    so the step per example is this, not this / batch_size.
  momentum, epsilon: of every BN layer (Keras' meaning and defaults).
  eval_every: steps between test-set evaluations (the blog's 50).
  lr_sweep: the learning rates of the sweep (the main one is reused).
  tracked_unit: which sigmoid of the last hidden layer to follow.
  seed: of the N(0, 1) weights both nets start from.
  """
  steps: int = 10_000
  batch_size: int = 60
  learning_rate: float = 0.01
  momentum: float = 0.99
  epsilon: float = 1e-3
  eval_every: int = 50
  lr_sweep: tuple = (0.01, 0.1, 0.5)
  tracked_unit: int = 0
  seed: int = 0


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
  """
  step: int
  accuracy: float
  accuracy_as_one_batch: Optional[float] = None
  sigmoid_inputs: Optional[np.ndarray] = None


def compile_evaluate(net, images, labels, training):
  """``evaluate() -> (test accuracy, the last hidden layer's sigmoid inputs
  (10000, 100))`` on the test set held in the graph. ``training=True``: the
  batchnorm net normalises with the statistics of the test set as one
  batch; False: with its moving averages."""

  @tf.function
  def evaluate():
    forward = net.forward(images, training=training)
    return nn.accuracy(forward.logits, labels), forward.sigmoid_inputs[-1]

  return evaluate


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
  """
  net: tf.Module
  optimizer: SGD
  initial_values: list
  train_steps: Callable
  evaluate: Callable
  evaluate_as_one_batch: Optional[Callable]
  predict_one_at_a_time: dict


def build(config, data):
  """Both nets, from the same N(0, 1) weights, ready to train.

  Args:
    data: an object with ``train`` and ``test`` splits, each with ``images``
      float32 (n, 784) and ``labels`` int64 (n,) (``tfscratch.lab.mnist``'s
      Mnist). ``config.batch_size`` must not exceed the training images.
  Returns:
    {"plain": Learner, "batchnorm": Learner}.
  """
  weights = initial_weights(config.seed)
  nets = {"plain": PlainNet(weights),
          "batchnorm": BatchNormNet(weights, config.momentum, config.epsilon)}
  # Held in the graph once, shared by every compiled function.
  train_images = tf.constant(data.train.images)
  train_labels = tf.constant(data.train.labels)
  test_images = tf.constant(data.test.images)
  test_labels = tf.constant(data.test.labels)
  learners = {}
  for name, net in nets.items():
    optimizer = SGD(net.weights, config.learning_rate)
    batchnorm = isinstance(net, BatchNormNet)
    learners[name] = Learner(
        net=net,
        optimizer=optimizer,
        initial_values=[v.numpy() for v in net.variables],
        train_steps=loop.compile_walk(
            functools.partial(sgd_step, net, optimizer),
            (train_images, train_labels), config.batch_size),
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
  that ran (more than 1 would mean a call changed its input signature)."""
  functions = {}
  for name, learner in learners.items():
    functions[f"{name}.train_steps"] = learner.train_steps
    functions[f"{name}.evaluate"] = learner.evaluate
    if learner.evaluate_as_one_batch is not None:
      functions[f"{name}.evaluate_as_one_batch"] = (
          learner.evaluate_as_one_batch)
    for mode, predict in learner.predict_one_at_a_time.items():
      functions[f"{name}.predict_one_at_a_time.{mode}"] = predict
  return loop.trace_counts(**functions)


def restart(learner, learning_rate):
  """Puts back the net's initial weights and statistics, and sets SGD's
  learning rate (a variable: changing it retraces nothing)."""
  for variable, value in zip(learner.net.variables, learner.initial_values):
    variable.assign(value)
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
    input (else empty).
  losses: float32 (steps taken,), the training loss of every step.
  diverged_at: the step whose loss was NaN or infinite (training of this net
    stopped there), else None.
  """
  steps: list = dataclasses.field(default_factory=list)
  accuracy: list = dataclasses.field(default_factory=list)
  accuracy_as_one_batch: list = dataclasses.field(default_factory=list)
  percentiles: list = dataclasses.field(default_factory=list)
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
  accuracy, sigmoid_inputs = learner.evaluate()
  if not look_inside:
    return Evaluation(step, float(accuracy))
  one_batch_accuracy = accuracy
  if learner.evaluate_as_one_batch is not None:
    one_batch_accuracy, sigmoid_inputs = learner.evaluate_as_one_batch()
  return Evaluation(step, float(accuracy), float(one_batch_accuracy),
                    sigmoid_inputs.numpy())


def train(config, learner, learning_rate, log=None, on_eval=None,
          look_inside=False):
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
  Returns:
    A Curve. A NaN or infinite loss ends the run early (``diverged_at``).
  """
  restart(learner, learning_rate)
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
               look_inside=False):
  """{name: Curve}: each net trained from the same weights on the same
  batches. ``callbacks(name)`` gives the keyword arguments ``log`` and
  ``on_eval`` of that net's ``train``."""
  return {name: train(config, learner, learning_rate,
                      look_inside=look_inside,
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
  ``config.steps`` steps from the same start.

  Args:
    main_run: the main run's {name: Curve}, reused for its learning rate.
    callbacks: ``callbacks(rate_key, name)`` gives the ``log`` and
      ``on_eval`` keyword arguments of that run's ``train``.
  Returns:
    {rate key ("0.1"): {name: Curve}}.
  """
  runs = {}
  for rate in config.lr_sweep:
    key = f"{rate:g}"
    if rate == config.learning_rate:
      runs[key] = main_run
    else:
      runs[key] = train_both(
          config, learners, rate,
          None if callbacks is None else lambda name, key=key: callbacks(
              key, name))
  return runs


def steps_to_reach(curve):
  """{"0.90": first evaluated step with test accuracy >= 90%, or None;
  "0.95": the same for 95%}."""
  reached = {}
  for threshold in THRESHOLDS:
    hits = [step for step, accuracy in zip(curve.steps, curve.accuracy)
            if accuracy >= threshold]
    reached[f"{threshold:.2f}"] = hits[0] if hits else None
  return reached
