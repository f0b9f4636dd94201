"""The maths of the experiment: the classifier, its learned inverse, and the
objectives that turn codes and pixels into images.

The classifier (R2RT's model; x is a batch of flattened 28x28 images):

  l1     = sigmoid(x  W1 + b1)      x: (batch, 784)   W1: (784, 100)
  l2     = sigmoid(l1 W2 + b2)      l1, l2: (batch, 100)   W2: (100, 100)
  logits = l2 W3 + b3               logits: (batch, 10)    W3: (100, 10)

Weights start from a normal with stddev 0.1 truncated at 2 stddev, biases at
0.1. The blog calls W3, b3 ``w``, ``b``.

The learned inverse runs the network backwards. A sigmoid is undone exactly
by its inverse, the logit; a linear map is not invertible in general
(784 -> 100 throws information away), so each is undone by a learned matrix:

  z2        = logit(l2)                         layer 2's pre-activation again
  l1_inv    = (z2 - b2) W2_inv                  W2_inv: (100, 100)
  x_inv     = (logit(squash(l1_inv)) - b1) W1_inv    W1_inv: (100, 784)

``squash`` is needed because nothing makes l1_inv a valid sigmoid output: its
values can fall outside (0, 1), where the logit is undefined. W2_inv and
W1_inv are trained with the classifier frozen (see ``inverse_loss``).

Two more ways to make images from the frozen classifier, each a variable
module plus the loss it descends (``train.py`` runs the descents):

  FreeCodes + code_class_loss            the blog's generated digits: layer-2
                                         codes made confident of a class,
                                         then projected back by the inverse
  SigmoidImages + code_matching_loss     gradient inversion (Mahendran &
                                         Vedaldi): pixels whose layer-2 code
                                         matches a target, under a prior
  SigmoidImages + class_image_loss       pixels optimised for a class
"""
import math

import tensorflow as tf

from tfscratch.nn import NUM_CLASSES, NUM_PIXELS, truncated_normal

LAYER_SIZES = (NUM_PIXELS, 100, 100, NUM_CLASSES)
WEIGHT_STDDEV = 0.1
BIAS_INIT = 0.1
# squash maps each row onto [0.005, 0.995]: (0 - 0.5) * 0.99 + 0.5 = 0.005.
SQUASH_SHRINK = 0.99


def logit(p):
  """The inverse of the sigmoid, element-wise: log(p / (1 - p)).

  Finite exactly for 0 < p < 1; logit(0) = -inf, logit(1) = +inf and values
  outside [0, 1] give NaN. It is computed as log(p) - log1p(-p), the same
  value as the blog's log(p / (1 - p)), but with 1 - p never rounded before
  the logarithm (log1p), which keeps precision for p near 0.
  """
  return tf.math.log(p) - tf.math.log1p(-p)


def squash(p):
  """Rescales each row of p (one row per example) into the open (0, 1).

    shifted = p - min(row)               now in [0, max(row) - min(row)]
    scaled  = shifted / max(shifted)     now in [0, 1]
    squash  = (scaled - 0.5) * 0.99 + 0.5   now in [0.005, 0.995]

  The last line shrinks [0, 1] by 0.99 about its centre, so the result stays
  strictly inside (0, 1) and ``logit(squash(p))`` is finite (|.| <= 5.3).

  A constant row (max(shifted) = 0) would divide 0 by 0; it maps to 0.5, the
  centre, instead of the blog's NaN. Rows must be finite with a finite range
  (max - min must not overflow).

  Args:
    p: (batch, n).
  Returns:
    (batch, n), each row an affine image of the same row of p.
  """
  shifted = p - tf.reduce_min(p, axis=1, keepdims=True)
  spread = tf.reduce_max(shifted, axis=1, keepdims=True)
  constant = spread <= 0
  # The division must not see 0 even in the discarded branch of tf.where:
  # its NaN gradient would otherwise leak into the gradient of the kept one.
  scaled = tf.where(constant, tf.constant(0.5, p.dtype),
                    shifted / tf.where(constant, tf.ones_like(spread), spread))
  return (scaled - 0.5) * SQUASH_SHRINK + 0.5


