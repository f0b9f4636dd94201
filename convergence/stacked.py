"""Lesson 2: the vectorising trick. N networks trained at once, as one.

The experiment needs the blog's network (``network.py``) trained from 1,000
random starts. One at a time, each step is a few small matrix products and
the machine idles between them. Instead, every variable gets a run axis of
length N, network n being slice n of every variable, and ONE step updates
all N networks.

Why that is exact. The networks share the input batch and nothing else. The
step minimises the SUM of the N losses; network n's weights appear only in
its own loss, with weight 1 in the sum, so the gradient of the sum with
respect to them is exactly network n's own gradient. The optimizers of
``tfscratch.optimizers`` update every element independently, so they apply
unchanged to stacked variables: each network takes the step it would take
alone (the tests prove it against ``network.Network``).

The layouts:

  W_1: (P, N, 100)     input axis FIRST; reshaped (no copy) to (P, N*100) the
                       first layer of all N networks is one large matrix
                       product x @ W_1, the bulk of the work. (A leading run
                       axis would need a transposing copy of this, the
                       largest variable, twice per step.)
  b_1, b_2, b_3: (N, 100)
  W_2, W_3: (N, 100, 100)   batched matrix products (N, B, 100) @ (N, 100, 100)
  V_k: (N, 100, 10), c_k: (N, 10)

Blank pixels. A pixel that is 0 in every training image multiplies its row of
W_1 by 0 in every forward pass, so that row's gradient is exactly 0 at every
step, and SGD, Adagrad and Adam all leave it where it started (Adam's moments
stay 0, so its step is 0 too). The stack therefore trains only the rows of
the P "lit" pixels (594 of 784 for the blog's 1,000 images) and keeps the
other rows, untouched, in ``W1_blank`` for the test images, which may light
any pixel. That skips a quarter of the first layer's work and changes nothing
but the order of float additions.

Initial weights. Network ``run`` of a family ``stream`` (one family per
training strategy) starts from ``network.initial_weights`` with the
stateless key fold_in((seed, stream), run): a function of those three
numbers only, whichever stack, process or machine draws it.
"""
import numpy as np
import tensorflow as tf

from convergence import network
from convergence.network import HIDDEN_SIZE
from convergence.network import NUM_LAYERS
from tfscratch import loop
from tfscratch.nn import NUM_PIXELS


@tf.function(input_signature=[tf.TensorSpec([], tf.int64)] * 2 +
             [tf.TensorSpec([], tf.int32)])
def draw_weights(seed, stream, run):
  """Network ``run``'s initial weights (tensors); compiled, as a stack of 25
  draws 150 matrices. (fold_in's result depends on the dtype folded in:
  int32 for ``run``.)"""
  return network.initial_weights(
      tf.random.experimental.stateless_fold_in(tf.stack([seed, stream]), run))


def run_weights(seed, stream, run):
  """The initial weights of one network as NumPy arrays, keyed like
  ``network.weight_shapes()``; see the module docstring."""
  drawn = draw_weights(tf.constant(seed, tf.int64),
                       tf.constant(stream, tf.int64),
                       tf.constant(run, tf.int32))
  return {name: value.numpy() for name, value in drawn.items()}


def stack_weights(per_network):
  """Stacks a list of per-network weight dicts along a new run axis, in the
  layouts of the module docstring: W1 (784, N, 100), the rest (N, ...)."""
  stacked = {name: np.stack([w[name] for w in per_network])
             for name in per_network[0]}
  stacked["W1"] = np.ascontiguousarray(stacked["W1"].transpose(1, 0, 2))
  return stacked


def initial_weights(seed, stream, runs):
  """Stacked initial weights of the networks ``runs`` (an iterable of
  indices) of family ``stream``."""
  return stack_weights([run_weights(seed, stream, run) for run in runs])


def zero_weights(num_networks):
  """Stacked all-zero weights of N networks, a placeholder until
  ``StackedNetworks.assign`` sets real ones."""
  return stack_weights([{name: np.zeros(shape, np.float32) for name, shape
                         in network.weight_shapes().items()}] * num_networks)


def lit_pixels(images):
  """Indices of the pixels that are non-zero in at least one image (n, 784)."""
  return np.flatnonzero(np.any(np.asarray(images) != 0, axis=0))


