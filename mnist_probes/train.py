"""The experiment, top to bottom: plain functions over a frozen ``Config``.

No flags, no files: ``run`` returns every number and array the program
publishes. Progress reaches the outside only through two optional callbacks:
``make_log(name)`` (called as network ``name`` starts training; it returns
``log(first_step, losses)``) and ``note(text)`` (one line per result).

Read in this order:

  Config           every setting of a run (defaults: the blog's)
  sgd_step         one SGD step on the blog's summed cross-entropy
  aux_sgd_step     the same plus the auxiliary L1 loss (the failed idea)
  train            one network: evaluate, K steps, evaluate, ... -> Curve
  fit_probe        one logistic-regression probe (probe.py) -> its accuracy
  run              the whole experiment: train the net (snapshotting its
                   layers for the sweep), probe every layer, PCA, the
                   auxiliary-loss net, the probe sweep

The loop runs in the graph
--------------------------
One SGD step of this 784-100-100-100-10 net on 50 images is some tens of
microseconds of arithmetic. Called from Python once per step, with the
batch cut from a NumPy array and the loss read back, the core mostly waits.
So the training images go into the graph once, as a constant, and
``tfscratch.loop.compile_steps`` runs K steps per call (a ``tf.while_loop``):
step i gathers its batch with ``tf.gather`` and updates the weights. Python
is entered only at evaluations (every ``eval_every`` steps), progress lines
(``log_every``) and sweep snapshots. K steps per call give the same weights,
bit for bit, as one step per call (a test checks it).

Built once, traced once
-----------------------
Every compiled function here has a fixed input signature, so it is traced
once however often it runs: ``Result.trace_counts`` reports it. The probe's
L-BFGS solver is one ``tf.function`` per objective whose dimensions are all
None, so one trace serves every layer and probe size.
"""
import dataclasses
import functools
from typing import Callable, NamedTuple, Optional

import numpy as np
import tensorflow as tf

from mnist_probes.model import MLP, AuxiliaryHead, l1_loss
from mnist_probes.pca import fit_pca
from mnist_probes.probe import COMPILED_FITS, LogisticRegression
from tfscratch import loop
from tfscratch.nn import NUM_PIXELS, accuracy, summed_cross_entropy
from tfscratch.optimizers import SGD

NUM_LAYERS = 4  # representations: the input and three hidden layers
HIDDEN_UNITS = 300  # 100 per hidden layer
PCA_DIGITS = (0, 1, 2, 3)


def default_sweep_steps(steps):
  """The sweep's default: 0 (initialisation), 100, 1000 and the end of
  training, those not past ``steps``."""
  return tuple(sorted({step for step in (0, 100, 1000) if step <= steps} |
                      {steps}))


@dataclasses.dataclass(frozen=True)
class Config:
  """The settings of one run (defaults: the blog's).

  steps: SGD steps of each network (the base and the auxiliary-loss net).
  batch_size: images per step. The loss is summed over the batch.
  learning_rate: of SGD.
  eval_every: steps between test-accuracy points of the training curves.
  log_every: the loop also returns to Python at multiples of this, for the
    progress lines.
  probe_train_size, probe_test_size: the probes train on the layers of this
    many first training images, and are scored on this many first test
    images (whose digits 0-3 are also the PCA plots' points).
  probe_c: C of the probes' penalty ||W||^2 / (2C).
  probe_tolerance: a probe fit stops when max |gradient of objective / n| is
    this small.
  aux_weight: weight of the auxiliary L1 loss (the blog's 0.1).
  aux_components: principal components of the trained net's layer 3 that
    the head on layer 1 regresses.
  sweep_steps: training steps at which every layer is probed again (each
    <= steps; () for no sweep); None: ``default_sweep_steps(steps)``.
  sweep_train_sizes: probe training-set sizes of the sweep.
  seed: of the initial weights (the same for both networks).
  """
  steps: int = 10_000
  batch_size: int = 50
  learning_rate: float = 0.01
  eval_every: int = 100
  log_every: int = 500
  probe_train_size: int = 1000
  probe_test_size: int = 1000
  probe_c: float = 1.0
  probe_tolerance: float = 1e-8
  aux_weight: float = 0.1
  aux_components: int = 3
  sweep_steps: Optional[tuple] = None
  sweep_train_sizes: tuple = (100, 1000, 10_000)
  seed: int = 0

  @property
  def sweep_at(self):
    """The sweep's steps, sorted, without repeats."""
    if self.sweep_steps is None:
      return default_sweep_steps(self.steps)
    return tuple(sorted(set(self.sweep_steps)))

  @property
  def sweep_sizes(self):
    """The sweep's probe training-set sizes (none without sweep steps)."""
    return tuple(sorted(set(self.sweep_train_sizes))) if self.sweep_at else ()

  @property
  def largest_probe_train_size(self):
    return max((self.probe_train_size,) + self.sweep_sizes)


