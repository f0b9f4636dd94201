"""N independent copies of the blog's network, trained side by side.

One network (the blog's), for a batch x of B flattened images:

  h_1 = tanh(x W_1 + b_1)          x: (B, 784)    W_1: (784, 100)
  h_2 = tanh(h_1 W_2 + b_2)        W_2, W_3: (100, 100)
  h_3 = tanh(h_2 W_3 + b_3)        b_l: (100,)
  logits_k = h_k V_k + c_k         V_k: (100, 10), c_k: (10,); one softmax head
                                   on each hidden layer, k = 1, 2, 3
  loss_k = sum over the batch of -log softmax(logits_k)[label]

Weights start truncated normal (stddev 0.1, redrawn beyond 2 stddev) and every
bias at 0.1. Training "on head k" means SGD (or another optimizer) on loss_k,
which moves layers 1..k and head k and nothing else.

Stacking. N networks are trained at once by giving every variable a run axis
of length N; network n is slice n of every variable. The networks share the
input batch and nothing else, so the sum of their N losses has, for network
n's weights, exactly network n's own gradient: each network takes the step it
would take alone. The layouts:

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
stay 0, so its step is 0 too). The model therefore trains only the rows of
the P "lit" pixels (594 of 784 for the blog's 1,000 images) and keeps the
other rows, untouched, in ``W1_blank`` for the test images, which may light
any pixel. That skips a quarter of the first layer's work and changes nothing
but the order of float additions.
"""
import numpy as np
import tensorflow as tf

from tfscratch.nn import truncated_normal

INPUT_SIZE = 784
HIDDEN_SIZE = 100
NUM_CLASSES = 10
NUM_LAYERS = 3
WEIGHT_STDDEV = 0.1
BIAS_INIT = 0.1
# The six randomly drawn matrices of one network, in the order their seeds
# are derived.
WEIGHT_NAMES = ("W1", "W2", "W3", "V1", "V2", "V3")


def weight_shapes():
  """name -> shape of one network's variable (W1 with all 784 inputs)."""
  shapes = {}
  sizes = [INPUT_SIZE] + [HIDDEN_SIZE] * NUM_LAYERS
  for layer in range(1, NUM_LAYERS + 1):
    shapes[f"W{layer}"] = (sizes[layer - 1], HIDDEN_SIZE)
    shapes[f"b{layer}"] = (HIDDEN_SIZE,)
    shapes[f"V{layer}"] = (HIDDEN_SIZE, NUM_CLASSES)
    shapes[f"c{layer}"] = (NUM_CLASSES,)
  return shapes


@tf.function(input_signature=[tf.TensorSpec([], tf.int64)] * 2 +
             [tf.TensorSpec([], tf.int32)])
def _draw_weights(seed, stream, run):
  """The six random matrices of one network (see ``run_weights``); compiled,
  as a chunk draws 300 of them. (fold_in's result depends on the dtype of
  what is folded in; int32 for ``run`` and the matrix index.)"""
  key = tf.random.experimental.stateless_fold_in(tf.stack([seed, stream]),
                                                 run)
  shapes = weight_shapes()
  return {name: truncated_normal(
      shapes[name], WEIGHT_STDDEV,
      tf.random.experimental.stateless_fold_in(key, index))
          for index, name in enumerate(WEIGHT_NAMES)}


def run_weights(seed, stream, run):
  """The initial weights of one network, a function of (seed, stream, run) only.

  Each matrix gets its own stateless seed, folded from the three numbers, so a
  run's weights are the same whichever process, shard or chunk draws them and
  whatever was drawn before.

  Args:
    seed: the experiment's seed (--seed).
    stream: which family of runs (one per training strategy), so that run 7
      of one strategy does not start from run 7 of another.
    run: the run's index within its stream.
  Returns:
    dict name -> float32 array of weight_shapes()[name].
  """
  drawn = _draw_weights(tf.constant(seed, tf.int64),
                        tf.constant(stream, tf.int64),
                        tf.constant(run, tf.int32))
  return {name: (drawn[name].numpy() if name in WEIGHT_NAMES
                 else np.full(shape, BIAS_INIT, np.float32))
          for name, shape in weight_shapes().items()}


def stack_weights(per_run):
  """Stacks a list of run_weights() dicts along a new run axis.

  Returns the layouts the StackedNetworks docstring gives: W1 (784, N, 100),
  everything else (N, ...).
  """
  stacked = {name: np.stack([w[name] for w in per_run])
             for name in per_run[0]}
  stacked["W1"] = np.ascontiguousarray(stacked["W1"].transpose(1, 0, 2))
  return stacked


