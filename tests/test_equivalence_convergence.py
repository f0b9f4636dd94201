"""convergence through the harness (tests/equivalence.py), in float64: the
single network (network.py) and every network of a stack (stacked.py)
against reference.KerasNetwork, with keras.optimizers on the reference side.
In float64 the stack and Keras agree to 1e-10 with Adam too (float32 needs
a "1 weight in 1,000 may differ" allowance, test_convergence_model.py).

``check_stacked`` takes the implementation as an argument: the tests pass
convergence.stacked, ``make exercise NAME=stacked`` the learner's
exercises/stacked.py.
"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import numpy as np
import tensorflow as tf

from convergence import network
from convergence import stacked
from convergence.reference import KerasNetwork
from tests import equivalence
from tfscratch import nn
from tfscratch import optimizers

NUM_NETWORKS, BATCH = 2, 6
HEADS = (1, 2, 3)


def _mask():
  """The pixels the training batches may light: 2 in 5 (the others are the
  'blank' rows of W1 the stack does not train)."""
  return np.random.default_rng(0).random(nn.NUM_PIXELS) < 0.4


def _batch(seed):
  """Images (BATCH, 784) lit only inside _mask(), and labels (int64)."""
  rng = np.random.default_rng(seed)
  images = rng.random((BATCH, nn.NUM_PIXELS)) * _mask()
  return images, rng.integers(0, nn.NUM_CLASSES, BATCH)


def _keras_network(weights):
  with equivalence.keras_floatx():
    return KerasNetwork({name: value.astype(np.float64)
                         for name, value in weights.items()})


def _stack_and_twins():
  """A float64 stack of NUM_NETWORKS networks (the experiment's initial
  weights) and a float64 KerasNetwork for each."""
  stack = stacked.StackedNetworks(
      stacked.initial_weights(0, 0, range(NUM_NETWORKS)),
      lit=np.flatnonzero(_mask()), dtype=tf.float64)
  return stack, [_keras_network(stack.network_weights(n))
                 for n in range(NUM_NETWORKS)]


def _names(head):
  """The names of network.phase_variables(head), in its order."""
  names = []
  for layer in range(1, head + 1):
    names += [f"W{layer}", f"b{layer}"]
  return names + [f"V{head}", f"c{head}"]


def _restack(per_network, name, lit):
  """Per-network arrays of variable ``name`` in the stack's layout."""
  if name == "W1":  # (P, N, 100): the lit rows only, run axis second
    return np.stack([value[lit] for value in per_network], axis=1)
  return np.stack(per_network)


class _StackedView:
  """The Keras networks' variable ``name``, read in the stack's layout, so
  the harness can compare it with the stack's variable like a variable."""

  def __init__(self, twins, name, lit):
    self.twins, self.name, self.lit = twins, name, lit

  def numpy(self):
    kind, layer = self.name[0], int(self.name[1]) - 1
    layers = {"W": "layers", "b": "layers", "V": "heads", "c": "heads"}[kind]
    part = "kernel" if kind in "WV" else "bias"
    return _restack(
        [getattr(getattr(twin, layers)[layer], part).numpy()
         for twin in self.twins], self.name, self.lit)

  def __array__(self, dtype=None, copy=None):
    return self.numpy()


def _stack_variables(stack):
  return {f"{kind}{layer + 1}": getattr(stack, kind)[layer]
          for kind in "WbVc" for layer in range(3)}


