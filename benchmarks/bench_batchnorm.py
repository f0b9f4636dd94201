"""Training-step throughput of the batchnorm net, three ways, on the same MNIST
batches in the same run:

  ours      the experiment's loop: K steps per call of the compiled loop,
            batches gathered in the graph, walked in order
            (--batch_order=ordered, the same batches as keras)
  keras     its keras.Sequential twin (reference.py) in the same loop
            (loop.compile_walk)
  shuffled  ours with the 2016 post's next_batch (data.py; the default):
            what the in-graph reshuffles cost
  host-fed  ours, one compiled step per call, each batch cut on the host
            with nn.ordered_batch (how the experiment ran before its loop
            moved into the graph)

  python benchmarks/bench_batchnorm.py [--steps 1000] [--repeats 5]
                                       [--steps_per_call 50]

Prints steps/s of each, ours time / Keras time (target <= 1.1), host-fed
time / ours time (what the loop in the graph gains) and shuffled time / ours
time. Timings alternate
between the three, and the median of the repeats is kept, so a burst of load
on the machine hits all alike.
"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import functools

from absl import flags
import tensorflow as tf

from batchnorm_manual import reference, train
from batchnorm_manual.model import BatchNormNet, initial_weights
import timing
from tfscratch import loop, nn
from tfscratch.lab import cli
from tfscratch.lab.mnist import load_mnist
from tfscratch.optimizers import SGD

FLAGS = flags.FLAGS
cli.define_steps(1000, help_text="Training steps per timing.")
flags.DEFINE_integer("repeats", 5, "Timings per implementation (median kept).",
                     lower_bound=1)
flags.DEFINE_integer("steps_per_call", 50, "K, steps per call of the compiled "
                     "loop (the experiment's --eval_every).", lower_bound=1)

# The post's batch of 60 and learning rate 0.01; batches in file order, as
# the Keras twin's loop.compile_walk takes them.
CONFIG = train.Config(batch_order="ordered")


def host_fed_timer(net, mnist):
  """Times ``steps`` calls of a compiled single step, batches from the host."""
  step = tf.function(
      functools.partial(train.sgd_step, net,
                        SGD(net.weights, CONFIG.learning_rate)),
      input_signature=[
          tf.TensorSpec([CONFIG.batch_size, nn.NUM_PIXELS], tf.float32),
          tf.TensorSpec([CONFIG.batch_size], tf.int64)])

  def run(first_step, steps):
    for i in range(first_step, first_step + steps):
      loss = step(*nn.ordered_batch(mnist.train.images, mnist.train.labels,
                                    CONFIG.batch_size, i))
    loss.numpy()

  return run


def main(argv):
  del argv
  mnist = load_mnist(validation_size=5000, validation_first=True)
  ours = train.build(CONFIG, mnist)["batchnorm"]
  twin = reference.keras_twin(ours.net)
  keras_steps = loop.compile_walk(
      reference.keras_sgd_step(twin, CONFIG.learning_rate),
      (tf.constant(mnist.train.images), tf.constant(mnist.train.labels)),
      CONFIG.batch_size)
  timers = {
      "ours": timing.in_graph_timer(ours.train_steps, FLAGS.steps_per_call),
      "keras": timing.in_graph_timer(keras_steps, FLAGS.steps_per_call),
      "host-fed": host_fed_timer(
          BatchNormNet(initial_weights(CONFIG.seed)), mnist),
      "shuffled": timing.in_graph_timer(
          train.build(train.Config(), mnist)["batchnorm"].train_steps,
          FLAGS.steps_per_call),
  }
  print(f"batch {CONFIG.batch_size}, {FLAGS.steps_per_call} steps per call "
        "in the graph")
  median = timing.alternating_medians(timers, FLAGS.steps, FLAGS.repeats,
                                      width=8)
  ratio = median["ours"] / median["keras"]
  print(f"ours time / keras time = {ratio:.3f}  (target <= 1.1: "
        f"{'met' if ratio <= 1.1 else 'NOT met'})")
  print(f"host-fed time / ours time = {median['host-fed'] / median['ours']:.2f}"
        "  (the gain of the loop in the graph)")
  print(f"shuffled time / ours time = {median['shuffled'] / median['ours']:.2f}"
        "  (the cost of the 2016 next_batch's reshuffles)")


if __name__ == "__main__":
  cli.run(main)