def initial_weights(seed, stream, runs):
  """Stacked initial weights of the runs ``runs`` (an iterable of indices)."""
  return stack_weights([run_weights(seed, stream, run) for run in runs])


def zero_weights(num_networks):
  """Stacked all-zero weights of N networks, in initial_weights() layouts:
  a placeholder until ``StackedNetworks.assign`` sets real ones."""
  weights = {name: np.zeros((num_networks,) + shape, np.float32)
             for name, shape in weight_shapes().items()}
  weights["W1"] = np.zeros((INPUT_SIZE, num_networks, HIDDEN_SIZE),
                           np.float32)
  return weights


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
  """

  def __init__(self, weights, lit=None, name=None):
    super().__init__(name=name)
    full_w1 = np.asarray(weights["W1"], np.float32)
    if lit is None:
      lit = np.arange(INPUT_SIZE)
    self.lit = np.asarray(lit, np.int64)
    self.blank = np.setdiff1d(np.arange(INPUT_SIZE), self.lit)
    # Test images are fed with their pixels in this order, lit ones first,
    # to meet the rows of concat([W1, W1_blank]).
    self.pixel_order = np.concatenate([self.lit, self.blank])
    self.num_runs = full_w1.shape[1]
    self.W1 = tf.Variable(full_w1[self.lit], name="W1")
    self.W1_blank = tf.Variable(full_w1[self.blank], trainable=False,
                                name="W1_blank")
    self.W = [self.W1] + [
        tf.Variable(weights[f"W{layer}"], dtype=tf.float32, name=f"W{layer}")
        for layer in range(2, NUM_LAYERS + 1)]
    self.b = [tf.Variable(weights[f"b{layer}"], dtype=tf.float32,
                          name=f"b{layer}")
              for layer in range(1, NUM_LAYERS + 1)]
    self.V = [tf.Variable(weights[f"V{head}"], dtype=tf.float32,
                          name=f"V{head}")
              for head in range(1, NUM_LAYERS + 1)]
    self.c = [tf.Variable(weights[f"c{head}"], dtype=tf.float32,
                          name=f"c{head}")
              for head in range(1, NUM_LAYERS + 1)]

  def assign(self, weights):
    """Sets every variable from stacked ``weights`` (initial_weights()
    layouts, the same N): a new set of networks in the same variables, so
    compiled steps built for this model are reused."""
    full_w1 = np.asarray(weights["W1"], np.float32)
    self.W1.assign(full_w1[self.lit])
    self.W1_blank.assign(full_w1[self.blank])
    for layer in range(1, NUM_LAYERS + 1):
      if layer > 1:
        self.W[layer - 1].assign(weights[f"W{layer}"])
      self.b[layer - 1].assign(weights[f"b{layer}"])
      self.V[layer - 1].assign(weights[f"V{layer}"])
      self.c[layer - 1].assign(weights[f"c{layer}"])

  @property
  def num_lit(self):
    """P, the number of input pixels a training batch must hold."""
    return len(self.lit)

  def phase_variables(self, head):
    """What training on head ``head`` moves: layers 1..head and that head."""
    variables = []
    for layer in range(head):
      variables += [self.W[layer], self.b[layer]]
    return variables + [self.V[head - 1], self.c[head - 1]]

  def _hidden(self, x, w1, depth):
    """h_1..h_depth for inputs x (B, rows of w1); each (N, B, 100)."""
    batch = tf.shape(x)[0]
    z1 = (x @ tf.reshape(w1, [-1, self.num_runs * HIDDEN_SIZE])
          + tf.reshape(self.b[0], [-1]))
    # (B, N*100) -> (N, B, 100): the run axis first for the batched products.
    h = tf.transpose(
        tf.reshape(tf.tanh(z1), [batch, self.num_runs, HIDDEN_SIZE]),
        [1, 0, 2])
    hidden = [h]
    for layer in range(1, depth):
      h = tf.tanh(h @ self.W[layer] + self.b[layer][:, None, :])
      hidden.append(h)
    return hidden

  def logits(self, x, head):
    """Head ``head``'s logits (N, B, 10) for a training batch.

    Args:
      x: float32 (B, P): images holding only the lit pixels, in ``lit``
        order (``images[:, model.lit]``).
    """
    h = self._hidden(x, self.W1, head)[-1]
    return h @ self.V[head - 1] + self.c[head - 1][:, None, :]

  def test_logits(self, images, head=NUM_LAYERS):
    """Head ``head``'s logits (N, B, 10) for full images (B, 784).

    The blank pixels' rows of W1 rejoin here: training never moved them, but a
    test image may light those pixels.
    """
    x = tf.gather(images, self.pixel_order, axis=1)
    w1 = tf.concat([self.W1, self.W1_blank], axis=0)
    h = self._hidden(x, w1, head)[-1]
    return h @ self.V[head - 1] + self.c[head - 1][:, None, :]

  def losses(self, x, labels, head):
    """Each network's summed cross-entropy on head ``head``: shape (N,).

    Args:
      x: (B, P) lit pixels of a batch; labels: int64 (B,).
    """
    logits = self.logits(x, head)
    labels = tf.broadcast_to(labels, [self.num_runs, tf.shape(labels)[0]])
    return tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=logits), axis=1)

  def run_weights(self, run):
    """Network ``run``'s current weights as run_weights() returns them."""
    full_w1 = np.empty((INPUT_SIZE, HIDDEN_SIZE), np.float32)
    full_w1[self.lit] = self.W1.numpy()[:, run]
    full_w1[self.blank] = self.W1_blank.numpy()[:, run]
    weights = {"W1": full_w1}
    for layer in range(1, NUM_LAYERS + 1):
      if layer > 1:
        weights[f"W{layer}"] = self.W[layer - 1].numpy()[run]
      weights[f"b{layer}"] = self.b[layer - 1].numpy()[run]
      weights[f"V{layer}"] = self.V[layer - 1].numpy()[run]
      weights[f"c{layer}"] = self.c[layer - 1].numpy()[run]
    return weights


