"""tfscratch: the small toolbox every scratchnets experiment shares.

Two halves, kept apart so that a lesson never reads like plumbing:

The ML core (what the lessons import)
  nn          Dense, the initialisers (the blogs' truncated normal, Glorot),
              losses, accuracy, MNIST's shape constants
  optimizers  SGD, Adagrad and Adam written out by hand
  loop        ``compile_steps``: K training steps per call, in the graph

The lab (what the ``__main__`` programs use; no lesson file imports it)
  lab.cli       the shared flags, their validators, ``run`` (one-line errors)
  lab.monitor   progress lines, TensorBoard scalars, the NaN/divergence guard
  lab.outputs   the run directory: results.json, atomic writes, locking
  lab.figures   matplotlib without a display, image grids
  lab.mnist     the MNIST loader (IDX files, validated)
  lab.seeding   one seed for Python, NumPy and TensorFlow
  lab.errors    the exceptions that end a run with a one-line message

Importing ``tfscratch`` first keeps TensorFlow's start-up chatter out of the
program's output without hiding a real error (see ``_startup``).
"""
from tfscratch._startup import import_tensorflow_quietly

import_tensorflow_quietly()
