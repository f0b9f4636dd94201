"""Every setting the posts specify, pinned: a refactor cannot drift from a post
unnoticed.

One class per post. Each assertion quotes the post's line it pins (the posts'
markdown sources in github.com/spitis/r2rt-pelican, content/; the 2016
originals. The RNN post is not among them: its lines are quoted from its
published code). Three kinds of pin, all cheap (no subprocess, no MNIST, no
training beyond 80 windows of the RNN at learning rate 0):

* the package's defaults: the frozen ``Config`` of ``train.py`` and the flag
  defaults of ``python -m <package>``, read in-process (``flag_defaults``);
  and the ``make reproduce-*`` commands, read from the Makefile;
* behaviour at the boundaries a post sets: the learning rate just before and
  at the step it drops, the batch a step trains on where the walk wraps, the
  steps at which the test set is evaluated;
* initialisers and formulas against hand computations: bounds and moments of
  large draws, a batch-norm output or a loss worked out on paper.

Not pinned here: the data split and batch order of ``batchnorm_manual`` and
``inversion`` (their own tests pin them, with the post versions they follow).
"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import ast
import dataclasses
import functools
import importlib.util
import inspect
import itertools
import os
import re
import shlex
import types

from absl import flags
import numpy as np
import tensorflow as tf

from batchnorm_manual import batchnorm as bn_lib
from batchnorm_manual import model as bn_model
from batchnorm_manual import train as bn_train
from convergence import data as fcb_data
from convergence import network as fcb_network
from convergence import stacked as fcb_stacked
from convergence import train as fcb_train
from inversion import model as inv_model
from inversion import train as inv_train
from mnist_probes import model as probes_model
from mnist_probes import train as probes_train
from rnn_scratch import data as rnn_data
from rnn_scratch import model as rnn_model
from rnn_scratch import train as rnn_train
from tfscratch import loop
from tfscratch.lab.mnist import Mnist, Split

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# TF1's tf.truncated_normal(stddev=s) redraws beyond 2s: its standard deviation
# is s * sqrt(1 - 2*2*phi(2) / (2*Phi(2) - 1)) = 0.8796 s.
TRUNCATED_SD_RATIO = 0.87962


# ---------------------------------------------------------------------------
# Reading the programs' defaults without running them.
# ---------------------------------------------------------------------------


class _FlagsInto(types.ModuleType):
  """``absl.flags`` with every definition going into ``flag_values`` (a
  private FlagValues) instead of the process-wide FLAGS, which other test
  modules fill with their program's flags of the same names."""

  def __init__(self, flag_values):
    super().__init__("flags")
    self.FLAGS = flag_values

  def __getattr__(self, name):
    value = getattr(flags, name)
    if callable(value) and not isinstance(value, type):
      try:
        takes = "flag_values" in inspect.signature(value).parameters
      except (TypeError, ValueError):
        takes = False
      if takes:
        return functools.partial(value, flag_values=self.FLAGS)
    return value


def _run_source(module_name, **names):
  """Runs the source of ``module_name`` as a fresh module in which the
  imports of ``names`` (``from absl import flags``, ``from tfscratch.lab
  import cli``) are replaced by the given objects. Its ``__main__`` block does
  not run (the module's name is not "__main__")."""
  path = importlib.util.find_spec(module_name).origin
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read(), path)

  class DropImports(ast.NodeTransformer):

    def visit_ImportFrom(self, node):
      node.names = [alias for alias in node.names
                    if (alias.asname or alias.name) not in names]
      return node if node.names else None

  tree = ast.fix_missing_locations(DropImports().visit(tree))
  module = types.ModuleType(f"_settings_of_{module_name}")
  module.__dict__.update(names, __file__=path)
  exec(compile(tree, path, "exec"), module.__dict__)  # pylint: disable=exec-used
  return module


@functools.lru_cache(maxsize=None)
def flag_defaults(module_name):
  """{flag name: default} of ``python -m <module_name>``."""
  if importlib.util.find_spec(module_name).submodule_search_locations:
    module_name += ".__main__"  # a package runs its __main__
  values = flags.FlagValues()
  shim = _FlagsInto(values)
  cli = _run_source("tfscratch.lab.cli", flags=shim)
  _run_source(module_name, flags=shim, cli=cli)
  defaults = {name: values[name].default for name in values}
  assert "seed" in defaults, f"{module_name} defined no run flags"
  return defaults


@functools.lru_cache(maxsize=None)
def makefile_commands():
  """{target: [(module, {flag: value})]} of the Makefile's recipes that run
  ``$(PY) -m <module>``."""
  with open(os.path.join(REPO, "Makefile"), encoding="utf-8") as f:
    text = f.read().replace("\\\n", " ")  # join continued lines
  commands, target = {}, None
  for line in text.splitlines():
    match = re.match(r"^([\w-]+):", line)
    if match:
      target = match.group(1)
      continue
    match = re.match(r"^\t\$\(PY\) -m (\S+)(.*)$", line)
    if match and target:
      values = {}
      words = shlex.split(match.group(2))
      for index, word in enumerate(words):
        if not word.startswith("--"):
          continue  # the value of the flag before it
        name, equals, value = word[2:].partition("=")
        following = words[index + 1] if index + 1 < len(words) else "--"
        if not equals:
          value = True if following.startswith("--") else following
        values[name] = value
      commands.setdefault(target, []).append((match.group(1), values))
  return commands


