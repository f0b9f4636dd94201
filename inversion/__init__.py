"""What does a classifier's last hidden layer keep of its input?

A 784-100-100-10 sigmoid MLP is trained on MNIST, then frozen. Its second
hidden layer (100 sigmoid units) is "inverted" two ways and the results are
projected back into pixel space:

* the learned inverse of R2RT's "Inverting a Neural Net" (Silviu Pitis,
  https://r2rt.com/inverting-a-neural-net.html, April 2016): undo each
  sigmoid with its inverse (logit) and each linear map with a learned matrix,
  trained to reproduce the input;
* gradient inversion (Mahendran & Vedaldi, "Understanding Deep Image
  Representations by Inverting Them", CVPR 2015): search pixel space for an
  image whose layer-2 code matches the target code, under an image prior.

Both also turn a wish ("a confident 7") into an image: the blog by optimising
a free layer-2 code and projecting it back, gradient inversion by optimising
the pixels for the class directly.

Run ``python -m inversion`` (flags: ``--helpfull``); ``inversion/README.md``
holds the figures and the numbers beside the blog's.
"""
