"""Which training images each step sees: the post's ``mnist.train.next_batch``
written as graph ops.

The 2016 post read MNIST with the author's copy of TensorFlow's tutorial
reader of the time (``load_mnist.py`` beside the post's notebook, the same
code as TensorFlow 0.x's ``tensorflow/examples/tutorials/mnist/input_data.py``):

* ``mnist.train`` is training images 5,000-59,999 (the first 5,000 are the
  validation set). ``tfscratch.lab.mnist.load_mnist(validation_first=True)``
  gives that split; ``--split=first`` the images 0-54,999 we used before.
* ``next_batch(B)`` walks ``mnist.train`` in order the first epoch (no
  shuffle before it), and when the next batch would run past the end, it
  DROPS the last ``n mod B`` images of the epoch, shuffles the whole set
  (``numpy.random.shuffle``) and starts the next epoch at its beginning::

    start = index; index += B
    if index > n:  shuffle; start = 0; index = B
    return images[start:index]

  So an epoch is ``n // B`` batches (55,000 // 60 = 916; the 40 images left
  over are skipped that epoch) and batch i is, with E = n // B,

    epoch e = i // E,  position p = i mod E,
    rows order_e[p B : p B + B],   order_0 = 0, 1, ..., n - 1,
                                   order_e = a random permutation (e >= 1).

  (TensorFlow 1.2 and later changed this reader: it shuffles before the
  first epoch too and fills the last batch of an epoch with the first
  images of the next one. The post predates that change.)

In the graph
------------
order_e is a pure function of (seed, e): ``tf.random.experimental.
stateless_shuffle`` with the seed (seed, SHUFFLE_STREAM) folded with e, so
any step's batch can be computed from the step number alone, on any call,
and the walk is repeatable. ``tfscratch.loop.ShuffledBatches`` is that walk
(inversion's too); it keeps the current epoch's order in a variable and
redraws it only when the epoch (or the seed) changes, because shuffling
55,000 indices costs more than a training step: a cache, not state the
result depends on. ``--batch_order=ordered`` walks images i*B .. i*B + B - 1
modulo n instead, never shuffled (what we did before).
"""
# The second half of the stateless seed of the shuffles; the weights use
# (seed, 0..3), so the two draws never share a seed.
SHUFFLE_STREAM = 1000


def walk_seed(seed):
  """The shuffles' shape-[2] seed for the run's ``--seed``: the walk is
  ``loop.make_walk(batch_order, batch_size, n, walk_seed(seed))``."""
  return (seed, SHUFFLE_STREAM)