# Flags that say where a run goes, not what it computes.
_OUTPUT_FLAGS = {"output_dir", "overwrite", "figures_dir", "data_dir"}


class _SettingsTest(tf.test.TestCase):
  # Settings the program must have a flag for (the rest may be Config only).
  flags_of_the_post = {"steps", "batch_size", "learning_rate", "epochs",
                       "bptt_steps", "state_size", "eval_every"}

  def assert_defaults(self, config, module_name, expected):
    """Config and the program's flags both default to ``expected``."""
    defaults = flag_defaults(module_name)
    for name, value in expected.items():
      self.assertEqual(getattr(config, name), value, f"Config.{name}")
      if name in defaults or name in self.flags_of_the_post:
        flag = defaults[name]
        if isinstance(value, tuple):
          flag = tuple(type(value[0])(v) for v in flag)
        self.assertEqual(flag, value, f"--{name} of {module_name}")

  def assert_truncated_normal(self, weights, stddev):
    """A large draw of the blog's weight_variable: N(0, stddev^2) redrawn
    beyond 2 stddev."""
    weights = np.ravel(weights)
    self.assertGreater(weights.size, 20_000)
    self.assertLessEqual(np.abs(weights).max(), 2 * stddev)
    self.assertGreater(np.abs(weights).max(), 1.98 * stddev)  # reaches 2 sd
    self.assertNear(weights.mean(), 0.0, 5 * stddev / np.sqrt(weights.size))
    self.assertNear(weights.std(), TRUNCATED_SD_RATIO * stddev,
                    0.01 * stddev)


# ---------------------------------------------------------------------------
# Recurrent Neural Networks in Tensorflow I (R2RT, 2016) -> rnn_scratch
# ---------------------------------------------------------------------------


