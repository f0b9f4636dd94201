"""Do deeper layers learn better representations? An MLP (784-100-100-100-10,
tanh) is trained on MNIST, then each layer's activations are judged as
features: by linear (logistic-regression) probes, by PCA scatter plots, and by
a failed attempt to teach layer 1 what layer 3 knows (R2RT, "Representational
Power of Deeper Layers", 2016; probes during training after Alain & Bengio,
"Understanding intermediate layers using linear classifier probes", 2016).
Run it with ``python -m mnist_probes``."""
