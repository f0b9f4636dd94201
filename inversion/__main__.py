"""Trains the MNIST classifier, learns its inverse, and inverts it by
gradient descent too.  ``python -m inversion --helpfull`` lists the flags.

Stages (each logs progress lines and TensorBoard scalars):
  1. classifier: Adagrad on summed cross-entropy, batches in order;
  2. inverse: W2_inv, W1_inv by Adagrad, classifier frozen, only on examples
     it classifies with confidence > --confidence;
  3. generated digits 1-9: free layer-2 codes by gradient descent, projected
     back; the 100 layer-2 features projected back;
  4. gradient inversion of the first --num_eval test images and
     class-conditional images, both by Adam on the pixels' logits;
  5. figures (PNG + TensorBoard) and results.json.
"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

from absl import flags
import numpy as np
import tensorflow as tf

from inversion import model
from inversion import plots
from tfscratch.lab import cli
from tfscratch import optimizers
from tfscratch.lab.errors import DataError
from tfscratch.lab.errors import ScratchError
from tfscratch.lab.mnist import load_mnist
from tfscratch.nn import ordered_batch
from tfscratch.lab.outputs import RunOutputs
from tfscratch.lab.progress import Progress
from tfscratch.lab.seeding import set_seed

FLAGS = flags.FLAGS
flags.DEFINE_integer("train_steps", 2000, "Classifier training steps.",
                     lower_bound=1)
flags.DEFINE_integer("batch_size", 1000, "Examples per training batch, for "
                     "the classifier and for inverse training.", lower_bound=1)
flags.DEFINE_float("learning_rate", 0.01, "Classifier Adagrad learning rate.")
flags.DEFINE_integer("inverse_steps", 1000, "Inverse-training steps "
                     "(W1_inv, W2_inv).", lower_bound=1)
flags.DEFINE_float("inverse_learning_rate", 0.01, "Inverse-training Adagrad "
                   "learning rate.")
flags.DEFINE_float("confidence", 0.8, "Inverse training uses only examples "
                   "whose largest softmax probability exceeds this.",
                   lower_bound=0.0)
flags.DEFINE_integer("generate_steps", 1000, "Gradient-descent steps on the "
                     "free layer-2 codes of the generated digits.",
                     lower_bound=1)
flags.DEFINE_float("generate_learning_rate", 1.0, "Gradient-descent learning "
                   "rate for the generated digits' codes.")
flags.DEFINE_integer("inversion_steps", 1000, "Adam steps of gradient "
                     "inversion and of the class-conditional images.",
                     lower_bound=1)
flags.DEFINE_float("inversion_learning_rate", 0.1, "Adam learning rate of "
                   "gradient inversion (on the pixels' logits).")
flags.DEFINE_float("tv_weight", 1e-4, "Weight of the total-variation prior "
                   "in gradient inversion (0 turns it off).", lower_bound=0.0)
flags.DEFINE_float("l2_weight", 0.0, "Weight of the squared-norm prior in "
                   "gradient inversion (0, off, by default).", lower_bound=0.0)
flags.DEFINE_float("class_tv_weight", 1e-3, "Weight of the total-variation "
                   "prior for the class-conditional images (no target image "
                   "to match, so a smoother prior than --tv_weight).",
                   lower_bound=0.0)
flags.DEFINE_float("class_l2_weight", 0.0, "Weight of the squared-norm prior "
                   "for the class-conditional images.", lower_bound=0.0)
flags.DEFINE_float("initial_pixel", 0.05, "Value every pixel starts from in "
                   "gradient inversion; dark, like MNIST's background.")
flags.DEFINE_integer("num_eval", 1000, "Test images reconstructed by both "
                     "methods for the L1 error and class agreement (the "
                     "first 36 also make the figures).", lower_bound=36,
                     upper_bound=10000)
flags.DEFINE_integer("log_every", 100, "Steps between progress lines.",
                     lower_bound=1)
cli.define_run_flags(default_output_dir="runs/inversion")
cli.define_data_dir_flag()

for _name in ("learning_rate", "inverse_learning_rate",
              "generate_learning_rate", "inversion_learning_rate"):
  flags.register_validator(_name, lambda value: value > 0,
                           f"--{_name} must be positive")
flags.register_validator("initial_pixel", lambda value: 0 < value < 1,
                         "--initial_pixel must lie strictly between 0 and 1")
flags.register_validator("confidence", lambda value: value < 1,
                         "--confidence must be below 1 (no softmax output "
                         "exceeds 1)")

GENERATED_DIGITS = list(range(1, 10))
FIGURE_IMAGES = 36


def train_classifier(classifier, train, test):
  """Stage 1. Returns the final test accuracy."""
  optimizer = optimizers.Adagrad(classifier.weights, FLAGS.learning_rate)
  train_step = model.make_classifier_train_step(classifier, optimizer,
                                                FLAGS.batch_size)
  probabilities = model.make_probabilities(classifier)
  progress = Progress(FLAGS.train_steps, every=FLAGS.log_every,
                      label="classifier")
  for step in range(FLAGS.train_steps):
    images, labels = ordered_batch(train.images, train.labels,
                                   FLAGS.batch_size, step)
    loss = train_step(images, labels)
    progress.update(step + 1, loss)
    tf.summary.scalar("classifier/loss", loss, step=step + 1)
    if (step + 1) % FLAGS.log_every == 0 or step + 1 == FLAGS.train_steps:
      accuracy = test_accuracy(probabilities, test)
      tf.summary.scalar("classifier/test_accuracy", accuracy, step=step + 1)
  print(f"classifier test accuracy: {accuracy:.4f}", flush=True)
  return accuracy


def test_accuracy(probabilities, split):
  predictions = np.argmax(probabilities(split.images), axis=1)
  return float(np.mean(predictions == split.labels))


def train_inverse(inverse, train):
  """Stage 2: W1_inv, W2_inv on the confidently classified examples.

  Batches continue where classifier training stopped, as the blog's
  ``next_batch`` did.

  Returns:
    The mean fraction of each batch that passed the confidence filter.
  """
  optimizer = optimizers.Adagrad(inverse.weights, FLAGS.inverse_learning_rate)
  train_step = model.make_inverse_train_step(inverse, optimizer)
  probabilities = model.make_probabilities(inverse.classifier)
  progress = Progress(FLAGS.inverse_steps, every=FLAGS.log_every,
                      label="inverse")
  kept = []
  for step in range(FLAGS.inverse_steps):
    images, _ = ordered_batch(train.images, train.labels, FLAGS.batch_size,
                              FLAGS.train_steps + step)
    confident = np.max(probabilities(images), axis=1) > FLAGS.confidence
    kept.append(float(np.mean(confident)))
    if not confident.any():
      continue  # nothing to learn from; the blog would have fed 0 examples
    total, distance, excess = train_step(images[confident])
    progress.update(step + 1, total)
    tf.summary.scalar("inverse/loss", total, step=step + 1)
    tf.summary.scalar("inverse/l1_distance_per_example",
                      distance / confident.sum(), step=step + 1)
    tf.summary.scalar("inverse/excess", excess, step=step + 1)
    tf.summary.scalar("inverse/confident_fraction", kept[-1], step=step + 1)
  if not any(kept):
    raise ScratchError(
        f"no training example was classified with confidence above "
        f"--confidence={FLAGS.confidence} in {FLAGS.inverse_steps} batches, "
        "so the inverse was never trained; lower --confidence or train the "
        "classifier longer")
  return float(np.mean(kept))


def generate_codes(classifier, digits):
  """Stage 3 (blog): free layer-2 pre-activations made confident of digits.

  Returns:
    (z2 (n, 100), confidences (n,)): the codes and the softmax probability
    each gives its digit.
  """
  codes = model.FreeCodes(len(digits), classifier.layer_sizes[2])
  optimizer = optimizers.SGD([codes.z2], FLAGS.generate_learning_rate)
  one_hot = np.eye(classifier.layer_sizes[3], dtype=np.float32)[digits]
  step = model.make_code_step(classifier, codes, optimizer, one_hot)
  progress = Progress(FLAGS.generate_steps, every=FLAGS.log_every * 10,
                      label="generate")
  for index in range(FLAGS.generate_steps):
    loss = step()
    progress.update(index + 1, loss)
    tf.summary.scalar("generate/loss", loss, step=index + 1)
  z2 = codes()
  probabilities = tf.nn.softmax(classifier.readout(tf.sigmoid(z2))).numpy()
  return z2, probabilities[np.arange(len(digits)), digits]


def invert_by_gradient(classifier, loss_fn, count, label):
  """Stage 4: Adam on the logits of ``count`` images to minimise loss_fn."""
  images = model.SigmoidImages(
      count, classifier.layer_sizes[0],
      initial_logit=float(model.logit(FLAGS.initial_pixel)))
  optimizer = optimizers.Adam([images.v], FLAGS.inversion_learning_rate)
  step = model.make_pixel_step(images, optimizer, loss_fn)
  progress = Progress(FLAGS.inversion_steps, every=FLAGS.log_every * 2,
                      label=label)
  for index in range(FLAGS.inversion_steps):
    loss = step()
    progress.update(index + 1, loss / count)
    tf.summary.scalar(f"{label}/loss_per_image", loss / count, step=index + 1)
  return images().numpy()


def reconstruction_metrics(classifier, originals, labels, reconstructions):
  """How close reconstructions are to the originals, and what the net sees.

  Returns a dict:
    l1_error: mean |x - x_rec| per pixel (over images and pixels);
    class_agreement: fraction whose reconstruction the classifier puts in
      the class it gives the original;
    label_agreement: fraction whose reconstruction it classifies as the
      original's true label;
    code_error: mean relative layer-2 mismatch |l2(x_rec) - l2(x)|^2/|l2(x)|^2.
  """
  original_class = np.argmax(classifier(originals).numpy(), axis=1)
  reconstructed_class = np.argmax(classifier(reconstructions).numpy(), axis=1)
  _, target_codes = classifier.hidden(originals)
  return {
      "l1_error": float(np.mean(np.abs(originals - reconstructions))),
      "class_agreement": float(np.mean(reconstructed_class == original_class)),
      "label_agreement": float(np.mean(reconstructed_class == labels)),
      "code_error": float(np.mean(model.code_error(
          classifier, reconstructions, target_codes))),
  }


def load_data():
  mnist = load_mnist(FLAGS.data_dir)
  if FLAGS.batch_size > len(mnist.train):
    raise DataError(f"--batch_size={FLAGS.batch_size} exceeds the "
                    f"{len(mnist.train)} training images")
  if FLAGS.num_eval > len(mnist.test):
    raise DataError(f"--num_eval={FLAGS.num_eval} exceeds the "
                    f"{len(mnist.test)} test images")
  return mnist


def main(argv):
  del argv
  set_seed(FLAGS.seed)
  mnist = load_data()  # before RunOutputs: bad data leaves no run directory
  outputs = RunOutputs(FLAGS.output_dir, overwrite=FLAGS.overwrite)
  classifier = model.Classifier(seed=FLAGS.seed)
  inverse = model.InversePath(classifier, seed=FLAGS.seed)
  evaluation = mnist.test.take(FLAGS.num_eval)
  originals = evaluation.images

  with outputs.summary_writer.as_default():
    accuracy = train_classifier(classifier, mnist.train, mnist.test)
    confident_fraction = train_inverse(inverse, mnist.train)
    _, codes = classifier.hidden(originals)
    learned = inverse(codes)[0].numpy()
    inverse_stage = ("inverse training", FLAGS.inverse_steps)
    plots.save_grids(
        outputs, "inverse_projections",
        [("first 36 test images", originals[:FIGURE_IMAGES]),
         ("inverse projections", learned[:FIGURE_IMAGES])],
        columns=6, stage=inverse_stage[0], step=inverse_stage[1])

    z2, generated_confidence = generate_codes(classifier, GENERATED_DIGITS)
    generated = inverse.from_preactivation(z2)[0].numpy()
    print("generated-digit confidences: " + ", ".join(
        f"{digit}: {p:.4f}" for digit, p in
        zip(GENERATED_DIGITS, generated_confidence)), flush=True)
    plots.save_grids(outputs, "generated_digits",
                     [("generated digits 1-9", generated)], columns=3,
                     stage="code generation", step=FLAGS.generate_steps)

    features = inverse.from_preactivation(
        model.feature_codes(classifier.layer_sizes[2]))[0].numpy()
    # The blog rounds to one decimal before plotting, hiding faint noise.
    plots.save_grids(outputs, "features",
                     [("layer-2 features", np.round(features, 1))],
                     columns=10, stage=inverse_stage[0],
                     step=inverse_stage[1], panel_inches=2.4)

    gradient = invert_by_gradient(
        classifier,
        lambda x: model.code_matching_loss(classifier, x, codes,
                                           FLAGS.tv_weight, FLAGS.l2_weight),
        FLAGS.num_eval, "gradient_inverse")
    plots.save_grids(
        outputs, "reconstructions",
        [("test images", originals[:FIGURE_IMAGES]),
         ("learned inverse", learned[:FIGURE_IMAGES]),
         ("gradient inverse", gradient[:FIGURE_IMAGES])],
        columns=6, stage="gradient inversion", step=FLAGS.inversion_steps)

    digit_labels = tf.constant(GENERATED_DIGITS, tf.int64)
    class_images = invert_by_gradient(
        classifier,
        lambda x: model.class_image_loss(classifier, x, digit_labels,
                                         FLAGS.class_tv_weight,
                                         FLAGS.class_l2_weight),
        len(GENERATED_DIGITS), "class_images")
    class_confidence = tf.nn.softmax(classifier(class_images)).numpy()[
        np.arange(len(GENERATED_DIGITS)), GENERATED_DIGITS]
    plots.save_grids(
        outputs, "class_images",
        [("codes projected back (blog)", generated),
         ("pixels optimised (gradient)", class_images)],
        columns=3, stage="class-conditional inversion",
        step=FLAGS.inversion_steps)

  reconstruction = {
      "learned_inverse": reconstruction_metrics(
          classifier, originals, evaluation.labels, learned),
      "gradient_inverse": reconstruction_metrics(
          classifier, originals, evaluation.labels, gradient),
  }
  # What L1 error costs nothing: MNIST is mostly black background, so a
  # blank image already scores well on this measure.
  baselines = {
      "black_image": float(np.mean(np.abs(originals))),
      "mean_training_image": float(np.mean(np.abs(
          originals - mnist.train.images.mean(axis=0)))),
  }
  for method, metrics in reconstruction.items():
    print(f"{method}: " + ", ".join(f"{k} {v:.4f}" for k, v in
                                    metrics.items()), flush=True)
  outputs.finish({
      "test_accuracy": accuracy,
      "generated_confidence": generated_confidence.tolist(),
      "reconstruction": reconstruction,
      "reconstruction_images": FLAGS.num_eval,
      "l1_error_baselines": baselines,
      "class_image_confidence": class_confidence.tolist(),
      "inverse_confident_fraction": confident_fraction,
  })


if __name__ == "__main__":
  cli.run(main)
