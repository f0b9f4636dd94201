"""The experiment, stage by stage, as plain functions over a frozen Config.

``train`` runs five stages in order and returns every number and image the
run reports (``Results``); it writes nothing and prints nothing:

  1. train_classifier          the 784-100-100-10 MLP, Adagrad on summed
                               cross-entropy, batches drawn as the blog's
                               ``mnist.train.next_batch`` drew them;
  2. train_inverse             W2_inv, W1_inv by Adagrad with the classifier
                               frozen, only on the examples it classifies
                               with confidence above ``confidence``;
  3. generate_digits           free layer-2 codes made confident of the
                               digits 1-9 by gradient descent, then
                               projected back (the blog);
  4. invert_by_gradient        gradient inversion: Adam on the pixels of
                               images whose layer-2 code must match a test
                               image's (Mahendran & Vedaldi);
  5. class_conditional_images  the same descent on pixels, for a class.

Every stage trains in the graph, K steps per call: ``tfscratch.loop``'s
``compile_steps`` turns a Python ``step(i)`` (gather batch i from data held
in the graph, take one gradient step, return the loss) into one
``tf.function`` that runs K of them in a ``tf.while_loop``. Python is entered
once per K steps, where the losses are read back for the progress line, so
K is ``log_every`` (or up to the next evaluation). Each compiled function is
traced once (its input signature is fixed); ``Results.trace_counts`` says
so.

Progress reaches the caller only through ``logger``: ``train`` asks
``logger(stage, total_steps)`` for a ``log`` function at the start of each
stage and calls ``log(first_step, losses, **scalars)`` after every call into
the graph (``__main__`` prints, guards and writes TensorBoard there).
"""
import dataclasses

import numpy as np
import tensorflow as tf

from inversion import model
from tfscratch import loop
from tfscratch import optimizers
from tfscratch.nn import summed_cross_entropy

GENERATED_DIGITS = (1, 2, 3, 4, 5, 6, 7, 8, 9)
MAX_STEPS_PER_CALL = 10_000
# The batches' order is drawn with the stateless seed (seed, 5); model.py
# draws the weights with (seed, 0) .. (seed, 4).
BATCH_SEED_STREAM = 5
# The two of the first 36 test images the blog points at: "the 9th sample
# and the 3rd to last sample each get transformed to a 6".
BLOG_EXAMPLES = (8, 33)


@dataclasses.dataclass(frozen=True)
class Config:
  """Every setting of a run; ``python -m inversion`` has a flag per field."""
  # 1. The classifier.
  steps: int = 2000
  batch_size: int = 1000            # for the classifier and the inverse
  batch_order: str = "shuffled"     # loop.BATCH_ORDERS; see batch_rows
  learning_rate: float = 0.01
  eval_every: int = 100             # steps between test-accuracy readings
  # 2. The learned inverse.
  inverse_steps: int = 1000
  inverse_learning_rate: float = 0.01
  confidence: float = 0.8           # keep examples with max softmax above
  # 3. Generated digits.
  generate_steps: int = 1000
  generate_learning_rate: float = 1.0
  # 4. and 5. Gradient inversion and class images (Adam on pixel logits).
  inversion_steps: int = 1000
  inversion_learning_rate: float = 0.1
  tv_weight: float = 1e-4
  l2_weight: float = 0.0
  class_tv_weight: float = 1e-3
  class_l2_weight: float = 0.0
  initial_pixel: float = 0.05
  num_eval: int = 1000              # test images reconstructed and measured
  # Everything.
  log_every: int = 100
  seed: int = 0


@dataclasses.dataclass(frozen=True)
class Results:
  """What a run found. Images are (n, 784) float32 arrays, raw (not scaled
  for display); ``originals`` are the first ``num_eval`` test images."""
  test_accuracy: float
  confident_fraction: float         # mean share of a batch the inverse saw
  originals: np.ndarray
  learned: np.ndarray               # their learned-inverse projections
  gradient: np.ndarray              # their gradient inversions
  generated: np.ndarray             # digits 1-9 from codes, projected back
  generated_confidence: np.ndarray  # (9,) softmax of each code's digit
  features: np.ndarray              # (100, 784) one layer-2 unit each
  class_images: np.ndarray          # digits 1-9 by optimising pixels
  class_image_confidence: np.ndarray
  reconstruction: dict              # method -> reconstruction_metrics
  examples: dict                    # BLOG_EXAMPLES -> example_classes
  l1_error_baselines: dict          # L1 errors that cost nothing
  trace_counts: dict                # compiled function -> times traced