class StackedNetworks(tf.Module):
  """N independent networks of the blog's shape, as one set of variables.

  Args:
    weights: stacked initial values in the layouts of the module docstring,
      e.g. from ``initial_weights``; "W1" holds all 784 input rows.
    lit: indices of the input pixels the training images light (see
      ``lit_pixels``); only their rows of W1 are trained. None: all 784.
    dtype: of every variable; tf.float64 for the tests' tight comparisons.
  """

  def __init__(self, weights, lit=None, dtype=tf.float32, name=None):
    super().__init__(name=name)
    self.dtype = dtype
    full_w1 = np.asarray(weights["W1"], dtype.as_numpy_dtype)
    if lit is None:
      lit = np.arange(NUM_PIXELS)
    self.lit = np.asarray(lit, np.int64)
    self.blank = np.setdiff1d(np.arange(NUM_PIXELS), self.lit)
    # Test images are fed with their pixels in this order, lit ones first,
    # to meet the rows of concat([W1, W1_blank]).
    self.pixel_order = np.concatenate([self.lit, self.blank])
    self.num_networks = full_w1.shape[1]
    self.W1 = tf.Variable(full_w1[self.lit], name="W1")
    self.W1_blank = tf.Variable(full_w1[self.blank], trainable=False,
                                name="W1_blank")
    self.W = [self.W1] + [
        tf.Variable(weights[f"W{layer}"], dtype=dtype, name=f"W{layer}")
        for layer in range(2, NUM_LAYERS + 1)]
    self.b, self.V, self.c = (
        [tf.Variable(weights[f"{kind}{layer}"], dtype=dtype,
                     name=f"{kind}{layer}")
         for layer in range(1, NUM_LAYERS + 1)]
        for kind in ("b", "V", "c"))

  def assign(self, weights):
    """Sets every variable from stacked ``weights`` (the same N): a new set
    of networks in the same variables, so the compiled steps built for
    this stack are reused without tracing anything anew."""
    full_w1 = np.asarray(weights["W1"], self.dtype.as_numpy_dtype)
    self.W1.assign(full_w1[self.lit])
    self.W1_blank.assign(full_w1[self.blank])
    for layer in range(1, NUM_LAYERS + 1):
      if layer > 1:
        self.W[layer - 1].assign(weights[f"W{layer}"])
      self.b[layer - 1].assign(weights[f"b{layer}"])
      self.V[layer - 1].assign(weights[f"V{layer}"])
      self.c[layer - 1].assign(weights[f"c{layer}"])

  def assign_layers(self, weights, first_layer):
    """Sets layers ``first_layer``..3 and heads ``first_layer``..3 from
    stacked ``weights``, keeping the layers below: the "strategy switch" of
    issue 12 (``train.CONTROL_STRATEGIES``). Layer 1 is never redrawn."""
    if not 2 <= first_layer <= NUM_LAYERS:
      raise ValueError(f"can redraw layers 2..{NUM_LAYERS}, not {first_layer}")
    for layer in range(first_layer, NUM_LAYERS + 1):
      self.W[layer - 1].assign(weights[f"W{layer}"])
      self.b[layer - 1].assign(weights[f"b{layer}"])
      self.V[layer - 1].assign(weights[f"V{layer}"])
      self.c[layer - 1].assign(weights[f"c{layer}"])

  def phase_variables(self, head):
    """What training on head ``head`` moves: layers 1..head and that head
    (the same list as ``network.Network.phase_variables``, stacked)."""
    variables = []
    for layer in range(head):
      variables += [self.W[layer], self.b[layer]]
    return variables + [self.V[head - 1], self.c[head - 1]]

  def _logits(self, x, w1, head):
    """Head ``head``'s logits (N, B, 10) for inputs x (B, rows of w1)."""
    return stacked_logits(x, [w1, *self.W[1:]], self.b, self.V, self.c, head)

  def logits(self, x, head):
    """Head ``head``'s logits (N, B, 10) for a training batch.

    Args:
      x: float32 (B, P): images holding only the lit pixels, in ``lit``
        order (``images[:, stack.lit]``).
    """
    return self._logits(x, self.W1, head)

  def test_logits(self, images, head=NUM_LAYERS):
    """Head ``head``'s logits (N, B, 10) for full images (B, 784).

    The blank pixels' rows of W1 rejoin here: training never moved them, but a
    test image may light those pixels.
    """
    x = tf.gather(images, self.pixel_order, axis=1)
    return self._logits(x, tf.concat([self.W1, self.W1_blank], axis=0), head)

  def losses(self, x, labels, head):
    """Each network's summed cross-entropy on head ``head``: shape (N,).

    Args:
      x: (B, P) lit pixels of a batch; labels: int64 (B,).
    """
    logits = self.logits(x, head)
    labels = tf.broadcast_to(labels, [self.num_networks, tf.shape(labels)[0]])
    return tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=logits), axis=1)

  def network_weights(self, n):
    """Network ``n``'s current weights, as ``network.Network.weights``
    returns them (W1 with all 784 rows)."""
    full_w1 = np.empty((NUM_PIXELS, HIDDEN_SIZE), self.dtype.as_numpy_dtype)
    full_w1[self.lit] = self.W1.numpy()[:, n]
    full_w1[self.blank] = self.W1_blank.numpy()[:, n]
    weights = {"W1": full_w1}
    for layer in range(1, NUM_LAYERS + 1):
      if layer > 1:
        weights[f"W{layer}"] = self.W[layer - 1].numpy()[n]
      weights[f"b{layer}"] = self.b[layer - 1].numpy()[n]
      weights[f"V{layer}"] = self.V[layer - 1].numpy()[n]
      weights[f"c{layer}"] = self.c[layer - 1].numpy()[n]
    return weights