class Classifier(tf.Module):
  """The 784-100-100-10 sigmoid MLP (module docstring for the equations).

  Args:
    layer_sizes: (inputs, hidden 1, hidden 2, classes); tests use tiny ones.
    seed: the weights are drawn with stateless seeds (seed, 0..2), so the
      same seed gives the same network.
    dtype: tf.float32 normally; tf.float64 for finite-difference tests.
  """

  def __init__(self, layer_sizes=LAYER_SIZES, seed=0, dtype=tf.float32,
               name=None):
    super().__init__(name=name)
    self.layer_sizes = tuple(layer_sizes)
    self.dtype = dtype
    n_in, n_1, n_2, n_out = self.layer_sizes
    self.W1 = _weight((n_in, n_1), (seed, 0), dtype, "W1")
    self.b1 = _bias(n_1, dtype, "b1")
    self.W2 = _weight((n_1, n_2), (seed, 1), dtype, "W2")
    self.b2 = _bias(n_2, dtype, "b2")
    self.W3 = _weight((n_2, n_out), (seed, 2), dtype, "W3")
    self.b3 = _bias(n_out, dtype, "b3")

  @property
  def weights(self):
    """[W1, b1, W2, b2, W3, b3]: the order of the Keras twin's get_weights()."""
    return [self.W1, self.b1, self.W2, self.b2, self.W3, self.b3]

  def hidden(self, x):
    """The two hidden layers (l1, l2), each (batch, 100), for x (batch, 784)."""
    l1 = tf.sigmoid(x @ self.W1 + self.b1)
    l2 = tf.sigmoid(l1 @ self.W2 + self.b2)
    return l1, l2

  def readout(self, l2):
    """Logits (batch, 10) from layer 2; on its own for codes made up freely."""
    return l2 @ self.W3 + self.b3

  def __call__(self, x):
    """Logits (batch, 10) for images x (batch, 784)."""
    return self.readout(self.hidden(x)[1])


class InversePath(tf.Module):
  """The learned inverse of ``classifier`` from layer 2 back to the pixels.

  Only W2_inv and W1_inv belong to this module's ``weights``; b1 and b2 are
  read from the (frozen) classifier at every call.

  Args:
    classifier: the trained Classifier being inverted.
    seed: W2_inv and W1_inv are drawn with stateless seeds (seed, 3), (seed, 4),
      from the same truncated normal as the classifier's weights.
  """

  def __init__(self, classifier, seed=0, name=None):
    super().__init__(name=name)
    self.classifier = classifier
    n_in, n_1, n_2, _ = classifier.layer_sizes
    dtype = classifier.dtype
    self.W2_inv = _weight((n_2, n_1), (seed, 3), dtype, "W2_inv")
    self.W1_inv = _weight((n_1, n_in), (seed, 4), dtype, "W1_inv")

  @property
  def weights(self):
    """[W1_inv, W2_inv], the variables inverse training updates."""
    return [self.W1_inv, self.W2_inv]

  def from_preactivation(self, z2):
    """Projects layer-2 pre-activations z2 (batch, 100) back to pixels.

    Returns:
      x_inv: (batch, 784), the inverse projection (unbounded: nothing forces
        it into [0, 1]).
      l1_inv: (batch, 100), layer 1's inverse before ``squash``.
    """
    l1_inv = (z2 - self.classifier.b2) @ self.W2_inv
    x_inv = (logit(squash(l1_inv)) - self.classifier.b1) @ self.W1_inv
    return x_inv, l1_inv

  def __call__(self, l2):
    """``from_preactivation(logit(l2))`` for layer-2 outputs l2 (batch, 100)."""
    return self.from_preactivation(logit(l2))


def inverse_loss(x, x_inv, l1_inv):
  """The blog's inverse-training objective: L1 distance + range penalty.

    distance = sum over batch and pixels of |x - x_inv|
    excess   = (min l1_inv)^2 / 2 + (max l1_inv - 1)^2 / 2

  min and max run over the whole batch (the blog's
  ``l2_loss(reduce_min(l1_inv)) + l2_loss(reduce_max(l1_inv - 1))``).
  ``excess`` is zero only when l1_inv spans exactly [0, 1]: it pulls the
  un-squashed inverse toward the range a sigmoid output has, so that squash
  has little left to correct. (It is not a one-sided hinge: a batch lying
  strictly inside [0, 1] is pulled outward too.)

  Returns:
    (total, distance, excess), scalars.
  """
  distance = tf.reduce_sum(tf.abs(x - x_inv))
  excess = (0.5 * tf.square(tf.reduce_min(l1_inv)) +
            0.5 * tf.square(tf.reduce_max(l1_inv) - 1.0))
  return distance + excess, distance, excess