def train(config, mnist, logger=None):
  """Runs the five stages; returns Results.

  Args:
    config: a Config.
    mnist: ``.train`` and ``.test``, each with ``.images`` (n, 784) float32
      in [0, 1] and ``.labels`` (n,) int64 (``tfscratch.lab.mnist.Mnist``;
      the blog's ``.train`` is ``load_mnist(validation_first=True)``'s).
    logger: None, or ``logger(stage, total_steps)`` returning the ``log``
      function of that stage (module docstring).
  """
  logger = logger or (lambda stage, total_steps: None)
  classifier = model.Classifier(seed=config.seed)
  inverse = model.InversePath(classifier, seed=config.seed)
  # The training set lives in the graph; each step gathers its own batch.
  images = tf.constant(mnist.train.images)
  labels = tf.constant(mnist.train.labels)
  predict = make_predict(classifier)

  rows = batch_rows(config, len(mnist.train.images))
  test_accuracy, classifier_traces = train_classifier(
      classifier, images, labels, rows, mnist.test, predict, config,
      logger("classifier", config.steps))
  confident_fraction, inverse_traces = train_inverse(
      inverse, images, rows, config, logger("inverse", config.inverse_steps))

  originals = mnist.test.images[:config.num_eval]
  _, codes = classifier.hidden(originals)
  learned = inverse(codes)[0].numpy()

  z2, generated_confidence, generate_traces = generate_digits(
      classifier, config, logger("generate", config.generate_steps))
  generated = inverse.from_preactivation(z2)[0].numpy()
  features = inverse.from_preactivation(
      model.feature_codes(classifier.layer_sizes[2]))[0].numpy()

  gradient, gradient_traces = invert_by_gradient(
      classifier, codes, config,
      logger("gradient_inverse", config.inversion_steps))
  class_images, class_confidence, class_traces = class_conditional_images(
      classifier, config, logger("class_images", config.inversion_steps))

  labels_eval = mnist.test.labels[:config.num_eval]
  return Results(
      test_accuracy=test_accuracy,
      confident_fraction=confident_fraction,
      originals=originals,
      learned=learned,
      gradient=gradient,
      generated=generated,
      generated_confidence=generated_confidence,
      features=features,
      class_images=class_images,
      class_image_confidence=class_confidence,
      reconstruction={
          "learned_inverse": reconstruction_metrics(
              classifier, predict, originals, labels_eval, learned),
          "gradient_inverse": reconstruction_metrics(
              classifier, predict, originals, labels_eval, gradient),
      },
      examples=example_classes(
          classifier, originals, labels_eval,
          {"learned_inverse": learned, "gradient_inverse": gradient}),
      l1_error_baselines=l1_error_baselines(originals, mnist.train.images),
      trace_counts={**classifier_traces, **inverse_traces, **generate_traces,
                    **gradient_traces, **class_traces,
                    **loop.trace_counts(predict=predict)},
  )


# ---------------------------------------------------------------------------
# 1. The classifier.
# ---------------------------------------------------------------------------


def batch_rows(config, count):
  """``rows(i)``: the training rows (int64 (batch_size,)) of batch i.

  The blog took every batch with ``mnist.train.next_batch(1000)``: the
  classifier's 2,000 and, continuing the same walk, the inverse's 1,000
  (``train_inverse`` asks for batches ``steps`` onward). In 2016 that meant
  the 55,000 training images in file order for the first epoch (55
  batches), then a new random permutation each epoch
  (``config.batch_order="shuffled"``: ``loop.shuffled_indices``, seeded by
  ``(config.seed, BATCH_SEED_STREAM)``, through ``loop.ShuffledBatches``,
  which draws each epoch's permutation once instead of at every step).
  ``"ordered"`` walks the file order every epoch (``loop.ordered_indices``),
  as this package did before. (``loop.make_walk`` builds either.)
  """
  return loop.make_walk(config.batch_order, config.batch_size, count,
                        (config.seed, BATCH_SEED_STREAM))


def train_classifier(classifier, images, labels, rows, test, predict, config,
                     log=None):
  """Stage 1: Adagrad on the summed cross-entropy of the batches ``rows(i)``
  (``batch_rows``).

  The test accuracy is measured every ``eval_every`` steps and passed to
  ``log`` as ``test_accuracy``.

  Returns:
    (test accuracy after the last step, trace counts).
  """
  optimizer = optimizers.Adagrad(classifier.weights, config.learning_rate)
  train_steps = loop.compile_steps(classifier_step(
      classifier, optimizer, images, labels, rows))
  accuracy = None
  for first, count in chunks(config.steps, config.log_every,
                             config.eval_every):
    losses = train_steps(first, count).numpy()
    done = first + count
    scalars = {}
    if done % config.eval_every == 0 or done == config.steps:
      accuracy = accuracy_on(predict, test)
      scalars["test_accuracy"] = accuracy
    if log:
      log(first, losses, **scalars)
  return accuracy, loop.trace_counts(classifier_steps=train_steps)


