"""How fast are hundreds of stacked networks? The blog-scale experiment
(500 + 500 networks, SGD) timed end to end, next to a plain large tf.matmul
and next to the same networks trained one at a time with the same step.

  python benchmarks/bench_convergence.py                 # blog scale
  python benchmarks/bench_convergence.py --num_runs 100  # quicker

Prints: wall time of the whole experiment as ``python -m convergence`` runs
it (chunks of --chunk_size networks, --workers chunks at a time, each op on
one thread; model building, tracing, training, test evaluation); the GFLOP/s
it achieved, counting the matrix products only (analytically, below); the
GFLOP/s of one large square tf.matmul measured in the same process before
and after (one thread per op too, so on --workers cores at once); and the
speed-up over training networks one at a time: the same machinery with
chunks of one network, timed over --one_at_a_time networks of each strategy
(building and tracing excluded, so its best case) and extrapolated; once
with the compiled loop running the steps, once with a call per step. Other
programs sharing the CPU slow everything: the load average is printed.
"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import os
import time

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from convergence import data as data_lib
from convergence import network
from convergence import scale
from convergence import stacked
from convergence import train
from tfscratch.lab.seeding import set_seed
from tfscratch.nn import NUM_CLASSES
from tfscratch.nn import NUM_PIXELS

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_runs", 500, "Networks per strategy.", lower_bound=2)
flags.DEFINE_integer("chunk_size", 25, "Networks per stack.", lower_bound=1)
flags.DEFINE_integer("workers", scale.default_workers(),
                     "Chunks trained at once.", lower_bound=1)
flags.DEFINE_integer("one_at_a_time", 6, "Networks per strategy trained one "
                     "at a time for the comparison.", lower_bound=1)
flags.DEFINE_enum("optimizer", "sgd", ["sgd", "adagrad", "adam"],
                  "Optimizer.")
flags.DEFINE_integer("matmul_size", 2048, "Side of the square matmul.",
                     lower_bound=1)

B = data_lib.BATCH_SIZE
H = network.HIDDEN_SIZE
C = NUM_CLASSES
BLOCK_STEPS = train.Config().block_steps


def step_flops(head, num_lit):
  """Matrix-product FLOPs (2 per multiply-add) of one network's training
  step on head ``head``, forward and backward, first layer over the lit
  pixels only (as computed)."""
  forward = 2 * B * num_lit * H + (head - 1) * 2 * B * H * H + 2 * B * H * C
  # Backward: each product's weight gradient, and its input gradient except
  # for the first layer (the images need none).
  backward = 2 * (2 * B * H * C) + (head - 1) * 2 * (2 * B * H * H)
  backward += 2 * B * num_lit * H
  return forward + backward


def evaluation_flops(num_images):
  """Forward FLOPs of one network through head 3 on ``num_images``."""
  return num_images * (2 * NUM_PIXELS * H + 2 * 2 * H * H +
                       2 * H * C)


def experiment_flops(strategy, num_networks, num_lit, num_test):
  per_network = sum(phase.steps * step_flops(phase.head, num_lit)
                    for phase in train.STRATEGIES[strategy])
  return num_networks * (per_network + evaluation_flops(num_test))


def matmul_gflops(size, repeats=10):
  """GFLOP/s of a size x size tf.matmul, ``--workers`` of them at once (each
  on one thread, as the experiment's chunks run)."""
  a = tf.random.normal([size, size])
  b = tf.random.normal([size, size])
  product = tf.function(lambda: tf.matmul(a, b))
  product().numpy()

  def products(task, trainers, stop):
    del task, trainers, stop
    for _ in range(repeats):
      product().numpy()

  start = time.perf_counter()
  scale.train_in_workers(products, range(FLAGS.workers), FLAGS.workers)
  seconds = time.perf_counter() - start
  return 2 * size ** 3 * repeats * FLAGS.workers / seconds / 1e9


def load():
  return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def train_tasks(data, tasks, block_steps=BLOCK_STEPS):
  """Trains ``tasks`` ((strategy, first, end): a chunk of runs of a strategy)
  as python -m convergence does, all in one pool of workers. Returns, per
  strategy, the accuracies in run order and each chunk's training time
  (building the stack and tracing excluded)."""
  config = train.Config(
      optimizer=FLAGS.optimizer,
      learning_rate=train.DEFAULT_LEARNING_RATES[FLAGS.optimizer],
      block_steps=block_steps)

  def train_chunk(task, stacks, stop):
    del stop
    strategy, first, end = task
    if (strategy, end - first) not in stacks:
      stacks[strategy, end - first] = train.build(config, data, strategy,
                                                  end - first)
    start = time.perf_counter()
    accuracies = train.train_runs(config, data, strategy, range(first, end),
                                  stack=stacks[strategy, end - first])["test"]
    return accuracies, time.perf_counter() - start

  trained = scale.train_in_workers(train_chunk, tasks, FLAGS.workers)
  accuracies, seconds = {}, {}
  for (strategy, *_), (chunk_accuracies, chunk_seconds) in zip(tasks,
                                                               trained):
    accuracies.setdefault(strategy, []).extend(chunk_accuracies)
    seconds.setdefault(strategy, []).append(chunk_seconds)
  return ({strategy: np.array(values) for strategy, values in
           accuracies.items()}, seconds)


def main(argv):
  del argv
  scale.use_one_thread_per_op(FLAGS.workers)
  set_seed(0)
  print(f"{os.cpu_count()} CPUs, {FLAGS.workers} workers; {load()}",
        flush=True)
  data = scale.load_data(None, data_lib.BLOG_TRAIN_SIZE,
                         data_lib.BLOG_TRAIN_OFFSET)
  num_lit = len(stacked.lit_pixels(data.train.images))
  matmul_before = matmul_gflops(FLAGS.matmul_size)
  print(f"tf.matmul {FLAGS.matmul_size}^2 x {FLAGS.workers}: "
        f"{matmul_before:.1f} GFLOP/s", flush=True)

  start = time.perf_counter()
  together, _ = train_tasks(data, [
      (strategy, first, end) for strategy in train.STRATEGIES
      for first, end in scale.chunk_ranges(FLAGS.num_runs,
                                           FLAGS.chunk_size)])
  total_time = time.perf_counter() - start
  total_flops = sum(experiment_flops(strategy, FLAGS.num_runs, num_lit,
                                     len(data.test))
                    for strategy in train.STRATEGIES)
  for strategy, accuracies in together.items():
    print(f"stacked {strategy}: {FLAGS.num_runs} networks, mean accuracy "
          f"{100 * accuracies.mean():.2f}%; {load()}", flush=True)

  # One at a time, two ways: the same compiled loop (Python out of the
  # loop, as in the stacks), and a call per step from Python (as the blog
  # stepped its networks with sess.run).
  alone_total = {"in-graph loop": 0.0, "a call per step": 0.0}
  runs = range(min(FLAGS.one_at_a_time, FLAGS.num_runs))
  for way, block_steps in zip(alone_total, (BLOCK_STEPS, 1)):
    alone, seconds = train_tasks(data, [
        (strategy, run, run + 1) for strategy in train.STRATEGIES
        for run in runs], block_steps)
    for strategy in train.STRATEGIES:
      per_network = sum(seconds[strategy]) / FLAGS.workers / len(runs)
      alone_total[way] += per_network * FLAGS.num_runs
      same = int(np.sum(alone[strategy] == together[strategy][:len(runs)]))
      print(f"one at a time, {way}, {strategy}: {per_network:.2f} s per "
            f"network ({len(runs)} networks, {FLAGS.workers} at a time); "
            f"accuracies equal to the stacked ones: {same}/{len(runs)}; "
            f"{load()}", flush=True)

  matmul_after = matmul_gflops(FLAGS.matmul_size)
  print(f"tf.matmul {FLAGS.matmul_size}^2 x {FLAGS.workers} again: "
        f"{matmul_after:.1f} GFLOP/s", flush=True)
  print()
  print(f"blog scale ({FLAGS.num_runs} + {FLAGS.num_runs} networks, "
        f"{FLAGS.optimizer}, chunks of {FLAGS.chunk_size}, {FLAGS.workers} "
        f"workers): {total_time:.1f} s wall")
  achieved = total_flops / total_time / 1e9
  matmul = (matmul_before + matmul_after) / 2
  print(f"achieved {achieved:.1f} GFLOP/s ({total_flops / 1e12:.2f} TFLOP "
        f"of matrix products) vs tf.matmul {matmul:.1f} GFLOP/s: "
        f"{achieved / matmul:.2f} of it")
  for way, seconds in alone_total.items():
    print(f"one at a time, {way} (extrapolated): {seconds:.1f} s; speed-up "
          f"{seconds / total_time:.1f}x")
  print(load())


if __name__ == "__main__":
  app.run(main)