def snapshot_bytes(config):
  """The memory the sweep's snapshots take: the hidden layers (float32) of
  the probes' training and test images at every sweep step. (The input
  layer is the images themselves, the same at every step: not copied.)"""
  images = config.largest_probe_train_size + config.probe_test_size
  return len(config.sweep_at) * images * HIDDEN_UNITS * 4


def blog_walk(images, labels, batch_size):
  """The images SGD walks through: all but the last ``batch_size``.

  The blog's ``next_batch`` walks batches with start = (50 i) mod 54,950: it
  wraps one batch before the end of the 55,000 images, so the last batch is
  never seen. Step i takes images i*B .. i*B + B - 1 of these, modulo their
  number.
  """
  count = len(images) - batch_size
  return images[:count], labels[:count]


def sgd_step(model, optimizer, images, labels):
  """One SGD step on loss = sum over the batch of -log p(label); returns
  the loss before the step."""
  with tf.GradientTape() as tape:
    logits, _ = model(images)
    loss = summed_cross_entropy(logits, labels)
  optimizer.apply(tape.gradient(loss, model.weights))
  return loss


def aux_sgd_step(model, head, optimizer, aux_weight, images, labels, targets,
                 source_layer=1):
  """One SGD step of the auxiliary experiment on

    loss = cross_entropy + aux_weight * l1_loss(head(h_source), targets)

  over ``model.weights + head.weights`` (the optimizer's variables, in that
  order).

  Returns:
    float32 (3,): loss, cross_entropy and l1_loss before the step.
  """
  variables = model.weights + head.weights
  with tf.GradientTape() as tape:
    logits, layers = model(images)
    cross_entropy = summed_cross_entropy(logits, labels)
    aux_loss = l1_loss(head(layers[source_layer]), targets)
    loss = cross_entropy + aux_weight * aux_loss
  optimizer.apply(tape.gradient(loss, variables))
  return tf.stack([loss, cross_entropy, aux_loss])


def compile_forward(model):
  """A compiled ``model(images)`` for any number of images, traced once."""
  return tf.function(model.__call__, input_signature=[
      tf.TensorSpec([None, NUM_PIXELS], tf.float32)])


class Network(NamedTuple):
  """A network with its compiled functions (built once, traced once).

  train_steps: ``train_steps(first_step, num_steps) -> losses``.
  forward: ``forward(images) -> (logits, [h_0, h_1, h_2, h_3])``.
  """
  model: MLP
  train_steps: Callable
  forward: Callable


@dataclasses.dataclass
class Curve:
  """Test accuracy during training.

  step: 0, eval_every, 2 eval_every, ..., steps.
  test_accuracy: on all 10,000 test images at each of those steps.
  final_loss: the mean training loss of the last min(100, steps) steps.
  """
  step: list = dataclasses.field(default_factory=list)
  test_accuracy: list = dataclasses.field(default_factory=list)
  final_loss: float = float("nan")