def classifier_step(classifier, optimizer, images, labels, rows):
  """``step(i) -> loss``: one Adagrad step on the rows ``rows(i)`` of
  ``images``, ``labels``; the loss is the summed cross-entropy before the
  update."""

  def step(i):
    batch = rows(i)
    x, y = tf.gather(images, batch), tf.gather(labels, batch)
    with tf.GradientTape() as tape:
      loss = summed_cross_entropy(classifier(x), y)
    optimizer.apply(tape.gradient(loss, classifier.weights))
    return loss

  return step


def make_predict(classifier):
  """The compiled argmax of the logits: classes (n,) for any n images."""

  @tf.function(input_signature=[
      tf.TensorSpec([None, classifier.layer_sizes[0]], classifier.dtype)])
  def predict(images):
    return tf.argmax(classifier(images), axis=1)

  return predict


def accuracy_on(predict, split):
  """Fraction of ``split`` whose predicted class is its label."""
  return float(np.mean(predict(split.images).numpy() == split.labels))


# ---------------------------------------------------------------------------
# 2. The learned inverse.
# ---------------------------------------------------------------------------


class NoConfidentExamples(ValueError):
  """Inverse training found no example to learn from."""


def train_inverse(inverse, images, rows, config, log=None):
  """Stage 2: W1_inv and W2_inv on the confidently classified examples.

  Batches continue the walk where classifier training stopped (batch
  ``rows(config.steps + i)`` at step i), as the blog's ``next_batch`` did. The
  loss passed to ``log`` is the summed ``inverse_loss`` (0 for a batch with
  no confident example, which is skipped), with the per-step scalars
  ``l1_distance_per_example``, ``excess`` and ``confident_fraction`` (NaN
  where the batch was skipped).

  Returns:
    (mean fraction of a batch that passed the confidence filter, trace
    counts).
  Raises:
    NoConfidentExamples: no batch held a confident example, so the inverse
      was never trained.
  """
  optimizer = optimizers.Adagrad(inverse.weights, config.inverse_learning_rate)
  step = inverse_step(inverse, optimizer, images, rows, config.confidence,
                      first_batch=config.steps)
  train_steps = loop.compile_steps(step)
  fractions = []
  for first, count in chunks(config.inverse_steps, config.log_every):
    total, distance, excess, kept = train_steps(first, count).numpy().T
    fraction = kept.astype(np.float64) / config.batch_size
    fractions.append(fraction)
    if log:
      skipped = np.where(kept > 0, 1.0, np.nan)
      log(first, total,
          l1_distance_per_example=distance / np.maximum(kept, 1) * skipped,
          excess=excess * skipped, confident_fraction=fraction * skipped)
  fractions = np.concatenate(fractions)
  if not fractions.any():
    raise NoConfidentExamples(
        f"no training example was classified with confidence above "
        f"--confidence={config.confidence} in {config.inverse_steps} batches, "
        "so the inverse was never trained; lower --confidence or train the "
        "classifier longer")
  return float(np.mean(fractions)), loop.trace_counts(
      inverse_steps=train_steps, inverse_step=step)


def inverse_step(inverse, optimizer, images, rows, confidence,
                 first_batch=0):
  """``step(i) -> (4,)``: one Adagrad step of the inverse; the classifier
  stays frozen.

  Step i takes the rows ``rows(first_batch + i)`` of ``images`` (see
  ``batch_rows``) and keeps only the examples whose
  largest softmax probability exceeds ``confidence`` (``tf.boolean_mask``:
  their number varies from batch to batch, which the graph handles without
  retracing). A batch with none is skipped by ``tf.cond``: the loss over no
  example is not defined (its min and max would be +-inf).

  The step returns the summed loss, the L1 distance, the range penalty
  (``model.inverse_loss``) and the number of examples kept (all 0 for a
  skipped batch). It is a ``tf.function`` of its own (see the end).
  """
  classifier = inverse.classifier

  def learn(x):
    # Outside the tape: the classifier is frozen, nothing to differentiate.
    _, l2 = classifier.hidden(x)
    with tf.GradientTape() as tape:
      x_inv, l1_inv = inverse(l2)
      total, distance, excess = model.inverse_loss(x, x_inv, l1_inv)
    optimizer.apply(tape.gradient(total, inverse.weights))
    return tf.stack([total, distance, excess])

  def step(i):
    x = tf.gather(images, rows(first_batch + i))
    probabilities = tf.nn.softmax(classifier(x))
    x = tf.boolean_mask(x, tf.reduce_max(probabilities, axis=1) > confidence)
    kept = tf.shape(x)[0]
    losses = tf.cond(kept > 0, lambda: learn(x),
                     lambda: tf.zeros([3], classifier.dtype))
    return tf.concat([losses, [tf.cast(kept, classifier.dtype)]], axis=0)

  # l1_inv feeds the loss four ways (squash's row min and row max, the range
  # penalty's min and max), so its gradient is a sum of several terms.
  # Grappler (TensorFlow's graph optimiser) regroups such sums using what it
  # knows of the shapes, and in a while-loop body it knows less than in a
  # function of its own: the sum would be added in another order and the
  # weights would differ in their last bit from one step per call. Compiled
  # as a function of its own, the step is optimised as it was when each step
  # was a call, and the numbers stay bit for bit the same.
  return tf.function(step, input_signature=[tf.TensorSpec([], tf.int32)])


