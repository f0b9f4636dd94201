"""Gradient-descent optimizers written out by hand.

Each optimizer is a ``tf.Module`` built once for a fixed list of variables; it
owns its slot variables (accumulators, moments), so ``apply`` can run inside a
``tf.function`` without creating anything. The update rules follow
``tf.keras.optimizers`` (Keras 3) exactly, so tests can compare step for step.

For a variable ``w`` with gradient ``g`` and learning rate ``lr``:

  SGD:      w <- w - lr * g
  Adagrad:  a <- a + g^2                       (a starts at 0.1, as in Keras)
            w <- w - lr * g / sqrt(a + eps)    (eps inside the root, Keras;
                                                TF1's Adagrad had no eps)
  Adam:     m <- m + (g - m) * (1 - beta1)
            v <- v + (g^2 - v) * (1 - beta2)
            w <- w - lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps)

The learning rate is a non-trainable float32 variable, so a schedule can
change it between steps without retracing the training step; each update
casts it (and every other constant) to the dtype of the variable it updates,
as Keras does, so float64 models train in float64 throughout; ``reset`` returns an
optimizer to its state as built (a "fresh" optimizer without rebuilding, and
so without retracing the steps that use it).
"""
import tensorflow as tf


class Optimizer(tf.Module):
  """Base class: holds the variables to update and the learning rate."""

  def __init__(self, variables, learning_rate, name=None):
    super().__init__(name=name)
    self.model_variables = list(variables)
    self.initial_learning_rate = learning_rate
    self.learning_rate = tf.Variable(
        learning_rate, dtype=tf.float32, trainable=False, name="learning_rate")
    self._state = []  # (variable, value as built) of every slot and counter

  def _remember(self, variable):
    self._state.append((variable, variable.numpy()))
    return variable

  def _slots(self, initial_value, name):
    return [
        self._remember(tf.Variable(
            tf.fill(tf.shape(v), tf.cast(initial_value, v.dtype)),
            trainable=False, name=f"{name}_{i}"))
        for i, v in enumerate(self.model_variables)
    ]

  def lr(self, variable):
    """The learning rate in ``variable``'s dtype."""
    return tf.cast(self.learning_rate, variable.dtype)

  def reset(self):
    """Returns the learning rate, slots and step count to their values as built."""
    self.learning_rate.assign(self.initial_learning_rate)
    for variable, value in self._state:
      variable.assign(value)

  def apply(self, gradients):
    """Updates every variable from its gradient (same order as ``model_variables``).

    In a ``tf.function`` the updates wait until every gradient exists. An
    update while the backward pass still reads a weight would make
    TensorFlow copy that weight first, to keep the old value for the reader
    (a tenth of a step for the stacked networks of ``convergence``).
    """
    with tf.control_dependencies(gradients):
      self._update(gradients)

  def _update(self, gradients):
    raise NotImplementedError


class SGD(Optimizer):
  """Plain stochastic gradient descent: w <- w - lr * g."""

  def __init__(self, variables, learning_rate=0.01):
    super().__init__(variables, learning_rate)

  def _update(self, gradients):
    for variable, gradient in zip(self.model_variables, gradients):
      variable.assign_sub(self.lr(variable) * gradient)


class Adagrad(Optimizer):
  """Adagrad: each weight's step shrinks with its summed squared gradients."""

  def __init__(self, variables, learning_rate=0.001,
               initial_accumulator_value=0.1, epsilon=1e-7):
    super().__init__(variables, learning_rate)
    self.epsilon = epsilon
    self.accumulators = self._slots(initial_accumulator_value, "accumulator")

  def _update(self, gradients):
    for variable, gradient, accumulator in zip(
        self.model_variables, gradients, self.accumulators):
      adagrad_update(variable, gradient, accumulator, self.lr(variable),
                     self.epsilon)


class Adam(Optimizer):
  """Adam: steps along a bias-corrected running mean of the gradient."""

  def __init__(self, variables, learning_rate=0.001, beta_1=0.9, beta_2=0.999,
               epsilon=1e-7):
    super().__init__(variables, learning_rate)
    self.beta_1 = beta_1
    self.beta_2 = beta_2
    self.epsilon = epsilon
    self.iterations = self._remember(
        tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations"))
    self.first_moments = self._slots(0.0, "first_moment")
    self.second_moments = self._slots(0.0, "second_moment")

  def _update(self, gradients):
    self.iterations.assign_add(1)
    for variable, gradient, m, v in zip(
        self.model_variables, gradients, self.first_moments, self.second_moments):
      adam_update(variable, gradient, m, v,
                  tf.cast(self.iterations, variable.dtype), self.lr(variable),
                  self.beta_1, self.beta_2, self.epsilon)


def adagrad_update(variable, gradient, accumulator, learning_rate, epsilon):
  """One Adagrad update of one variable, in place:

    a <- a + g^2
    w <- w - lr * g / sqrt(a + eps)

  Args:
    variable, accumulator: tf.Variables of one shape (w and a).
    gradient: g, a tensor of that shape. learning_rate: lr, in w's dtype.
  """
  accumulator.assign_add(tf.square(gradient))
  variable.assign_sub(learning_rate * gradient / tf.sqrt(accumulator + epsilon))


def adam_update(variable, gradient, m, v, step, learning_rate, beta_1, beta_2,
                epsilon):
  """One Adam update of one variable, in place (Keras 3's arrangement):

    m <- m + (g - m) * (1 - beta1)
    v <- v + (g^2 - v) * (1 - beta2)
    w <- w - lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps)

  Args:
    variable, m, v: tf.Variables of one shape (w and the two moments).
    gradient: g. step: t, the number of this update (1 for the first), in
      w's dtype. learning_rate: lr, in w's dtype.
  """
  # Early moments are biased toward their zero start; this undoes it.
  # tf.cast of a Python float rounds it through float32 first (0.9 becomes
  # 0.89999998): Keras computes beta^t so, and so do we, to the last bit.
  correction = (tf.sqrt(1.0 - tf.pow(tf.cast(beta_2, variable.dtype), step)) /
                (1.0 - tf.pow(tf.cast(beta_1, variable.dtype), step)))
  m.assign_add((gradient - m) * (1.0 - beta_1))
  v.assign_add((tf.square(gradient) - v) * (1.0 - beta_2))
  variable.assign_sub(learning_rate * correction * m / (tf.sqrt(v) + epsilon))


OPTIMIZERS = {"sgd": SGD, "adagrad": Adagrad, "adam": Adam}


def make_optimizer(name, variables, learning_rate):
  """Builds the optimizer called ``name`` ("sgd", "adagrad" or "adam")."""
  return OPTIMIZERS[name](variables, learning_rate=learning_rate)
