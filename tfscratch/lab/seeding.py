"""One seed for every random number generator a run touches."""
import random

import numpy as np
import tensorflow as tf


def set_seed(seed):
  """Seeds Python, NumPy and TensorFlow and makes TF ops deterministic.

  With op determinism on, two runs with the same seed give the same numbers on
  the same machine and TensorFlow version (at a small cost in speed).
  """
  random.seed(seed)
  np.random.seed(seed)
  tf.random.set_seed(seed)
  tf.config.experimental.enable_op_determinism()
