"""Exercise 6 (stacked): N networks' forward pass as one.

Replace ``raise NotImplementedError`` with the computation in the docstring,
then check it against N separate Keras networks (float64: every head's
logits, the gradients of the summed losses with respect to every stacked
variable and the input, and 3 Adam steps on the sum):

    make exercise NAME=stacked

The package's own version is ``stacked_logits`` in convergence/stacked.py;
convergence/network.py is the single network it must reproduce.
"""
import tensorflow as tf  # noqa: F401  (you will need it)


def stacked_logits(x, W, b, V, c, head):
  """Head ``head``'s logits of all N networks at once, shape (N, B, 10).

  Network n is slice n of every variable. With H = 100 hidden units:

    z_1 = x @ reshape(W_1, (P, N*H)) + reshape(b_1, (N*H,))     (B, N*H)
    h_1 = transpose(reshape(tanh(z_1), (B, N, H)), (1, 0, 2))   (N, B, H)
    h_l = tanh(h_{l-1} @ W_l + b_l[:, None, :])   l = 2..head   (N, B, H)
    logits = h_head @ V_head + c_head[:, None, :]               (N, B, 10)

  The first layer of all N networks is ONE matrix product because W_1 keeps
  its input axis first; the later layers are batched products (N, B, H) @
  (N, H, H).

  Args:
    x: (B, P) inputs (P pixels; the rows of W_1 in the same order).
    W: [W_1 (P, N, H), W_2 (N, H, H), W_3 (N, H, H)].
    b: [b_1, b_2, b_3], each (N, H). V: [V_1, V_2, V_3], each (N, H, 10).
    c: [c_1, c_2, c_3], each (N, 10). head: 1, 2 or 3 (Python int).
  """
  raise NotImplementedError
