"""First convergence bias: does pre-training the earlier layers first lead a
network to a better minimum than training all its layers at once?

R2RT (Silviu Pitis), "First Convergence Bias", 2016: a 784-100-100-100 tanh
network with a softmax head on every hidden layer, trained on 1,000 MNIST
images from hundreds of random initialisations with each strategy; the blog
found layer-wise pre-training slightly *worse* (87.64% vs 87.87%).

Read in this order: network.py (the blog's network), stacked.py (N networks
trained as one), train.py (the two strategies and the schedule), stats.py
(the tests), then reference.py (the tf.keras twin). The run machinery is
__main__.py, scale.py, plots.py and reproduce.py. Run it with
``python -m convergence``.
"""