def check_stacked(impl):
  """``impl.stacked_logits`` for 2 networks at once against each network's
  KerasNetwork (float64, 1e-10): every head's logits; the gradients of the
  summed losses with respect to every stacked variable and the input; and 3
  Adam steps (non-default betas) on the sum against keras Adam per network."""
  stack, twins = _stack_and_twins()
  lit = stack.lit
  images, labels = _batch(seed=1)
  x = tf.constant(images[:, lit])
  images = tf.constant(images)
  variables = _stack_variables(stack)

  def total_loss(head):
    logits = impl.stacked_logits(x, stack.W, stack.b, stack.V, stack.c, head)
    return tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.broadcast_to(labels, [NUM_NETWORKS, BATCH]),
        logits=logits))

  for head in HEADS:
    equivalence.assert_forward(
        {f"head {head} logits": impl.stacked_logits(x, stack.W, stack.b,
                                                    stack.V, stack.c, head)},
        {f"head {head} logits": np.stack(
            [twin.model(images)[head - 1] for twin in twins])})
    names = _names(head)
    ours = equivalence.gradients(
        lambda: total_loss(head),
        {"x": x, **{name: variables[name] for name in names}})
    theirs = [equivalence.gradients(
        lambda twin=twin: twin.summed_loss(images, labels, head),
        {"images": images,
         **dict(zip(names, twin.phase_variables(head)))})
              for twin in twins]
    for name in names:
      expected = _restack([gradients[name] for gradients in theirs], name,
                          lit)
      equivalence.assert_nontrivial(f"gradient of {name}", expected)
      equivalence.assert_close(f"head {head}: gradient of {name}",
                               ours[name], expected)
    equivalence.assert_close(
        f"head {head}: gradient of x",
        ours["x"], sum(gradients["images"][:, lit] for gradients in theirs))
    # The trick's premise: the blank rows of W1 get exactly no gradient.
    for gradients in theirs:
      if "W1" in gradients and np.any(gradients["W1"][~_mask()]):
        raise AssertionError("a blank pixel's row of W1 got a gradient")

  hyperparameters = equivalence.OPTIMIZER_CASES["adam"][1]
  head = 3
  phase = [variables[name] for name in _names(head)]
  adam = optimizers.Adam(phase, **hyperparameters)
  keras_adams = [equivalence.keras_optimizer("adam", hyperparameters,
                                             twin.phase_variables(head))
                 for twin in twins]

  def ours_step(k):
    batch_images, batch_labels = _batch(seed=10 + k)
    x = tf.constant(batch_images[:, lit])
    with tf.GradientTape() as tape:
      logits = impl.stacked_logits(x, stack.W, stack.b, stack.V, stack.c,
                                   head)
      total = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
          labels=tf.broadcast_to(batch_labels, [NUM_NETWORKS, BATCH]),
          logits=logits))
    adam.apply(tape.gradient(total, phase))

  def theirs_step(k):
    batch_images, batch_labels = _batch(seed=10 + k)
    for twin, keras_adam in zip(twins, keras_adams):
      with tf.GradientTape() as tape:
        loss = twin.summed_loss(tf.constant(batch_images), batch_labels, head)
      keras_adam.apply(tape.gradient(loss, twin.phase_variables(head)))

  equivalence.assert_optimizer_steps(
      ours_step, theirs_step, variables,
      {name: _StackedView(twins, name, lit) for name in variables})