def _next_multiple(done, every):
  return (done // every + 1) * every


def train(config, network, test_images, test_labels, log=None,
          snapshot_at=(), snapshot=None):
  """Trains ``network`` for ``config.steps`` steps.

  The steps run in the graph, K per call, between the points where Python
  needs something: a test evaluation, a progress line, a snapshot.

  Args:
    test_images, test_labels: tensors; the test accuracy is measured at step
      0, every ``config.eval_every`` steps and at the end.
    log: ``log(first_step, losses)`` after every call of the compiled loop,
      with the losses (NumPy, (K,) or (K, parts)) of steps first_step + 1 ..
      first_step + K. It may raise to stop the run (the program's guard
      does when the loss is NaN or blows up).
    snapshot_at: steps (0 = before training) at which ``snapshot(step)`` is
      called.
  Returns:
    A Curve.
  """

  def evaluate():
    logits, _ = network.forward(test_images)
    return float(accuracy(logits, test_labels))

  curve = Curve(step=[0], test_accuracy=[evaluate()])
  recent_losses = np.zeros(0, np.float32)
  pauses = sorted(set(snapshot_at))
  done = 0
  while done < config.steps:
    if done in pauses:
      snapshot(done)
    stop = min([_next_multiple(done, config.eval_every),
                _next_multiple(done, config.log_every), config.steps] +
               [step for step in pauses if step > done])
    losses = network.train_steps(done, stop - done).numpy()
    if log is not None:
      log(done, losses)
    loss = losses if losses.ndim == 1 else losses[:, 0]
    recent_losses = np.concatenate([recent_losses, loss])[-100:]
    done = stop
    if done % config.eval_every == 0 or done == config.steps:
      curve.step.append(done)
      curve.test_accuracy.append(evaluate())
  if config.steps in pauses:
    snapshot(config.steps)
  curve.final_loss = float(np.mean(recent_losses))
  return curve


def layers_of(forward, images, first=0):
  """Layers ``first`` .. 3 of ``images`` (NumPy), as float32 NumPy arrays."""
  return [layer.numpy() for layer in forward(tf.constant(images))[1][first:]]


def fit_probe(config, train_features, train_labels, test_features,
              test_labels, objective="multinomial"):
  """Fits one probe to convergence (``probe.py``).

  Returns:
    {"accuracy": on the test features, "iterations", "gradient_norm",
    "converged"}.
  """
  probe = LogisticRegression(train_features.shape[1], C=config.probe_c,
                             objective=objective)
  fit = probe.fit(train_features, train_labels,
                  tolerance=config.probe_tolerance)
  return {"accuracy": probe.accuracy(test_features, test_labels),
          "iterations": fit.iterations, "gradient_norm": fit.gradient_norm,
          "converged": fit.converged}


class PcaView(NamedTuple):
  """Each layer's top 3 principal components, for the digits 0-3 only.

  projections: per layer, (n, 3) coordinates. labels: (n,) their digits.
  explained_variance_ratio: per layer, (3,).
  """
  projections: list
  labels: np.ndarray
  explained_variance_ratio: list


def pca_of_layers(layers, labels, digits=PCA_DIGITS):
  """A PCA of each layer, fitted on the points of ``digits`` alone (as the
  blog's plotting code)."""
  chosen = np.isin(labels, digits)
  fits = [fit_pca(layer[chosen], 3) for layer in layers]
  return PcaView(
      [fit.transform(layer[chosen]).numpy() for fit, layer in zip(fits,
                                                                  layers)],
      labels[chosen], [fit.explained_variance_ratio.numpy() for fit in fits])


def compare_curves(base, aux, steps):
  """The auxiliary-loss net against the base net.

  One evaluation is noisy (the curves move by ~0.004 between points), so
  the curves are also compared point by point and over the second half.
  """
  base_points = np.array(base.test_accuracy[1:])
  aux_points = np.array(aux.test_accuracy[1:])
  second_half = np.array(base.step[1:]) > steps / 2
  return {
      "base_accuracy": base.test_accuracy[-1],
      "aux_accuracy": aux.test_accuracy[-1],
      "base_accuracy_second_half_mean": float(np.mean(
          base_points[second_half])),
      "aux_accuracy_second_half_mean": float(np.mean(
          aux_points[second_half])),
      "evaluations_aux_ahead": int(np.sum(aux_points > base_points)),
      "evaluations_aux_behind": int(np.sum(aux_points < base_points)),
  }


def sweep_record(step, size, accuracies):
  """One row of the sweep: is probe accuracy strictly rising with depth?"""
  return {"step": step, "train_size": size, "accuracy": accuracies,
          "deeper_is_better": bool(np.all(np.diff(accuracies) > 0)),
          "best_layer": int(np.argmax(accuracies))}


@dataclasses.dataclass
class Result:
  """Everything ``run`` measured.

  test_accuracy: the trained base network's, on the 10,000 test images.
  base_curve, aux_curve: Curves of the base and the auxiliary-loss net.
  probes, probes_ovr: per layer, ``fit_probe``'s record for today's
    (multinomial) and the blog's (one-vs-rest) probe objective.
  pca: the PcaView of the trained net on the probes' test images.
  aux: ``compare_curves`` of the two nets.
  sweep: ``sweep_record``s, for each sweep size, for each sweep step.
  model: the trained base network.
  trace_counts: {name: times traced} of every compiled function (1 each).
  """
  test_accuracy: float
  base_curve: Curve
  aux_curve: Curve
  probes: list
  probes_ovr: list
  pca: PcaView
  aux: dict
  sweep: list
  model: MLP
  trace_counts: dict

  @property
  def probe_accuracy(self):
    return [probe["accuracy"] for probe in self.probes]

  @property
  def probe_accuracy_ovr(self):
    return [probe["accuracy"] for probe in self.probes_ovr]


def _listed(values):
  return ", ".join(f"{value:.3f}" for value in values)


def run(config, train_split, test_split, make_log=None, note=None):
  """The whole experiment.

  Args:
    train_split, test_split: objects with ``images`` float32 (n, 784) and
      ``labels`` int64 (n,), e.g. ``data.load_train_test``'s; the training
      split must hold ``config.largest_probe_train_size`` images and more
      than 2 ``config.batch_size``, the test split
      ``config.probe_test_size``.
    make_log: ``make_log(name)`` is called as network "base" or "aux" starts
      training and returns its ``log`` for ``train`` (None: no logging).
    note: ``note(text)`` receives a line per result as it comes.
  Returns:
    A Result.
  """
  note = note or (lambda text: None)
  make_log = make_log or (lambda name: None)
  images, labels = blog_walk(train_split.images, train_split.labels,
                             config.batch_size)
  images = tf.constant(images)  # held in the graph once, for both nets
  test_images = tf.constant(test_split.images)
  probe_test_images = test_split.images[:config.probe_test_size]
  probe_test_labels = test_split.labels[:config.probe_test_size]
  largest = config.largest_probe_train_size

  # 1. The blog's net, with a snapshot of every hidden layer of the probes'
  #    images at each sweep step.
  model = MLP(seed=config.seed)
  optimizer = SGD(model.weights, config.learning_rate)
  base = Network(model, loop.compile_walk(
      functools.partial(sgd_step, model, optimizer), (images, labels),
      config.batch_size), compile_forward(model))
  snapshots = {}

  def snapshot(step):
    snapshots[step] = (
        layers_of(base.forward, train_split.images[:largest], first=1),
        layers_of(base.forward, probe_test_images, first=1))

  base_curve = train(config, base, test_images, test_split.labels,
                     make_log("base"), config.sweep_at, snapshot)
  note(f"network test accuracy: {base_curve.test_accuracy[-1]:.4f}")

  # 2. The blog's probes: logistic regression on every layer of the trained
  #    net. Fits are cached by (layer, step, size) for the sweep to reuse;
  #    the input layer never trains, so its probe depends on the size alone.
  fits = {}

  def probe(layer, step, size, train_layers, test_layers):
    key = (layer, step if layer else None, size)
    if key not in fits:
      fits[key] = fit_probe(config, train_layers[layer][:size],
                            train_split.labels[:size], test_layers[layer],
                            probe_test_labels)
      if not fits[key]["converged"]:
        note(f"warning: probe stopped at gradient "
             f"{fits[key]['gradient_norm']:.2e} after "
             f"{fits[key]['iterations']} iterations, above the tolerance")
    return fits[key]

  train_layers = layers_of(base.forward,
                           train_split.images[:config.probe_train_size])
  test_layers = layers_of(base.forward, probe_test_images)
  probes = [probe(layer, config.steps, config.probe_train_size, train_layers,
                  test_layers) for layer in range(NUM_LAYERS)]
  # The blog's own probe: scikit-learn 2016's one-vs-rest default.
  probes_ovr = [fit_probe(config, train_layers[layer],
                          train_split.labels[:config.probe_train_size],
                          test_layers[layer], probe_test_labels, "ovr")
                for layer in range(NUM_LAYERS)]
  note(f"probe accuracy per layer: "
       f"{_listed(p['accuracy'] for p in probes)}; one-vs-rest: "
       f"{_listed(p['accuracy'] for p in probes_ovr)}")
  pca = pca_of_layers(test_layers, probe_test_labels)

  # 3. The failed idea: same initial weights, plus an L1 loss pulling a
  #    linear head on layer 1 toward the top principal components of the
  #    trained net's layer 3 (PCA fitted on the whole training split, as the
  #    blog).
  layer3 = layers_of(base.forward, train_split.images, first=3)[0]
  targets = fit_pca(layer3, config.aux_components).transform(layer3)
  aux_model = MLP(seed=config.seed)
  head = AuxiliaryHead(outputs=config.aux_components, seed=config.seed)
  aux_optimizer = SGD(aux_model.weights + head.weights, config.learning_rate)
  aux = Network(aux_model, loop.compile_walk(
      functools.partial(aux_sgd_step, aux_model, head, aux_optimizer,
                        config.aux_weight),
      (images, labels, targets[:len(labels)]), config.batch_size),
      compile_forward(aux_model))
  aux_curve = train(config, aux, test_images, test_split.labels,
                    make_log("aux"))
  note(f"auxiliary-loss net test accuracy: {aux_curve.test_accuracy[-1]:.4f}"
       f"; base {base_curve.test_accuracy[-1]:.4f}")

  # 4. Beyond the blog: probes at several points in training and for
  #    several probe training-set sizes.
  sweep = []
  for size in config.sweep_sizes:
    for step in config.sweep_at:
      hidden_train, hidden_test = snapshots[step]
      accuracies = [
          probe(layer, step, size, [train_split.images] + hidden_train,
                [probe_test_images] + hidden_test)["accuracy"]
          for layer in range(NUM_LAYERS)]
      sweep.append(sweep_record(step, size, accuracies))
      note(f"sweep: step {step}, {size} probe training images: "
           f"{_listed(accuracies)}")

  return Result(
      test_accuracy=base_curve.test_accuracy[-1], base_curve=base_curve,
      aux_curve=aux_curve, probes=probes, probes_ovr=probes_ovr, pca=pca,
      aux=compare_curves(base_curve, aux_curve, config.steps), sweep=sweep,
      model=model,
      trace_counts=loop.trace_counts(
          base_train_steps=base.train_steps, base_forward=base.forward,
          aux_train_steps=aux.train_steps, aux_forward=aux.forward,
          **{f"probe_fit_{name}": fit for name, fit in COMPILED_FITS.items()}))
