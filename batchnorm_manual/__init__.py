"""Does batch normalization, written out from ``tf.nn.moments``, make a badly
initialised sigmoid network learn faster and better, and why must inference use
the moving averages instead of the batch's own statistics? (R2RT,
"Implementing Batch Normalization in Tensorflow", 2016, reproducing figure 1
of Ioffe & Szegedy, 2015.) Run it with ``python -m batchnorm_manual``."""