def stacked_logits(x, W, b, V, c, head):
  """Head ``head``'s logits of all N networks at once, shape (N, B, 10).

    z_1 = x @ reshape(W_1, (P, N*100)) + reshape(b_1, (N*100,))   (B, N*100)
    h_1 = transpose(reshape(tanh(z_1), (B, N, 100)), (1, 0, 2))   (N, B, 100)
    h_l = tanh(h_{l-1} @ W_l + b_l[:, None, :])     l = 2..head   (N, B, 100)
    logits = h_head @ V_head + c_head[:, None, :]                 (N, B, 10)

  Slice n of every output is network n's ``network.Network`` output.

  Args:
    x: (B, P) inputs, the rows of W_1 in the same order.
    W: [W_1 (P, N, 100), W_2 (N, 100, 100), W_3 (N, 100, 100)].
    b: [b_1, b_2, b_3], each (N, 100). V: [V_1..V_3], each (N, 100, 10).
    c: [c_1..c_3], each (N, 10). head: 1, 2 or 3.
  """
  num_networks = W[0].shape[1]
  batch = tf.shape(x)[0]
  z1 = (x @ tf.reshape(W[0], [-1, num_networks * HIDDEN_SIZE])
        + tf.reshape(b[0], [-1]))
  # (B, N*100) -> (N, B, 100): the run axis first for the batched products.
  h = tf.transpose(
      tf.reshape(tf.tanh(z1), [batch, num_networks, HIDDEN_SIZE]),
      [1, 0, 2])
  for layer in range(1, head):
    h = tf.tanh(h @ W[layer] + b[layer][:, None, :])
  return h @ V[head - 1] + c[head - 1][:, None, :]


def make_train_steps(stack, head, optimizer, batches):
  """The compiled training loop on head ``head`` for all N networks.

  Args:
    optimizer: built for ``stack.phase_variables(head)``.
    batches: (images (K, B, P) float32, labels (K, B) int64), every distinct
      training batch (``data.batches``), held in the graph as constants;
      step i uses batch i mod K.
  Returns:
    train_steps(first_step, num_steps) -> float32 (num_steps,): takes those
    steps and returns, for each, the mean of the N networks' losses before
    it (``tfscratch.loop.compile_steps``: traced once, K steps per call).
  """
  variables = stack.phase_variables(head)
  images, labels = (tf.constant(array) for array in batches)
  num_batches = images.shape[0]

  def step(i):
    batch = i % num_batches
    with tf.GradientTape() as tape:
      losses = stack.losses(images[batch], labels[batch], head)
      # Network n's weights touch only losses[n], with weight 1 in the sum.
      total = tf.reduce_sum(losses)
    optimizer.apply(tape.gradient(total, variables))
    return tf.reduce_mean(losses)

  return loop.compile_steps(step, loss_dtype=stack.dtype)


def make_correct_counts(stack, head=NUM_LAYERS):
  """A compiled function: (images (B, 784), labels (B,)) -> int32 (N,), how
  many of the B images each network's head ``head`` classifies correctly.
  Traced here, once."""

  @tf.function(input_signature=[
      tf.TensorSpec([None, NUM_PIXELS], tf.float32),
      tf.TensorSpec([None], tf.int64)])
  def correct_counts(images, labels):
    predictions = tf.argmax(stack.test_logits(images, head), axis=-1)
    return tf.reduce_sum(
        tf.cast(tf.equal(predictions, labels[None, :]), tf.int32), axis=1)

  correct_counts.get_concrete_function()
  return correct_counts


def make_loss_sums(stack, head=NUM_LAYERS):
  """A compiled function: (images (B, 784), labels (B,)) -> float32 (N,),
  each network's head-``head`` cross-entropy summed over the B images.
  Traced here, once."""

  @tf.function(input_signature=[
      tf.TensorSpec([None, NUM_PIXELS], tf.float32),
      tf.TensorSpec([None], tf.int64)])
  def loss_sums(images, labels):
    logits = stack.test_logits(images, head)
    labels = tf.broadcast_to(labels, tf.shape(logits)[:2])
    return tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=logits), axis=1)

  loss_sums.get_concrete_function()
  return loss_sums


def mean_losses(loss_sums, images, labels, block=1000):
  """Each network's cross-entropy per image on (images, labels), summed in
  float64 over blocks of ``block`` images. Returns float64 (N,)."""
  total = 0.0
  for start in range(0, len(labels), block):
    total += loss_sums(images[start:start + block],
                       labels[start:start + block]).numpy().astype(np.float64)
  return total / len(labels)


def accuracies(correct_counts, images, labels, block=1000):
  """Each network's accuracy on (images, labels), fed ``block`` at a time so
  the first layer's (block, N*100) output stays small. Returns float64 (N,)."""
  correct = 0
  for start in range(0, len(labels), block):
    correct += correct_counts(images[start:start + block],
                              labels[start:start + block]).numpy()
  return correct / len(labels)
