"""Training-step throughput: the hand-written batchnorm net against the same
network as a keras.Sequential (Dense without bias, BatchNormalization,
sigmoid; x3; Dense), both in a tf.function SGD step on the summed
cross-entropy, fed the same MNIST batches in the same run.

  python benchmarks/bench_batchnorm.py [--steps 1000] [--repeats 5]

Prints steps/s of each and the ratio ours time / Keras time (target <= 1.1).
Timings alternate between the two, and the median of the repeats is kept, so
a burst of load on the machine hits both alike.
"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import statistics
import time

from absl import flags
import keras
import tensorflow as tf

from batchnorm_manual.model import (BatchNormNet, IMAGE_SIZE, initial_weights,
                                    make_train_step)
from tfscratch.lab import cli
from tfscratch import nn
from tfscratch.lab.mnist import load_mnist
from tfscratch.optimizers import SGD

FLAGS = flags.FLAGS
flags.DEFINE_integer("steps", 1000, "Training steps per timing.",
                     lower_bound=1)
flags.DEFINE_integer("repeats", 5, "Timings per implementation (median kept).",
                     lower_bound=1)

BATCH_SIZE = 60
LEARNING_RATE = 0.01


def keras_twin(weights):
  """The batchnorm net as a keras.Sequential holding the same weights."""
  layers = [keras.Input((IMAGE_SIZE,))]
  for W in weights[:-1]:
    layers += [keras.layers.Dense(W.shape[1], use_bias=False),
               keras.layers.BatchNormalization(),
               keras.layers.Activation("sigmoid")]
  layers.append(keras.layers.Dense(weights[-1].shape[1]))
  model = keras.Sequential(layers)
  dense = [layer for layer in model.layers
           if isinstance(layer, keras.layers.Dense)]
  for layer, W in zip(dense, weights):
    layer.kernel.assign(W)
  return model


def keras_train_step(model):
  optimizer = keras.optimizers.SGD(LEARNING_RATE)
  optimizer.build(model.trainable_weights)

  @tf.function(input_signature=[
      tf.TensorSpec([BATCH_SIZE, IMAGE_SIZE], tf.float32),
      tf.TensorSpec([BATCH_SIZE], tf.int64)])
  def train_step(images, labels):
    with tf.GradientTape() as tape:
      loss = nn.summed_cross_entropy(model(images, training=True), labels)
    gradients = tape.gradient(loss, model.trainable_weights)
    optimizer.apply_gradients(zip(gradients, model.trainable_weights))
    return loss

  return train_step


def time_steps(train_step, batches, steps):
  """Seconds for ``steps`` calls of train_step, cycling through batches."""
  start = time.perf_counter()
  for step in range(steps):
    loss = train_step(*batches[step % len(batches)])
  loss.numpy()  # wait for the last step
  return time.perf_counter() - start


def main(argv):
  del argv
  mnist = load_mnist(validation_size=5000)
  batches = [tuple(map(tf.constant, nn.ordered_batch(
      mnist.train.images, mnist.train.labels, BATCH_SIZE, step)))
             for step in range(200)]
  weights = initial_weights(seed=0)
  ours = BatchNormNet(weights)
  steps = {"ours": make_train_step(ours, SGD(ours.weights, LEARNING_RATE),
                                   BATCH_SIZE),
           "keras": keras_train_step(keras_twin(weights))}
  for train_step in steps.values():
    time_steps(train_step, batches, 100)  # trace and warm up
  seconds = {name: [] for name in steps}
  for _ in range(FLAGS.repeats):
    for name, train_step in steps.items():
      seconds[name].append(time_steps(train_step, batches, FLAGS.steps))
  median = {name: statistics.median(values) for name, values in seconds.items()}
  print(f"batch {BATCH_SIZE}, {FLAGS.steps} steps x {FLAGS.repeats} repeats, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}")
  for name in steps:
    print(f"  {name:>5}: {FLAGS.steps / median[name]:8,.0f} steps/s  "
          f"(median of {', '.join(f'{s:.3f}' for s in seconds[name])} s)")
  ratio = median["ours"] / median["keras"]
  print(f"ours time / keras time = {ratio:.3f}  (target <= 1.1: "
        f"{'met' if ratio <= 1.1 else 'NOT met'})")


if __name__ == "__main__":
  cli.run(main)