class FreeCodes(tf.Module):
  """``count`` free layer-2 pre-activations z2 (count, n), all starting at 0.

  The blog's ``fake_l2``: the classifier sees sigmoid(z2) as its layer 2, and
  the inverse path projects z2 back to pixels.
  """

  def __init__(self, count, size, dtype=tf.float32, name=None):
    super().__init__(name=name)
    self.z2 = tf.Variable(tf.zeros([count, size], dtype), name="z2")

  def __call__(self):
    return self.z2


def code_class_loss(classifier, z2, one_hot):
  """The blog's generation objective, summed over the batch:

    sum |one_hot - softmax(sigmoid(z2) W3 + b3)|
  """
  probabilities = tf.nn.softmax(classifier.readout(tf.sigmoid(z2)))
  return tf.reduce_sum(tf.abs(one_hot - probabilities))


def feature_codes(size, magnitude=1e8, dtype=tf.float32):
  """One layer-2 pre-activation per unit: unit i at ``magnitude``, others 0.

  The blog's ``generate_features``: a huge z2 in one unit swamps b2, so after
  squash the projection shows what that unit alone contributes.
  """
  return tf.eye(size, dtype=dtype) * magnitude


# ---------------------------------------------------------------------------
# Gradient inversion (Mahendran & Vedaldi, 2015): optimise the pixels.
# ---------------------------------------------------------------------------


class SigmoidImages(tf.Module):
  """``count`` images x = sigmoid(v) with free v: pixels stay inside (0, 1).

  Optimising v instead of x keeps every image a valid image without clipping
  or projection. v starts at ``initial_logit`` everywhere (0 -> mid grey).
  """

  def __init__(self, count, num_pixels, initial_logit=0.0, dtype=tf.float32,
               name=None):
    super().__init__(name=name)
    self.v = tf.Variable(tf.fill([count, num_pixels],
                                 tf.constant(initial_logit, dtype)), name="v")

  def __call__(self):
    return tf.sigmoid(self.v)


def total_variation(images):
  """Per image, the summed squared differences of neighbouring pixels.

    TV(x) = sum_{i,j} (x[i+1, j] - x[i, j])^2 + (x[i, j+1] - x[i, j])^2

  over a square image: Mahendran & Vedaldi's V^beta regulariser with
  beta = 2. It is small for smooth images and large for pixel noise.

  Args:
    images: (batch, side * side).
  Returns:
    (batch,).
  """
  side = math.isqrt(images.shape[-1])
  grid = tf.reshape(images, [-1, side, side])
  down = grid[:, 1:, :] - grid[:, :-1, :]
  right = grid[:, :, 1:] - grid[:, :, :-1]
  return (tf.reduce_sum(tf.square(down), axis=[1, 2]) +
          tf.reduce_sum(tf.square(right), axis=[1, 2]))


def squared_norm(images):
  """Per image, sum of x^2 (the alpha = 2 norm prior): favours dark pixels."""
  return tf.reduce_sum(tf.square(images), axis=-1)


def image_prior(images, tv_weight, l2_weight):
  """Per image, tv_weight * TV(x) + l2_weight * |x|^2; shape (batch,)."""
  return tv_weight * total_variation(images) + l2_weight * squared_norm(images)


def code_error(classifier, images, target_codes):
  """Per image, |l2(x) - l2_0|^2 / |l2_0|^2: the relative code mismatch."""
  _, codes = classifier.hidden(images)
  return (tf.reduce_sum(tf.square(codes - target_codes), axis=-1) /
          tf.reduce_sum(tf.square(target_codes), axis=-1))


def code_matching_loss(classifier, images, target_codes, tv_weight, l2_weight):
  """Mahendran & Vedaldi's objective, summed over independent images:

    sum over batch of |l2(x) - l2_0|^2 / |l2_0|^2 + prior(x)
  """
  return tf.reduce_sum(code_error(classifier, images, target_codes) +
                       image_prior(images, tv_weight, l2_weight))


def class_image_loss(classifier, images, labels, tv_weight, l2_weight):
  """Class-conditional images: sum of cross-entropy(class) + prior(x)."""
  cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=labels, logits=classifier(images))
  return tf.reduce_sum(cross_entropy + image_prior(images, tv_weight,
                                                   l2_weight))


def _weight(shape, seed, dtype, name):
  return tf.Variable(tf.cast(truncated_normal(shape, WEIGHT_STDDEV, seed),
                             dtype), name=name)


def _bias(size, dtype, name):
  return tf.Variable(tf.fill([size], tf.constant(BIAS_INIT, dtype)), name=name)