# ---------------------------------------------------------------------------
# 3. Generated digits (the blog).
# ---------------------------------------------------------------------------


def generate_digits(classifier, config, log=None):
  """Stage 3: free layer-2 pre-activations made confident of digits 1-9.

  Plain gradient descent on ``model.code_class_loss`` from z2 = 0.

  Returns:
    (z2 (9, 100), confidences (9,): the softmax probability each code gives
    its digit, trace counts).
  """
  digits = list(GENERATED_DIGITS)
  codes = model.FreeCodes(len(digits), classifier.layer_sizes[2])
  optimizer = optimizers.SGD([codes.z2], config.generate_learning_rate)
  one_hot = np.eye(classifier.layer_sizes[3], dtype=np.float32)[digits]
  train_steps = loop.compile_steps(
      code_step(classifier, codes, optimizer, one_hot))
  run_in_chunks(train_steps, config.generate_steps, config.log_every, log)
  z2 = codes()
  probabilities = tf.nn.softmax(classifier.readout(tf.sigmoid(z2))).numpy()
  return (z2, probabilities[np.arange(len(digits)), digits],
          loop.trace_counts(generate_steps=train_steps))


def code_step(classifier, codes, optimizer, one_hot):
  """``step(i) -> loss``: one step moving ``codes`` toward the ``one_hot``
  classes; the loss is ``code_class_loss`` before the update."""
  one_hot = tf.constant(one_hot, classifier.dtype)

  def step(i):
    del i  # every step optimises the same codes
    with tf.GradientTape() as tape:
      loss = model.code_class_loss(classifier, codes(), one_hot)
    optimizer.apply(tape.gradient(loss, [codes.z2]))
    return loss

  return step


# ---------------------------------------------------------------------------
# 4. and 5. Gradient inversion (Mahendran & Vedaldi, 2015): the pixels.
# ---------------------------------------------------------------------------


def invert_by_gradient(classifier, target_codes, config, log=None):
  """Stage 4: images whose layer-2 codes match ``target_codes`` (n, 100),
  under the prior ``tv_weight``, ``l2_weight``.

  Returns:
    (images (n, 784) in (0, 1), trace counts).
  """
  images, train_steps = optimise_pixels(
      lambda x: model.code_matching_loss(classifier, x, target_codes,
                                         config.tv_weight, config.l2_weight),
      len(target_codes), classifier, config, log)
  return images, loop.trace_counts(gradient_inverse_steps=train_steps)


def class_conditional_images(classifier, config, log=None):
  """Stage 5: one image per digit 1-9, its pixels optimised for that class
  under the prior ``class_tv_weight``, ``class_l2_weight``.

  Returns:
    (images (9, 784), confidences (9,) the classifier gives each its digit,
    trace counts).
  """
  digits = list(GENERATED_DIGITS)
  labels = tf.constant(digits, tf.int64)
  images, train_steps = optimise_pixels(
      lambda x: model.class_image_loss(classifier, x, labels,
                                       config.class_tv_weight,
                                       config.class_l2_weight),
      len(digits), classifier, config, log)
  probabilities = tf.nn.softmax(classifier(images)).numpy()
  return (images, probabilities[np.arange(len(digits)), digits],
          loop.trace_counts(class_image_steps=train_steps))


