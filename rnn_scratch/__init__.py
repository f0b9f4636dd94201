"""A vanilla RNN unrolled by hand, trained with truncated backprop on a binary
echo task whose optimal losses are known (R2RT, "Recurrent Neural Networks in
Tensorflow I", 2016). Run it with ``python -m rnn_scratch``."""
