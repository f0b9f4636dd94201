"""Training-step throughput of each inversion stage, two ways, on the blog's
settings in the same run:

  in graph   the experiment's loop: K steps per call of the compiled loop
             (tfscratch.loop.compile_steps), losses read once per call
  per call   the same compiled step, one call per step and its loss read
             after every step (how the experiment ran before its loops
             moved into the graph: a Python loop and a host sync per step)

  python benchmarks/bench_inversion.py [--repeats 3] [--steps_per_call 100]

Prints steps/s of each and per-call time / in-graph time (what the loop in
the graph gains), in wall time and in this process's CPU time (steadier on a
machine shared with other work). Timings alternate between the two, and the
median of the repeats is kept, so a burst of load hits both alike. Both ways
train the same variables in turn, which does not change the cost of a step.
"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import statistics
import time

from absl import flags
import numpy as np
import tensorflow as tf

from inversion import model
from inversion import train
from tfscratch import loop
from tfscratch import optimizers
from tfscratch.lab import cli
from tfscratch.lab.mnist import load_mnist

FLAGS = flags.FLAGS
flags.DEFINE_integer("repeats", 3, "Timings per way (median kept).",
                     lower_bound=1)
flags.DEFINE_integer("steps_per_call", 100, "K, steps per call of the "
                     "compiled loop (the experiment's --log_every).",
                     lower_bound=1)

CONFIG = train.Config()  # the blog's settings
# Steps per timing: a few seconds of each stage on two cores.
STEPS = {"classifier": 300, "inverse": 200, "generate": 1000,
         "gradient_inverse": 60, "class_images": 300}


def stages(mnist):
  """{stage: step(i)} built as train.py builds them, on the blog's sizes."""
  images = tf.constant(mnist.train.images)
  labels = tf.constant(mnist.train.labels)
  classifier = model.Classifier(seed=0)
  inverse = model.InversePath(classifier, seed=0)
  codes = model.FreeCodes(len(train.GENERATED_DIGITS), 100)
  one_hot = np.eye(10, dtype=np.float32)[list(train.GENERATED_DIGITS)]
  originals = mnist.test.images[:CONFIG.num_eval]
  targets = classifier.hidden(originals)[1]
  pixels = model.SigmoidImages(CONFIG.num_eval, 784)
  class_pixels = model.SigmoidImages(len(train.GENERATED_DIGITS), 784)
  digits = tf.constant(train.GENERATED_DIGITS, tf.int64)
  return {
      "classifier": train.classifier_step(
          classifier, optimizers.Adagrad(classifier.weights, 0.01), images,
          labels, CONFIG.batch_size),
      "inverse": train.inverse_step(
          inverse, optimizers.Adagrad(inverse.weights, 0.01), images,
          CONFIG.batch_size, CONFIG.confidence),
      "generate": train.code_step(
          classifier, codes, optimizers.SGD([codes.z2], 1.0), one_hot),
      "gradient_inverse": train.pixel_step(
          pixels, optimizers.Adam([pixels.v], 0.1),
          lambda x: model.code_matching_loss(classifier, x, targets,
                                             CONFIG.tv_weight, 0.0)),
      "class_images": train.pixel_step(
          class_pixels, optimizers.Adam([class_pixels.v], 0.1),
          lambda x: model.class_image_loss(classifier, x, digits,
                                           CONFIG.class_tv_weight, 0.0)),
  }


def in_graph_timer(step):
  train_steps = loop.compile_steps(step)

  def run(steps):
    for first, count in train.chunks(steps, FLAGS.steps_per_call):
      train_steps(first, count).numpy()

  return run


def per_call_timer(step):
  if not hasattr(step, "experimental_get_tracing_count"):
    step = tf.function(step, input_signature=[tf.TensorSpec([], tf.int32)])

  def run(steps):
    for i in range(steps):
      np.asarray(step(tf.constant(i)))  # the host reads every step's loss

  return run


def main(argv):
  del argv
  mnist = load_mnist(validation_size=5000)
  print(f"{'stage':<17} {'in graph':>14} {'per call':>14}  per-call / in-graph"
        " time: wall, CPU")
  for stage, step in stages(mnist).items():
    timers = {"in graph": in_graph_timer(step),
              "per call": per_call_timer(step)}
    for run in timers.values():
      run(2)  # trace and warm up
    wall = {way: [] for way in timers}
    cpu = {way: [] for way in timers}
    for _ in range(FLAGS.repeats):
      for way, run in timers.items():
        start, start_cpu = time.perf_counter(), time.process_time()
        run(STEPS[stage])
        wall[way].append(time.perf_counter() - start)
        cpu[way].append(time.process_time() - start_cpu)
    wall = {way: statistics.median(times) for way, times in wall.items()}
    cpu = {way: statistics.median(times) for way, times in cpu.items()}
    print(f"{stage:<17} {STEPS[stage] / wall['in graph']:>8,.0f} steps/s "
          f"{STEPS[stage] / wall['per call']:>6,.0f} steps/s  "
          f"{wall['per call'] / wall['in graph']:.2f}, "
          f"{cpu['per call'] / cpu['in graph']:.2f}", flush=True)


if __name__ == "__main__":
  cli.run(main)