def make_train_steps(model, head, optimizer, batches):
  """The compiled training loop on head ``head`` for all N networks.

  Args:
    optimizer: built for ``model.phase_variables(head)`` (tfscratch
      optimizers, or anything with ``apply(gradients)`` in that order). Its
      updates are elementwise, so on stacked variables it updates every
      network exactly as it would update that network alone.
    batches: (images (K, B, P) float32, labels (K, B) int64), every distinct
      training batch (``data.batches``); step i uses batch i mod K.
  Returns:
    train_steps(first_step, num_steps) -> float32 (num_steps,): takes steps
    first_step .. first_step + num_steps - 1 and returns, for each, the mean
    of the N networks' losses before it. Fixed input signature: traced
    once, reused for every call.

  The steps run in a ``tf.while_loop`` inside one call, so Python does not
  stand between one step and the next: a step is a few milliseconds of work
  in some 80 ops, and a return to Python after each one leaves the core idle
  for a good part of that.
  """
  variables = model.phase_variables(head)
  images, labels = (tf.constant(array) for array in batches)
  num_batches = images.shape[0]

  def train_step(x, y):
    with tf.GradientTape() as tape:
      losses = model.losses(x, y, head)
      # Network n's weights touch only losses[n], with weight 1 in the sum.
      total = tf.reduce_sum(losses)
    optimizer.apply(tape.gradient(total, variables))
    return tf.reduce_mean(losses)

  @tf.function(input_signature=[tf.TensorSpec([], tf.int32),
                                tf.TensorSpec([], tf.int32)])
  def train_steps(first_step, num_steps):
    mean_losses = tf.TensorArray(tf.float32, size=num_steps)
    for k in tf.range(num_steps):
      batch = (first_step + k) % num_batches
      mean_losses = mean_losses.write(k, train_step(images[batch],
                                                    labels[batch]))
    return mean_losses.stack()

  # Traced now rather than at the first call: the first block of steps
  # costs no more than the others, and the progress lines' rates stay true.
  train_steps.get_concrete_function()
  return train_steps


def make_correct_counts(model, head=NUM_LAYERS):
  """A compiled function: (images (B, 784), labels (B,)) -> int32 (N,), how
  many of the B images each network's head ``head`` classifies correctly."""

  @tf.function(input_signature=[
      tf.TensorSpec([None, INPUT_SIZE], tf.float32),
      tf.TensorSpec([None], tf.int64)])
  def correct_counts(images, labels):
    predictions = tf.argmax(model.test_logits(images, head), axis=-1)
    return tf.reduce_sum(
        tf.cast(tf.equal(predictions, labels[None, :]), tf.int32), axis=1)

  correct_counts.get_concrete_function()  # traced now, as make_train_steps
  return correct_counts


def accuracies(correct_counts, images, labels, block=1000):
  """Each network's accuracy on (images, labels), fed ``block`` at a time so
  the first layer's (block, N*100) output stays small. Returns float64 (N,)."""
  correct = 0
  for start in range(0, len(labels), block):
    correct += correct_counts(images[start:start + block],
                              labels[start:start + block]).numpy()
  return correct / len(labels)