class RnnPostTest(_SettingsTest):

  def test_global_config_variables(self):
    self.assert_defaults(rnn_train.Config(), "rnn_scratch", {
        "bptt_steps": 5,            # post: "num_steps = 5"
        "batch_size": 200,          # post: "batch_size = 200"
        "state_size": 4,            # post: "state_size = 4"
        "learning_rate": 0.1,       # post: "learning_rate = 0.1"
        # post: "tf.train.AdagradOptimizer(learning_rate)"
        "optimizer": "adagrad",
        "series_length": 1_000_000,  # post: "def gen_data(size=1000000)"
        # post: "training_losses = train_network(1,num_steps)"
        "epochs": 1,
        # post: "if step % 100 == 0 and step > 0:" (the mean of 100 windows)
        "log_every": 100,
    })
    self.assertEqual(rnn_train.FINAL_LOSS_WINDOWS, 100)
    self.assertEqual(rnn_model.NUM_CLASSES, 2)  # post: "num_classes = 2"

  def test_the_three_learning_curves_in_make_reproduce(self):
    """post: train_network(1, num_steps) with num_steps=5;
    plot_learning_curve(num_steps=1, state_size=4, epochs=2);
    plot_learning_curve(num_steps=10, state_size=16, epochs=10)."""
    runs = makefile_commands()["reproduce-rnn"]
    self.assertEqual({module for module, _ in runs}, {"rnn_scratch"})
    settings = sorted(
        (int(values["bptt_steps"]), int(values["state_size"]),
         int(values["epochs"]),
         set(values) - _OUTPUT_FLAGS - {"bptt_steps", "state_size", "epochs"})
        for _, values in runs)
    self.assertEqual(settings, [(1, 4, 2, set()), (5, 4, 1, set()),
                                (10, 16, 10, set())])

  def test_echo_probabilities(self):
    """post: threshold = 0.5; if X[i-3] == 1: threshold += 0.5;
    if X[i-8] == 1: threshold -= 0.25; Y = 1 with probability threshold."""
    x = np.zeros(20, np.int64)
    x[[0, 5]] = 1  # 3 and 8 steps before step 8: both echoes at once
    p = rnn_data.probability_of_one(x)
    expected = np.full(20, 0.5)
    expected[[3, 8]] += 0.5        # X[i-3] == 1
    expected[[8, 13]] -= 0.25      # X[i-8] == 1
    self.assertAllClose(p, expected, atol=0, rtol=0)
    # post: "X = np.array(np.random.choice(2, size=(size,)))": fair coins.
    x, y = rnn_data.generate_series(200_000, np.random.default_rng(0))
    self.assertNear(x.mean(), 0.5, 0.005)
    self.assertNear(y.mean(), 0.625, 0.005)  # 0.5 + 0.5/2 - 0.25/2
    # The analytic losses the post states: "about 0.66", "0.52", "0.45".
    losses = rnn_data.expected_losses()
    self.assertNear(losses["no_dependency"], 0.6616, 1e-4)
    self.assertNear(losses["first_dependency"], 0.5192, 1e-4)
    self.assertNear(losses["both_dependencies"], 0.4544, 1e-4)

  def test_windows_are_gen_batch(self):
    """post: batch_partition_length = data_length // batch_size;
    data_x[i] = raw_x[batch_partition_length * i:batch_partition_length * (i + 1)];
    epoch_size = batch_partition_length // num_steps;
    x = data_x[:, i * num_steps:(i + 1) * num_steps]."""
    series = np.arange(1003)  # 3 left over: dropped
    x_windows, y_windows = rnn_data.windows(series, series + 5000,
                                            batch_size=10, bptt_steps=7)
    partition = 1003 // 10
    self.assertEqual(x_windows.shape, (partition // 7, 10, 7))
    self.assertEqual(rnn_data.windows_per_epoch(1003, 10, 7), partition // 7)
    for i in (0, 1, partition // 7 - 1):
      for row in (0, 9):
        start = partition * row + i * 7
        self.assertAllEqual(x_windows[i, row], series[start:start + 7])
        self.assertAllEqual(y_windows[i, row], series[start:start + 7] + 5000)
    # The post's default: 1,000,000 / 200 / 5 = 1,000 windows per epoch.
    self.assertEqual(rnn_data.windows_per_epoch(1_000_000, 200, 5), 1000)

  def test_glorot_cell_and_zero_biases(self):
    """post: W = tf.get_variable('W', [num_classes + state_size, state_size])
    (get_variable's default: Glorot uniform over that one matrix);
    b = tf.get_variable('b', [state_size],
    initializer=tf.constant_initializer(0.0)); the same for the readout's
    W [state_size, num_classes] and b."""
    state_size = 200  # large enough for the draws to reach their bounds
    rnn = rnn_model.EchoRNN(state_size, seed=3)
    cell = np.concatenate([rnn.W.numpy(), rnn.U.numpy()])
    self.assertEqual(cell.shape, (2 + state_size, state_size))
    for weights, fan_in, fan_out in ((cell, 2 + state_size, state_size),
                                     (rnn.V.numpy(), state_size, 2)):
      limit = np.sqrt(6.0 / (fan_in + fan_out))
      self.assertLessEqual(np.abs(weights).max(), limit)
      self.assertGreater(np.abs(weights).max(), 0.98 * limit)
      self.assertNear(weights.var(), limit ** 2 / 3, 0.05 * limit ** 2 / 3)
    self.assertAllEqual(rnn.b, np.zeros(state_size))
    self.assertAllEqual(rnn.c, np.zeros(2))
    self.assertAllEqual(rnn.initial_state(3), np.zeros((3, state_size)))

  def test_each_epoch_a_fresh_series_from_a_zero_state(self):
    """post: for idx, epoch in enumerate(gen_epochs(num_epochs, num_steps)):
    training_state = np.zeros((batch_size, state_size)) (gen_epochs calls
    gen_data() once per epoch). With a zero learning rate the weights stay
    as drawn, so the loss of each epoch's first window is worked out here:
    that epoch's own series, from s_0 = 0."""
    config = rnn_train.Config(series_length=2000, batch_size=10, epochs=2,
                              learning_rate=0.0, optimizer="sgd", seed=4)
    result = rnn_train.train(config)
    per_epoch = result.windows_per_epoch
    self.assertEqual(per_epoch, 2000 // 10 // 5)
    rng = np.random.default_rng(4)
    for epoch in range(2):
      x, y = rnn_data.generate_series(2000, rng)
      x_windows, y_windows = rnn_data.windows(x, y, 10, 5)
      w = [v.numpy().astype(np.float64) for v in result.model.weights]
      state, loss = np.zeros((10, 4)), 0.0
      for t in range(5):
        state = np.tanh(np.eye(2)[x_windows[0][:, t]] @ w[0] + state @ w[1] +
                        w[2])
        logits = state @ w[3] + w[4]
        log_softmax = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        loss -= log_softmax[np.arange(10), y_windows[0][:, t]].mean() / 5
      self.assertNear(result.losses[epoch * per_epoch], loss, 1e-5)

  def test_adagrad_as_tf1_built_it(self):
    """post: tf.train.AdagradOptimizer(learning_rate): TF1's initial
    accumulator is 0.1."""
    model, optimizer = rnn_train.build_model(rnn_train.Config(state_size=3))
    self.assertIsInstance(optimizer, rnn_train.optimizers.Adagrad)
    self.assertAllClose(optimizer.learning_rate, 0.1, rtol=1e-7, atol=0)
    self.assertLen(optimizer.accumulators, len(model.weights))
    for accumulator in optimizer.accumulators:
      self.assertAllClose(accumulator, np.full(accumulator.shape, 0.1))


# ---------------------------------------------------------------------------
# Implementing Batch Normalization in Tensorflow (R2RT, 2016 original)
#   -> batchnorm_manual
# ---------------------------------------------------------------------------


class BatchNormPostTest(_SettingsTest):

  def test_training_settings(self):
    self.assert_defaults(bn_train.Config(), "batchnorm_manual", {
        "steps": 10_000,        # post: "for i in range(10000):"
        "batch_size": 60,       # post: "batch = mnist.train.next_batch(60)"
        # post: "tf.train.GradientDescentOptimizer(0.01)"
        "learning_rate": 0.01,
        "epsilon": 1e-3,        # post: "epsilon = 1e-3"
        "eval_every": 50,       # post: "if i % 50 is 0:"
    })
    self.assertEqual(bn_model.LAYER_SIZES, (784, 100, 100, 100, 10))
    # The 2016 original's own run is the default one: no flag changes it.
    runs = makefile_commands()["reproduce-batchnorm"]
    self.assertIn(("batchnorm_manual", set()),
                  [(module, set(values) - _OUTPUT_FLAGS)
                   for module, values in runs])

  def test_evaluated_every_50_steps(self):
    """post: "if i % 50 is 0:" records the test accuracy. ``train`` on a
    stand-in learner (no net): it evaluates at 0, 50, ..., 10,000."""
    config = bn_train.Config()
    trained = []
    variable = tf.Variable([0.0])
    learner = bn_train.Learner(
        net=types.SimpleNamespace(variables=[variable]),
        optimizer=bn_train.SGD([variable], 0.01), initial_values=[[0.0]],
        train_steps=lambda first, k: trained.append((first, k)) or tf.zeros(
            [k]),
        evaluate=lambda: (0.5, tf.zeros([1, 1])), evaluate_as_one_batch=None,
        predict_one_at_a_time={})
    curve = bn_train.train(config, learner, config.learning_rate)
    self.assertEqual(curve.steps, list(range(0, 10_001, 50)))
    self.assertEqual(sum(k for _, k in trained), 10_000)
    self.assertEqual(trained[:2], [(0, 50), (50, 50)])

  def test_weights_are_standard_normal_and_biases_zero(self):
    """post: w1_initial = np.random.normal(size=(784,100)) (and 100x100,
    100x100, 100x10); b1 = tf.Variable(tf.zeros([100])); "pre-batch
    normalization bias is ommitted"; scale1 = tf.Variable(tf.ones([100]));
    beta1 = tf.Variable(tf.zeros([100]))."""
    weights = bn_model.initial_weights(seed=5)
    self.assertEqual([tuple(w.shape) for w in weights],
                     [(784, 100), (100, 100), (100, 100), (100, 10)])
    first = weights[0].numpy().ravel()
    self.assertNear(first.mean(), 0.0, 0.02)
    self.assertNear(first.std(), 1.0, 0.01)
    self.assertGreater(np.abs(first).max(), 3.5)  # not truncated
    plain = bn_model.PlainNet(weights)
    batchnorm = bn_model.BatchNormNet(weights)
    for net in (plain, batchnorm):
      # Both nets start from the same draw ("similarly initialized").
      matrices = [v for v in net.weights if len(v.shape) == 2]
      self.assertLen(matrices, 4)
      for variable, initial in zip(matrices, weights):
        self.assertAllEqual(variable, initial)
    self.assertAllEqual(
        [tuple(v.shape) for v in plain.weights if len(v.shape) == 1],
        [(100,), (100,), (100,), (10,)])
    for variable in plain.weights:
      if len(variable.shape) == 1:
        self.assertAllEqual(variable, np.zeros(variable.shape))
    # The BN net: W_1..W_3 have no bias; gamma = 1, beta = 0; W_4 has b_4 = 0.
    vectors = [(v.name.split(":")[0], v.numpy()) for v in batchnorm.weights
               if len(v.shape) == 1]
    self.assertEqual(sorted(name for name, _ in vectors),
                     ["b", "beta", "beta", "beta", "gamma", "gamma", "gamma"])
    for name, value in vectors:
      self.assertAllEqual(value, np.ones_like(value) if name == "gamma"
                          else np.zeros_like(value))

  def test_the_batch_normalizing_transform(self):
    """post: z1_hat = (z1_BN - batch_mean1) / tf.sqrt(batch_var1 + epsilon);
    BN1 = scale1 * z1_hat + beta1, with tf.nn.moments' (biased) variance.
    Worked by hand for x = (0, 2): mean 1, variance 1; a large epsilon
    (0.5) so that epsilon outside the root would show."""
    layer = bn_lib.BatchNorm(1, epsilon=0.5)
    layer.gamma.assign([3.0])
    layer.beta.assign([-1.0])
    y, (mean, variance) = layer(tf.constant([[0.0], [2.0]]), training=True)
    self.assertAllClose(mean, [1.0])
    self.assertAllClose(variance, [1.0])  # biased: divided by 2, not 1
    self.assertAllClose(y, [[3.0 * -1.0 / np.sqrt(1.5) - 1.0],
                            [3.0 * 1.0 / np.sqrt(1.5) - 1.0]], atol=1e-6)
    self.assertEqual(bn_lib.BatchNorm(1).epsilon, 1e-3)

  def test_moving_averages_keep_99_percent_of_the_old_value(self):
    """Not in the 2016 original (it normalised the test set as one batch):
    inference uses moving averages with Keras' momentum 0.99."""
    self.assertEqual(bn_train.Config().momentum, 0.99)
    layer = bn_lib.BatchNorm(2)
    layer.update_moving_statistics(tf.constant([10.0, -10.0]),
                                   tf.constant([3.0, 5.0]))
    self.assertAllClose(layer.moving_mean, [0.1, -0.1])
    self.assertAllClose(layer.moving_variance, [0.99 + 0.03, 0.99 + 0.05])

  def test_loss_is_summed_cross_entropy(self):
    """post: cross_entropy = -tf.reduce_sum(y_*tf.log(y)): summed over the
    batch, not averaged."""
    weights = bn_model.initial_weights(seed=1)
    images = np.random.default_rng(0).uniform(size=(3, 784)).astype(
        np.float32)
    labels = np.array([0, 4, 9])
    net = bn_model.PlainNet(weights)
    logits = net(images).numpy().astype(np.float64)
    log_softmax = logits - np.log(np.exp(logits - logits.max(1, keepdims=True))
                                  .sum(1, keepdims=True)) - logits.max(
                                      1, keepdims=True)
    loss = bn_train.sgd_step(net, bn_train.SGD(net.weights, 0.0), images,
                             labels)
    self.assertAllClose(loss, -log_softmax[np.arange(3), labels].sum(),
                        rtol=1e-5)


# ---------------------------------------------------------------------------
# Representational Power of Deeper Layers (R2RT, 2016) -> mnist_probes
# ---------------------------------------------------------------------------


class ProbesPostTest(_SettingsTest):

  def test_training_and_probe_settings(self):
    self.assert_defaults(probes_train.Config(), "mnist_probes", {
        "steps": 10_000,        # post: "for i in range(10000):"
        "batch_size": 50,       # post: "start = (50*i) % 54950"
        # post: "tf.train.GradientDescentOptimizer(0.01)"
        "learning_rate": 0.01,
        "eval_every": 100,      # post: "if i % 100 == 0:"
        # post: "mnist.train.images[:1000]", "mnist.test.images[:1000]"
        "probe_train_size": 1000,
        "probe_test_size": 1000,
        "probe_c": 1.0,         # post: "LogisticRegression()": C = 1
        # post: "new_feature_loss = 1e-1*tf.reduce_sum(tf.abs(...))"
        "aux_weight": 0.1,
        # post: "y_new_train = pca.transform(l3_train)[:,:3]"
        "aux_components": 3,
    })
    # post: "mnist = load_mnist.read_data_sets(...)": TF1's split.
    self.assertEqual(flag_defaults("mnist_probes")["split"], "blog")
    self.assertEqual(probes_model.LAYER_SIZES, (784, 100, 100, 100, 10))
    # post: "plot(range(4))": the PCA plots show the digits 0-3.
    self.assertEqual(probes_train.PCA_DIGITS, (0, 1, 2, 3))
    runs = makefile_commands()["reproduce-probes"]
    self.assertEqual([(module, set(values) - _OUTPUT_FLAGS)
                      for module, values in runs], [("mnist_probes", set())])

  def test_walk_wraps_at_54950(self):
    """post: start = (50*i) % 54950; end = start + 50: step 1,099 is back
    at image 0, and images 54,950..54,999 are never trained on."""
    labels = np.arange(55_000)
    images, walked = probes_train.blog_walk(labels[:, None], labels, 50)
    self.assertLen(walked, 54_950)
    self.assertLen(images, 54_950)
    for step in (0, 1, 1098, 1099, 1100, 9999):
      start = (50 * step) % 54950
      indices = loop.ordered_indices(step, 50, len(walked)).numpy()
      self.assertAllEqual(walked[indices], np.arange(start, start + 50))

  def test_evaluated_every_100_steps(self):
    """post: "if i % 100 == 0:" appends the test accuracy. ``train`` on a
    stand-in network: 0, 100, ..., 10,000 (the README says why one more
    point than the post)."""
    config = probes_train.Config()
    network = probes_train.Network(
        model=None, train_steps=lambda first, k: tf.zeros([k]),
        forward=lambda images: (tf.one_hot([1, 2], 10), None))
    curve = probes_train.train(config, network, tf.zeros([2, 784]),
                               tf.constant([1, 0]))
    self.assertEqual(curve.step, list(range(0, 10_001, 100)))
    self.assertEqual(curve.test_accuracy, [0.5] * 101)

  def test_initialisers(self):
    """post: initial = tf.truncated_normal(shape, stddev=0.1);
    initial = tf.constant(0.1, shape=shape); and the new head
    w = weight_variable([100,3]); b = bias_variable([3])."""
    mlp = probes_model.MLP(seed=2)
    self.assert_truncated_normal(mlp.hidden[0].W.numpy(), 0.1)
    head = probes_model.AuxiliaryHead(outputs=3, seed=2)
    self.assertEqual(tuple(head.layer.W.shape), (100, 3))
    for layer in mlp.hidden + [mlp.readout, head.layer]:
      self.assertLessEqual(np.abs(layer.W.numpy()).max(), 0.2)
      self.assertAllClose(layer.b, np.full(layer.b.shape, 0.1), atol=0)
    # post: "l1 = simple_fc_layer(x, [784,100])": tanh layers.
    x = np.random.default_rng(0).uniform(size=(2, 784)).astype(np.float32)
    _, layers = mlp(x)
    expected = np.tanh(x @ mlp.hidden[0].W.numpy() + 0.1)
    self.assertAllClose(layers[1], expected, atol=1e-5)

  def test_auxiliary_loss_is_on_layer_1(self):
    """post: y_3newfeatures = tf.matmul(l1,w) + b; new_feature_loss =
    1e-1*tf.reduce_sum(tf.abs(y_3newfeatures_-y_3newfeatures));
    minimize(cross_entropy + new_feature_loss). Worked in NumPy."""
    rng = np.random.default_rng(1)
    mlp, head = probes_model.MLP(seed=0), probes_model.AuxiliaryHead(seed=0)
    images = rng.uniform(size=(4, 784)).astype(np.float32)
    labels = np.array([3, 1, 4, 1])
    targets = rng.normal(size=(4, 3)).astype(np.float32)
    w = [v.numpy().astype(np.float64) for v in mlp.weights + head.weights]
    h1 = np.tanh(images @ w[0] + w[1])
    h3 = np.tanh(np.tanh(h1 @ w[2] + w[3]) @ w[4] + w[5])
    logits = h3 @ w[6] + w[7]
    shifted = logits - logits.max(1, keepdims=True)
    cross_entropy = -(shifted[np.arange(4), labels] -
                      np.log(np.exp(shifted).sum(1))).sum()
    aux = np.abs(targets - (h1 @ w[8] + w[9])).sum()
    optimizer = probes_train.SGD(mlp.weights + head.weights, 0.01)
    loss, ce, l1 = probes_train.aux_sgd_step(
        mlp, head, optimizer, probes_train.Config().aux_weight, images,
        labels, targets).numpy()
    self.assertAllClose([loss, ce, l1],
                        [cross_entropy + 0.1 * aux, cross_entropy, aux],
                        rtol=1e-5)


# ---------------------------------------------------------------------------
# Inverting a Neural Net (R2RT, 2016) -> inversion
# ---------------------------------------------------------------------------


class InversionPostTest(_SettingsTest):

  def test_training_settings(self):
    self.assert_defaults(inv_train.Config(), "inversion", {
        "steps": 2000,                  # post: "for i in range(2000):"
        # post: "batch = mnist.train.next_batch(1000)"
        "batch_size": 1000,
        # post: "train_step = tf.train.AdagradOptimizer(0.01)"
        "learning_rate": 0.01,
        "eval_every": 100,              # post: "if i % 100 == 0:"
        "inverse_steps": 1000,          # post: "for i in range(1000):"
        # post: "opt = tf.train.AdagradOptimizer(0.01)" (the inverse's)
        "inverse_learning_rate": 0.01,
        "confidence": 0.8,              # post: "[confidence>.8]"
        "generate_steps": 1000,         # post: "for i in range(1000): tstep"
        # post: "opt = tf.train.GradientDescentOptimizer(1.)"
        "generate_learning_rate": 1.0,
    })
    self.assertEqual(inv_model.LAYER_SIZES, (784, 100, 100, 10))
    # post: generate(9, np.eye(10)[[1,2,3,4,5,6,7,8,9]])
    self.assertEqual(inv_train.GENERATED_DIGITS, tuple(range(1, 10)))
    runs = makefile_commands()["reproduce-inversion"]
    self.assertEqual([(module, set(values) - _OUTPUT_FLAGS)
                      for module, values in runs],
                     [("inversion.reproduce", set())])

  def test_initialisers(self):
    """post: weight_variable: tf.truncated_normal(shape, stddev=0.1);
    bias_variable: tf.constant(0.1); w2_inv = weight_variable([100,100]);
    w1_inv = weight_variable([100,784])."""
    classifier = inv_model.Classifier(seed=4)
    inverse = inv_model.InversePath(classifier, seed=4)
    self.assert_truncated_normal(classifier.W1.numpy(), 0.1)
    self.assert_truncated_normal(inverse.W1_inv.numpy(), 0.1)
    self.assertEqual(tuple(inverse.W2_inv.shape), (100, 100))
    self.assertEqual(tuple(inverse.W1_inv.shape), (100, 784))
    for weight in (classifier.W2, classifier.W3, inverse.W2_inv):
      self.assertLessEqual(np.abs(weight.numpy()).max(), 0.2)
    for bias in (classifier.b1, classifier.b2, classifier.b3):
      self.assertAllClose(bias, np.full(bias.shape, 0.1), atol=0)

  def test_squash_and_logit(self):
    """post: p_ = p - reduce_min(p); p_norm = p_ / reduce_max(p_);
    p_norm_ = (p_norm - 0.5) * 0.99 + 0.5; logit(p) = log(p / (1-p))."""
    squashed = inv_model.squash(tf.constant([[-3.0, 1.0, 5.0]]))
    self.assertAllClose(squashed, [[0.005, 0.5, 0.995]], atol=1e-7)
    self.assertAllClose(inv_model.logit(tf.constant([0.995, 0.2])),
                        [np.log(0.995 / 0.005), np.log(0.25)], rtol=1e-5)

  def test_inverse_loss(self):
    """post: x_inv_similarity = tf.reduce_sum(tf.abs(x - x_inv));
    excess_l1_inv = tf.nn.l2_loss(tf.reduce_min(l1_inv)) +
    tf.nn.l2_loss(tf.reduce_max(l1_inv - 1)), l2_loss(t) = t^2 / 2."""
    x = tf.constant([[0.0, 1.0], [0.5, 0.25]])
    x_inv = tf.constant([[0.5, -1.0], [0.5, 1.0]])
    l1_inv = tf.constant([[-0.5, 0.3], [2.0, 0.1]])
    total, distance, excess = inv_model.inverse_loss(x, x_inv, l1_inv)
    self.assertAllClose(distance, 0.5 + 2.0 + 0.0 + 0.75)
    self.assertAllClose(excess, 0.5 * 0.25 + 0.5 * 1.0)
    self.assertAllClose(total, 3.25 + 0.625)

  def test_generation_objective_and_features(self):
    """post: fake_l2 = tf.Variable(tf.zeros([n_samples, 100])); fake_y =
    softmax(sigmoid(fake_l2) w + b); diff = reduce_sum(abs(fake_labels -
    fake_y)); and generate_features: np.eye(100) * 1e8."""
    codes = inv_model.FreeCodes(9, 100)
    self.assertAllEqual(codes(), np.zeros((9, 100)))
    classifier = inv_model.Classifier(seed=0)
    one_hot = np.eye(10, dtype=np.float32)[[1, 2]]
    z2 = np.random.default_rng(0).normal(size=(2, 100)).astype(np.float32)
    logits = (1 / (1 + np.exp(-z2.astype(np.float64))) @
              classifier.W3.numpy() + classifier.b3.numpy())
    softmax = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    self.assertAllClose(
        inv_model.code_class_loss(classifier, tf.constant(z2), one_hot),
        np.abs(one_hot - softmax).sum(), rtol=1e-5)
    self.assertAllEqual(inv_model.feature_codes(100),
                        np.eye(100, dtype=np.float32) * 1e8)


# ---------------------------------------------------------------------------
# First Convergence Bias (R2RT, 2016) -> convergence
# ---------------------------------------------------------------------------


class _RecordingOptimizer:
  """Stands in for a tfscratch optimizer: a learning-rate variable, and a
  count of resets."""

  def __init__(self, learning_rate):
    self.initial = learning_rate
    self.learning_rate = tf.Variable(learning_rate)
    self.resets = 0

  def reset(self):
    self.resets += 1
    self.learning_rate.assign(self.initial)


class ConvergencePostTest(_SettingsTest):

  def test_settings(self):
    config = fcb_train.Config()
    self.assert_defaults(config, "convergence", {
        "optimizer": "sgd",      # post: "tf.train.GradientDescentOptimizer"
        "batch_size": 50,        # post: "start = (50*i) % 1000; end = start + 50"
        "step_scale": 1.0,
    })
    self.assertEqual(config.learning_rate, 0.01)  # post: "lr: 0.01"
    defaults = flag_defaults("convergence")
    # post: "I trained 500 randomly-initialized networks" (its code says
    # range(400); the text and the printed means are of 500).
    self.assertEqual(defaults["num_runs"], 500)
    # post: "trained only on 1000 MNIST training examples" =
    # mnist.train.images[0:1000] of TF1's reader: file images 5000..5999.
    self.assertEqual(defaults["train_size"], 1000)
    self.assertEqual(defaults["train_offset"], 5000)
    self.assertEqual(set(defaults["strategies"]), {"all_layers", "layerwise"})
    reproduce = flag_defaults("convergence.reproduce")
    self.assertEqual(reproduce["num_runs"], 500)
    self.assertEqual(reproduce["step_scale"], 1.0)
    runs = makefile_commands()["reproduce-convergence"]
    self.assertEqual([(module, set(values) - _OUTPUT_FLAGS)
                      for module, values in runs],
                     [("convergence.reproduce", set())])

  def test_phases(self):
    """post: for i in range(1000): ... learning_rate = 0.01 if i < 750 else
    0.003; ts3.run(...)  and, layer-wise: for i in range(200): ts1.run(...);
    for i in range(200): ts2.run(...); then the same 1000 steps of ts3."""
    P = fcb_train.Phase
    self.assertEqual(fcb_train.STRATEGIES["all_layers"],
                     (P(head=3, steps=1000, drop_at=750),))
    self.assertEqual(fcb_train.STRATEGIES["layerwise"],
                     (P(head=1, steps=200, drop_at=None),
                      P(head=2, steps=200, drop_at=None),
                      P(head=3, steps=1000, drop_at=750)))
    self.assertEqual(fcb_train.DEFAULT_LEARNING_RATES["sgd"], 0.01)
    self.assertNear(0.01 * fcb_train.LR_DROP, 0.003, 1e-12)
    self.assertEqual(fcb_train.total_steps("layerwise"), 1400)

  def test_learning_rate_at_every_step_and_a_fresh_walk_per_phase(self):
    """``train_stack`` on stand-ins that record, for every step taken, its
    phase, its index in the phase and the learning rate it ran with: 0.01
    up to step 749 of the last phase, 0.003 from step 750 on; every phase
    starts at step 0 (so at image 0) with a fresh optimizer. Whatever the
    steps per compiled call: 50 (the default) ends a call at step 750, 40
    and 1,000 make the drop fall inside one."""
    for strategy, block_steps in itertools.product(
        ("all_layers", "layerwise"), (50, 40, 1000)):
      config = fcb_train.Config(block_steps=block_steps)
      schedule = fcb_train.phases(strategy)
      optimizers = [_RecordingOptimizer(config.learning_rate)
                    for _ in schedule]
      taken = []

      def recorder(number, optimizer):
        def train_steps(first, count):
          rate = float(optimizer.learning_rate.numpy())
          taken.extend((number, first + k, rate) for k in range(count))
          return np.zeros(count, np.float32)
        return train_steps

      unused = {field.name: None
                for field in dataclasses.fields(fcb_train.Stack)}
      stack = fcb_train.Stack(**{
          **unused, "strategy": strategy, "phases": schedule,
          "networks": types.SimpleNamespace(assign=lambda weights: None),
          "optimizers": tuple(optimizers),
          "train_steps": tuple(recorder(n, o)
                               for n, o in enumerate(optimizers))})
      fcb_train.train_stack(stack, config, weights=None)
      expected = []
      for number, phase in enumerate(schedule):
        for step in range(phase.steps):
          dropped = phase.drop_at is not None and step >= phase.drop_at
          expected.append((number, step, 0.003 if dropped else 0.01))
      self.assertEqual([(n, s) for n, s, _ in taken],
                       [(n, s) for n, s, _ in expected], strategy)
      self.assertAllClose([r for _, _, r in taken],
                          [r for _, _, r in expected], rtol=1e-6, atol=0,
                          msg=f"{strategy}, {block_steps} steps per call")
      self.assertEqual([o.resets for o in optimizers], [1] * len(schedule))

  def test_step_i_trains_on_images_50i_mod_1000(self):
    """post: start = (50*i) % 1000; end = start + 50 (in every phase), on
    mnist.train.images[0:1000] = file images 5000..5999."""
    labels = np.arange(60_000)
    images = np.zeros((60_000, 1), np.float32)
    images[:, 0] = labels
    mnist = Mnist(train=Split(images, labels), validation=Split(
        images[:0], labels[:0]), test=Split(images[:10], labels[:10]),
                  source="stand-in")
    data = fcb_data.blog_data(mnist)
    self.assertAllEqual(data.train.labels, np.arange(5000, 6000))
    self.assertAllEqual(data.validation.labels, np.arange(5000))
    batch_images, batch_labels = fcb_data.batches(data.train, lit=[0])
    self.assertEqual(batch_labels.shape, (20, 50))
    # The compiled loop, on a stand-in stack whose "loss" is the first
    # label of the batch the step reads.
    weight = tf.Variable(1.0)
    stand_in = types.SimpleNamespace(
        dtype=tf.float32, phase_variables=lambda head: [weight],
        losses=lambda x, labels, head: weight * tf.cast(labels[:1],
                                                        tf.float32))
    optimizer = types.SimpleNamespace(apply=lambda gradients: None)
    train_steps = fcb_stacked.make_train_steps(
        stand_in, 3, optimizer, (batch_images, batch_labels))
    first_labels = train_steps(0, 45).numpy()
    self.assertAllEqual(first_labels,
                        [5000 + (50 * i) % 1000 for i in range(45)])
    self.assertAllEqual(train_steps(997, 3).numpy(),
                        [5000 + (50 * i) % 1000 for i in (997, 998, 999)])

  def test_initialisers_and_heads(self):
    """post: weight_variable: truncated_normal(stddev=0.1); bias_variable:
    constant 0.1; y1, y2, y3: a softmax head [100,10] on each hidden layer,
    and ts_k = minimize(ce_k) moves layers 1..k and head k."""
    weights = fcb_network.initial_weights(tf.constant([7, 0], tf.int64))
    self.assert_truncated_normal(weights["W1"].numpy(), 0.1)
    for name in ("W2", "W3", "V1", "V2", "V3"):
      self.assertLessEqual(np.abs(weights[name].numpy()).max(), 0.2)
    for name in ("b1", "b2", "b3", "c1", "c2", "c3"):
      self.assertAllClose(weights[name], np.full(weights[name].shape, 0.1),
                          atol=0)
    stacked_draw = fcb_stacked.run_weights(0, 0, 0)
    self.assert_truncated_normal(np.asarray(stacked_draw["W1"]), 0.1)
    net = fcb_network.Network(weights)
    for head, names in ((1, ["W1", "b1", "V1", "c1"]),
                        (2, ["W1", "b1", "W2", "b2", "V2", "c2"]),
                        (3, ["W1", "b1", "W2", "b2", "W3", "b3", "V3", "c3"])):
      self.assertEqual([v.name.split(":")[0]
                        for v in net.phase_variables(head)], names)


if __name__ == "__main__":
  tf.test.main()
