"""How fast are hundreds of stacked networks? The blog-scale experiment
(500 + 500 networks, SGD) timed end to end, next to a plain large tf.matmul
and next to the same networks trained one at a time with the same step.

  python benchmarks/bench_convergence.py                 # blog scale
  python benchmarks/bench_convergence.py --num_runs 100  # quicker

Prints: wall time of the whole experiment (model building, tracing, training,
test evaluation); the GFLOP/s it achieved, counting the matrix products only
(analytically, below); the GFLOP/s of one large square tf.matmul measured in
the same process before and after; and the speed-up over training networks
one at a time (a stack of N = 1 built once per strategy and reused, timed
after a warm-up network on the next --one_at_a_time networks of each
strategy, and extrapolated). Other
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
from convergence import experiment
from convergence import model as model_lib
from tfscratch.seeding import set_seed

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_runs", 500, "Networks per strategy.", lower_bound=2)
flags.DEFINE_integer("chunk_size", 50, "Networks per stack.", lower_bound=1)
flags.DEFINE_integer("one_at_a_time", 5, "Networks per strategy trained one "
                     "at a time for the comparison.", lower_bound=1)
flags.DEFINE_enum("optimizer", "sgd", ["sgd", "adagrad", "adam"],
                  "Optimizer.")
flags.DEFINE_integer("matmul_size", 2048, "Side of the square matmul.",
                     lower_bound=1)

B = data_lib.BATCH_SIZE
H = model_lib.HIDDEN_SIZE
C = model_lib.NUM_CLASSES


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
  return num_images * (2 * model_lib.INPUT_SIZE * H + 2 * 2 * H * H +
                       2 * H * C)


def experiment_flops(strategy, num_networks, num_lit, num_test):
  per_network = sum(phase.steps * step_flops(phase.head, num_lit)
                    for phase in experiment.STRATEGIES[strategy])
  return num_networks * (per_network + evaluation_flops(num_test))


def matmul_gflops(size, repeats=10):
  a = tf.random.normal([size, size])
  b = tf.random.normal([size, size])
  product = tf.function(lambda: tf.matmul(a, b))
  product().numpy()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    product().numpy()
    times.append(time.perf_counter() - start)
  return 2 * size ** 3 / np.median(times) / 1e9


def load():
  return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def run_stacked(data, strategy, num_runs, chunk_size):
  """Every chunk of ``strategy``, as python -m convergence trains them."""
  trainers = {}
  accuracies = []
  for first in range(0, num_runs, chunk_size):
    end = min(num_runs, first + chunk_size)
    if end - first not in trainers:
      trainers[end - first] = experiment.StackTrainer(
          data, strategy, end - first, FLAGS.optimizer)
    accuracies += trainers[end - first].train_runs(
        range(first, end), seed=0, log_every=0)["test"].tolist()
  return np.array(accuracies)


def main(argv):
  del argv
  set_seed(0)
  print(f"{os.cpu_count()} CPUs; {load()}", flush=True)
  data = data_lib.load_data()
  num_lit = len(model_lib.lit_pixels(data.train.images))
  matmul_before = matmul_gflops(FLAGS.matmul_size)
  print(f"tf.matmul {FLAGS.matmul_size}^2: {matmul_before:.1f} GFLOP/s",
        flush=True)

  total_time, total_flops, stacked = 0.0, 0.0, {}
  for strategy in experiment.STRATEGIES:
    start = time.perf_counter()
    stacked[strategy] = run_stacked(data, strategy, FLAGS.num_runs,
                                    FLAGS.chunk_size)
    seconds = time.perf_counter() - start
    flops = experiment_flops(strategy, FLAGS.num_runs, num_lit,
                             len(data.test))
    total_time += seconds
    total_flops += flops
    print(f"stacked {strategy}: {FLAGS.num_runs} networks in {seconds:.1f} s "
          f"({flops / seconds / 1e9:.1f} GFLOP/s), mean accuracy "
          f"{100 * stacked[strategy].mean():.2f}%; {load()}", flush=True)

  alone_total = 0.0
  for strategy in experiment.STRATEGIES:
    runs = range(1, 1 + min(FLAGS.one_at_a_time, FLAGS.num_runs - 1))
    trainer = experiment.StackTrainer(data, strategy, 1, FLAGS.optimizer)
    # Network 0 traces the steps; the timing starts after it, so the
    # one-at-a-time cost is its best case, with no tracing in it.
    trainer.train_runs([0], seed=0, log_every=0)
    start = time.perf_counter()
    alone = np.array([trainer.train_runs([run], seed=0, log_every=0)["test"][0]
                      for run in runs])
    per_network = (time.perf_counter() - start) / len(runs)
    alone_total += per_network * FLAGS.num_runs
    same = int(np.sum(alone == stacked[strategy][runs.start:runs.stop]))
    print(f"one at a time {strategy}: {per_network:.2f} s per network "
          f"(runs {runs.start}-{runs.stop - 1}, after a warm-up network); "
          f"accuracies equal to the stacked ones: {same}/{len(runs)}; "
          f"{load()}", flush=True)

  matmul_after = matmul_gflops(FLAGS.matmul_size)
  print(f"tf.matmul {FLAGS.matmul_size}^2 again: {matmul_after:.1f} GFLOP/s",
        flush=True)
  print()
  print(f"blog scale ({FLAGS.num_runs} + {FLAGS.num_runs} networks, "
        f"{FLAGS.optimizer}, chunks of {FLAGS.chunk_size}): "
        f"{total_time:.1f} s wall")
  achieved = total_flops / total_time / 1e9
  matmul = (matmul_before + matmul_after) / 2
  print(f"achieved {achieved:.1f} GFLOP/s ({total_flops / 1e12:.2f} TFLOP "
        f"of matrix products) vs tf.matmul {matmul:.1f} GFLOP/s: "
        f"{achieved / matmul:.2f} of it")
  print(f"one at a time (extrapolated): {alone_total:.1f} s; speed-up "
        f"{alone_total / total_time:.1f}x")
  print(load())


if __name__ == "__main__":
  app.run(main)
