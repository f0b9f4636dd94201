"""First convergence bias: does pre-training the earlier layers first lead a
network to a better minimum than training all its layers at once?

R2RT (Silviu Pitis), "First Convergence Bias", 2016: a 784-100-100-100 tanh
network with a softmax head on every hidden layer, trained on 1,000 MNIST
images from hundreds of random initialisations with each strategy; the blog
found layer-wise pre-training slightly *worse* (87.64% vs 87.87%). Here the
hundreds of networks are trained side by side, stacked along a "run" axis.
Run it with ``python -m convergence``.
"""
