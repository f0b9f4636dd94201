"""The same RNN through the Keras RNN API: the reference ``model.EchoRNN`` is
proved equal to (tests) and timed against (benchmarks/bench_rnn.py).

This is the post's "translate the model into TensorFlow's RNN API" in TF2.
The post replaced its hand-written cell by ``BasicRNNCell`` and its list of
cells by ``static_rnn`` (or ``dynamic_rnn``); ``keras.layers.SimpleRNN``
does both jobs. Its cell computes exactly

  s_t = tanh(x_t kernel + s_{t-1} recurrent_kernel + bias)

so kernel = W, recurrent_kernel = U, bias = b, and a ``Dense`` layer is the
readout V, c. ``BasicRNNCell`` kept one matrix for [x_t, s_{t-1}];
SimpleRNN keeps its two halves apart, as ``EchoRNN`` does.
``return_sequences=True`` gives every s_t (for the readout) and
``return_state=True`` the final one (carried to the next window).

Same interface as ``EchoRNN`` (``weights``, ``initial_state``,
``__call__(inputs, state)``), so ``train.py`` trains either one.
"""
import keras
import tensorflow as tf

from rnn_scratch.model import NUM_CLASSES

KERAS_OPTIMIZERS = {"sgd": keras.optimizers.SGD,
                    "adagrad": keras.optimizers.Adagrad,
                    "adam": keras.optimizers.Adam}


class KerasEchoRNN(tf.Module):
  """``SimpleRNN`` + ``Dense`` with an explicit initial state per window."""

  def __init__(self, state_size, seed=0, name=None):
    super().__init__(name=name)
    self.state_size = state_size
    self.rnn = keras.layers.SimpleRNN(
        state_size, return_sequences=True, return_state=True,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        recurrent_initializer=keras.initializers.GlorotUniform(seed=seed + 1))
    self.readout = keras.layers.Dense(
        NUM_CLASSES, kernel_initializer=keras.initializers.GlorotUniform(
            seed=seed + 2))
    self.rnn.build((None, None, NUM_CLASSES))
    self.readout.build((None, state_size))

  @property
  def weights(self):
    """[W, U, b, V, c] as Keras variables, in EchoRNN's order."""
    return [self.rnn.cell.kernel, self.rnn.cell.recurrent_kernel,
            self.rnn.cell.bias, self.readout.kernel, self.readout.bias]

  def initial_state(self, batch_size):
    return tf.zeros([batch_size, self.state_size])

  def __call__(self, inputs, state):
    states, final_state = self.rnn(tf.one_hot(inputs, NUM_CLASSES),
                                   initial_state=[state])
    return self.readout(states), final_state


class KerasOptimizer:
  """Gives a ``keras.optimizers`` optimizer the ``apply(gradients)`` call of
  tfscratch.optimizers, for a fixed list of variables."""

  def __init__(self, optimizer, variables):
    self.optimizer = optimizer
    self.variables = list(variables)
    self.optimizer.build(self.variables)

  def apply(self, gradients):
    self.optimizer.apply_gradients(zip(gradients, self.variables))


def make_keras_optimizer(name, variables, learning_rate):
  """The Keras optimizer called ``name`` behind the ``apply`` adapter."""
  return KerasOptimizer(KERAS_OPTIMIZERS[name](learning_rate=learning_rate),
                        variables)