class StackedNetworksTest(tf.test.TestCase):

  def test_stacked_logits(self):
    """The exercise ``stacked`` on the package's own function."""
    check_stacked(stacked)

  def test_training_steps_match_keras_with_each_optimizer(self):
    """K steps of stacked.make_train_steps (the experiment's compiled loop,
    run eagerly here) on head 2 against keras.optimizers per network, for
    SGD, Adagrad and Adam at non-default hyperparameters (NetworkTest runs
    the defaults too); every variable compared, those of head 2's phase and
    those it must leave alone."""
    images, labels = zip(*(_batch(seed=20 + k)
                           for k in range(equivalence.STEPS)))
    head = 2
    for name, cases in equivalence.OPTIMIZER_CASES.items():
      for hyperparameters in cases[1:]:
        stack, twins = _stack_and_twins()
        optimizer = optimizers.OPTIMIZERS[name](stack.phase_variables(head),
                                                **hyperparameters)
        keras_optimizers = [
            equivalence.keras_optimizer(name, hyperparameters,
                                        twin.phase_variables(head))
            for twin in twins]
        with equivalence.functions_run_eagerly():
          train_steps = stacked.make_train_steps(
              stack, head, optimizer,
              (np.stack(images)[:, :, stack.lit], np.stack(labels)))

        def theirs_step(k):
          losses = []
          for twin, keras_optimizer in zip(twins, keras_optimizers):
            with tf.GradientTape() as tape:
              loss = twin.summed_loss(tf.constant(images[k]), labels[k], head)
            keras_optimizer.apply(tape.gradient(
                loss, twin.phase_variables(head)))
            losses.append(loss)
          return np.mean(losses)

        with equivalence.functions_run_eagerly():
          equivalence.assert_optimizer_steps(
              lambda k: train_steps(k, 1)[0], theirs_step,
              _stack_variables(stack),
              {name: _StackedView(twins, name, stack.lit)
               for name in _stack_variables(stack)})


class StackedEvaluationTest(tf.test.TestCase):

  def test_mean_losses_are_each_networks_own(self):
    """make_loss_sums + mean_losses (float32, as the experiment evaluates):
    each network's cross-entropy per image, in blocks, against network.py's
    summed loss of the same network on all the images at once."""
    stack = stacked.StackedNetworks(
        stacked.initial_weights(0, 0, range(NUM_NETWORKS)),
        lit=np.flatnonzero(_mask()))
    images, labels = _batch(seed=3)
    images = images.astype(np.float32) + (~_mask()) * 0.5  # blank pixels lit
    losses = stacked.mean_losses(stacked.make_loss_sums(stack), images,
                                 labels, block=4)
    for n in range(NUM_NETWORKS):
      alone = network.Network(stack.network_weights(n))
      self.assertAllClose(losses[n], alone.loss(images, labels, 3) / BATCH,
                          rtol=1e-6)


class NetworkTest(tf.test.TestCase):
  """network.Network (lesson 1) against KerasNetwork."""

  def _pair(self):
    weights = stacked.run_weights(0, 0, 0)
    return (network.Network(weights, dtype=tf.float64),
            _keras_network(weights))

  def test_forward_and_gradients(self):
    """Each head's logits; gradients w.r.t. that head's phase variables and
    the images."""
    net, twin = self._pair()
    images, labels = _batch(seed=2)
    images = tf.constant(images)
    for head in HEADS:
      equivalence.assert_forward({f"head {head}": net(images, head)},
                                 {f"head {head}": twin.model(images)[head - 1]})
      names = _names(head)
      equivalence.assert_gradients(
          lambda: net.loss(images, labels, head),
          {"images": images, **dict(zip(names, net.phase_variables(head)))},
          lambda: twin.summed_loss(images, labels, head),
          {"images": images, **dict(zip(names, twin.phase_variables(head)))})

  def test_train_step_matches_keras_with_each_optimizer(self):
    """K steps of network.train_step on head 2 against
    KerasNetwork.train_step with keras.optimizers, each optimizer at Keras'
    defaults and at others."""
    head = 2
    names = _names(head)
    for name, cases in equivalence.OPTIMIZER_CASES.items():
      for hyperparameters in cases:
        net, twin = self._pair()
        optimizer = optimizers.OPTIMIZERS[name](net.phase_variables(head),
                                                **hyperparameters)
        keras_optimizer = equivalence.KERAS_OPTIMIZERS[name](
            **hyperparameters)
        equivalence.assert_optimizer_steps(
            lambda k: network.train_step(net, optimizer,
                                         *_batch(seed=30 + k), head),
            lambda k: twin.train_step(keras_optimizer, *_batch(seed=30 + k),
                                      head)[0],
            dict(zip(names, net.phase_variables(head))),
            dict(zip(names, twin.phase_variables(head))))


if __name__ == "__main__":
  tf.test.main()