def optimise_pixels(loss_fn, count, classifier, config, log=None):
  """Adam on the logits of ``count`` images, all starting at
  ``initial_pixel``, for ``inversion_steps`` steps down ``loss_fn``.

  Returns:
    (images (count, 784) in (0, 1), the compiled loop).
  """
  images = model.SigmoidImages(
      count, classifier.layer_sizes[0],
      initial_logit=float(model.logit(config.initial_pixel)))
  optimizer = optimizers.Adam([images.v], config.inversion_learning_rate)
  train_steps = loop.compile_steps(pixel_step(images, optimizer, loss_fn))
  run_in_chunks(train_steps, config.inversion_steps, config.log_every, log)
  return images().numpy(), train_steps


def pixel_step(images, optimizer, loss_fn):
  """``step(i) -> loss``: one step moving ``images.v`` down
  ``loss_fn(images())``.

  ``loss_fn`` closes over its fixed targets (codes or labels), so every
  step is the same computation. The loss returned is per image (before the
  update, divided by the number of images).
  """
  count = images.v.shape[0]

  def step(i):
    del i  # every step optimises the same images
    with tf.GradientTape() as tape:
      loss = loss_fn(images())
    optimizer.apply(tape.gradient(loss, [images.v]))
    return loss / count

  return step


# ---------------------------------------------------------------------------
# Measuring the reconstructions.
# ---------------------------------------------------------------------------


def reconstruction_metrics(classifier, predict, originals, labels,
                           reconstructions):
  """How close reconstructions are to the originals, and what the net sees.

  Returns a dict:
    l1_error: mean |x - x_rec| per pixel (over images and pixels);
    class_agreement: fraction whose reconstruction the classifier puts in
      the class it gives the original;
    label_agreement: fraction whose reconstruction it classifies as the
      original's true label;
    code_error: mean relative layer-2 mismatch |l2(x_rec) - l2(x)|^2/|l2(x)|^2.
  """
  original_class = predict(originals).numpy()
  reconstructed_class = predict(reconstructions).numpy()
  _, target_codes = classifier.hidden(originals)
  return {
      "l1_error": float(np.mean(np.abs(originals - reconstructions))),
      "class_agreement": float(np.mean(reconstructed_class == original_class)),
      "label_agreement": float(np.mean(reconstructed_class == labels)),
      "code_error": float(np.mean(model.code_error(
          classifier, reconstructions, target_codes))),
  }


def example_classes(classifier, originals, labels, reconstructions,
                    indices=BLOG_EXAMPLES):
  """What the classifier makes of a few test images and of their
  reconstructions (the blog's two examples by default).

  Args:
    originals, labels: the test images (n, 784) and their labels (n,).
    reconstructions: method -> (n, 784) images, row i reconstructing
      ``originals[i]``.
  Returns:
    ``{"test_image_<i>": {"label": y, "original": c, "<method>": c, ...}}``
    where each ``c`` is ``{"class": argmax, "probability": its softmax
    probability, "label_probability": the softmax probability of y}``.
  """
  indices = list(indices)
  images = {"original": originals[indices],
            **{method: images[indices]
               for method, images in reconstructions.items()}}
  probabilities = {name: tf.nn.softmax(classifier(batch)).numpy()
                   for name, batch in images.items()}
  examples = {}
  for row, index in enumerate(indices):
    label = int(labels[index])
    examples[f"test_image_{index}"] = {"label": label, **{
        name: {"class": int(np.argmax(p[row])),
               "probability": float(np.max(p[row])),
               "label_probability": float(p[row, label])}
        for name, p in probabilities.items()}}
  return examples


def l1_error_baselines(originals, training_images):
  """The L1 errors that cost nothing: MNIST is mostly black background, so
  a blank image already scores well on this measure."""
  return {
      "black_image": float(np.mean(np.abs(originals))),
      "mean_training_image": float(np.mean(np.abs(
          originals - training_images.mean(axis=0)))),
  }


# ---------------------------------------------------------------------------
# Running a compiled loop.
# ---------------------------------------------------------------------------


def chunks(total_steps, *intervals):
  """Splits steps 0 .. total_steps - 1 into calls (first_step, num_steps)
  that end at every multiple of each interval and at the last step.

  A call returns the loss of each of its steps, so no call is longer than
  MAX_STEPS_PER_CALL whatever the intervals: memory stays bounded.
  """
  intervals += (MAX_STEPS_PER_CALL,)
  done = 0
  while done < total_steps:
    end = min([total_steps] + [(done // n + 1) * n for n in intervals])
    yield done, end - done
    done = end


def run_in_chunks(train_steps, total_steps, log_every, log=None):
  """Calls ``train_steps`` for ``total_steps`` steps, ``log_every`` per
  call, handing each call's losses to ``log``."""
  for first, count in chunks(total_steps, log_every):
    losses = train_steps(first, count).numpy()
    if log:
      log(first, losses)
