"""Principal component analysis with tf.linalg.

For data X (n, d) with column means mu, the centred data X - mu has the thin
singular value decomposition

  X - mu = U diag(s) V^T      U: (n, r)  s: (r,)  V: (d, r),  r = min(n, d)

with s sorted from largest to smallest. The columns of V are the principal
directions; the variance of the data along direction k is s_k^2 / (n - 1)
(the unbiased estimate, as scikit-learn's ``explained_variance_``), and the
coordinates of a point x in the top-k components are (x - mu) V[:, :k].
"""
import dataclasses

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class PCA:
  """A fitted PCA.

  Attributes:
    mean: (d,) the column means mu.
    components: (k, d) the top-k principal directions, one per row.
    explained_variance: (k,) the variance along each of them.
    explained_variance_ratio: (k,) that variance over the total variance.
  """
  mean: tf.Tensor
  components: tf.Tensor
  explained_variance: tf.Tensor
  explained_variance_ratio: tf.Tensor

  def transform(self, data):
    """The coordinates (n, k) of each row of ``data`` in the components."""
    data = tf.convert_to_tensor(data, dtype=self.mean.dtype)
    return (data - self.mean) @ tf.transpose(self.components)


def fit_pca(data, num_components=None):
  """Fits a PCA to ``data`` (n, d), n >= 2.

  A singular vector is defined only up to sign; each component is flipped so
  that its entry of largest magnitude is positive, which makes the result
  (and the plots drawn from it) the same from run to run.

  Args:
    data: float array (n, d); the dtype of the result follows it.
    num_components: how many components to keep; all min(n, d) if None.
  Returns:
    A PCA.
  """
  data = tf.convert_to_tensor(data)
  if not data.dtype.is_floating:
    data = tf.cast(data, tf.float32)
  count = tf.cast(tf.shape(data)[0], data.dtype)
  mean = tf.reduce_mean(data, axis=0)
  centred = data - mean
  singular_values, _, directions = tf.linalg.svd(centred, full_matrices=False)
  variance = tf.square(singular_values) / (count - 1)
  total_variance = tf.reduce_sum(tf.square(centred)) / (count - 1)
  components = tf.transpose(directions)[:num_components]
  largest = tf.gather(components, tf.argmax(tf.abs(components), axis=1),
                      axis=1, batch_dims=1)
  components *= tf.sign(largest)[:, None]
  variance = variance[:num_components]
  return PCA(mean=mean, components=components, explained_variance=variance,
             explained_variance_ratio=variance / total_variance)
