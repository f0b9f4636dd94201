"""Training-step throughput of the probes experiment's MLP, on the blog's
batches of 50, in the same run:

  ours      the experiment's loop: K steps per call of the compiled loop,
            batches gathered in the graph (loop.compile_walk)
  keras     its keras.Sequential twin (reference.py) in the same loop
  host-fed  ours, one compiled step per call, each batch cut on the host
            with nn.ordered_batch (how the experiment ran before its loop
            moved into the graph)

and the same for the auxiliary-loss net (ours and host-fed).

  python benchmarks/bench_mnist_probes.py [--steps 2000] [--repeats 5]
                                          [--steps_per_call 100]

Prints steps/s of each, ours time / Keras time and host-fed time / ours
time (what the loop in the graph gains). Timings alternate between the
variants and the median of the repeats is kept, so a burst of load on the
machine hits all alike.
"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)


from absl import flags
import keras
import numpy as np
import tensorflow as tf

from mnist_probes import data, reference, train
from mnist_probes.model import MLP, AuxiliaryHead
import timing
from tfscratch import loop, nn
from tfscratch.lab import cli
from tfscratch.optimizers import SGD

FLAGS = flags.FLAGS
cli.define_steps(2000, help_text="Training steps per timing.")
flags.DEFINE_integer("repeats", 5, "Timings per variant (median kept).",
                     lower_bound=1)
flags.DEFINE_integer("steps_per_call", 100, "K, steps per call of the "
                     "compiled loop (the experiment's --eval_every).",
                     lower_bound=1)
cli.define_data_dir_flag()

CONFIG = train.Config()  # the blog's batch of 50 and learning rate 0.01


def host_fed_timer(step, arrays):
  """Times ``steps`` calls of ``step`` compiled alone, each batch cut on the
  host and read back (one loss per call)."""
  step = tf.function(step)

  def run(first_step, steps):
    for i in range(first_step, first_step + steps):
      indices = ((i * CONFIG.batch_size + np.arange(CONFIG.batch_size)) %
                 len(arrays[0]))
      loss = step(*[array[indices] for array in arrays])
    np.asarray(loss)

  return run


def main(argv):
  del argv
  train_split, _, _ = data.load_train_test(FLAGS.data_dir)
  images, labels = train.blog_walk(train_split.images, train_split.labels,
                                   CONFIG.batch_size)
  targets = np.random.default_rng(0).normal(
      size=(len(labels), CONFIG.aux_components)).astype(np.float32)
  graph_images = tf.constant(images)

  def base_step():
    model = MLP(seed=0)
    optimizer = SGD(model.weights, CONFIG.learning_rate)
    return lambda *batch: train.sgd_step(model, optimizer, *batch)

  def aux_step():
    model, head = MLP(seed=0), AuxiliaryHead(seed=0)
    optimizer = SGD(model.weights + head.weights, CONFIG.learning_rate)
    return lambda *batch: train.aux_sgd_step(model, head, optimizer,
                                             CONFIG.aux_weight, *batch)

  twin = reference.keras_twin(MLP(seed=0))
  keras_optimizer = keras.optimizers.SGD(CONFIG.learning_rate)
  timers = {
      "ours": timing.in_graph_timer(loop.compile_walk(
          base_step(), (graph_images, labels), CONFIG.batch_size),
          FLAGS.steps_per_call),
      "keras": timing.in_graph_timer(loop.compile_walk(
          lambda *batch: reference.keras_sgd_step(twin, keras_optimizer,
                                                  *batch),
          (graph_images, labels), CONFIG.batch_size), FLAGS.steps_per_call),
      "host-fed": host_fed_timer(base_step(), (images, labels)),
      "aux ours": timing.in_graph_timer(loop.compile_walk(
          aux_step(), (graph_images, labels, targets), CONFIG.batch_size),
          FLAGS.steps_per_call),
      "aux host-fed": host_fed_timer(aux_step(), (images, labels, targets)),
  }
  print(f"batch {CONFIG.batch_size}, {FLAGS.steps_per_call} steps per call "
        "in the graph")
  median = timing.alternating_medians(timers, FLAGS.steps, FLAGS.repeats,
                                      width=12)
  print(f"ours time / keras time = {median['ours'] / median['keras']:.3f}")
  for prefix in ("", "aux "):
    print(f"{prefix}host-fed time / ours time = "
          f"{median[prefix + 'host-fed'] / median[prefix + 'ours']:.2f}  "
          "(the gain of the loop in the graph)")


if __name__ == "__main__":
  cli.run(main)
