"""The GSA module's equations (Appendix B) as plain TensorFlow functions.

Index names follow the paper: `b` batch, `x` row (height), `y` column (width), `n` head,
`k` key/query channel, `v` value channel, `i` the key row of a column attention and `j`
the key column of a row attention. Tensors are channels-last, heads split out:
keys/queries `(b, x, y, n, k)`, values `(b, x, y, n, v)`.

Softmaxes run in float32 whatever the compute dtype, so bfloat16/float16 models neither
overflow nor lose the normaliser's precision over thousands of pixels.
"""

import tensorflow as tf

# Column attention mixes rows x <- i within a column y; row attention mixes columns
# y <- j within a row x. The two are the same computation along different axes, so
# they differ only in these equations. The score tensor S (eq. 7, the largest tensor
# of the module: one entry per pixel, head and attended pixel) is produced directly in
# the layout the aggregation's batched matmul reads, heads before the two attended
# axes, so it is written once and read once, never transposed.
_POSITIONAL_SCORES = {  # eq. 7, first line: S = Q P
    "column": "bxynk,xik->bynxi",
    "row": "bxynk,yjk->bxnyj",
}
_CONTENT_SCORES = {  # q . k along the axis (Table 2's axial baseline)
    "column": "bxynk,biynk->bynxi",
    "row": "bxynk,bxjnk->bxnyj",
}
_AGGREGATE = {  # eq. 7, second line: Y = S V
    "column": "bynxi,biynv->bxynv",
    "row": "bxnyj,bxjnv->bxynv",
}
AXES = tuple(_AGGREGATE)
# Position of the spatial size of an axis in a (b, x, y, ...) shape.
AXIS_DIMENSION = {"column": 1, "row": 2}


def project_kqv(inputs, kernel, key_dim, with_keys=True):
  """Eq. 3, fused: one einsum computes keys, queries and values for all heads.

  Args:
    inputs: `(b, x, y, d)`.
    kernel: `(d, n, c)` with `c = [key_dim] + key_dim + value_dim`: the keys' slice
      first (only when `with_keys`), then the queries', then the values'.
    key_dim: channels per head of keys and queries.
    with_keys: whether the kernel has a key slice (positional-only modules need none).

  Returns:
    `(keys or None, queries, values)`, each `(b, x, y, n, channels)`.
  """
  kqv = tf.einsum("bxyd,dnc->bxync", inputs, kernel)
  keys = None
  if with_keys:
    keys, kqv = kqv[..., :key_dim], kqv[..., key_dim:]
  return keys, kqv[..., :key_dim], kqv[..., key_dim:]


def spatial_softmax(keys):
  """Eq. 4's sigma: softmax over all pixels (x, y), per batch, head and channel."""
  logits = tf.cast(keys, tf.float32)
  logits -= tf.reduce_max(logits, axis=(1, 2), keepdims=True)
  weights = tf.exp(logits)
  weights /= tf.reduce_sum(weights, axis=(1, 2), keepdims=True)
  return tf.cast(weights, keys.dtype)


def global_context(keys, values):
  """Eq. 4, second line: `C = softmax(K)^T V`, the `(b, n, k, v)` global context."""
  return tf.einsum("bxynk,bxynv->bnkv", spatial_softmax(keys), values)


def content_attention(keys, queries, values):
  """Eqs. 1 and 4: `Y^C = Q (softmax(K)^T V)`; queries are not normalised.

  Linear in the number of pixels: the `(k, v)` context replaces the pixel-by-pixel map.
  """
  return tf.einsum("bxynk,bnkv->bxynv", queries, global_context(keys, values))


def positional_attention(queries, values, positions, axis):
  """Eq. 7 along `axis` ('column' or 'row'): `Y = (Q P) V`, no softmax (eq. 2).

  Args:
    queries: `(b, x, y, n, k)`.
    values: `(b, x, y, n, v)`.
    positions: `P` from `relative_to_absolute`, `(h, h, k)` for a column attention,
      `(w, w, k)` for a row attention; shared by all heads.
    axis: 'column' (attend along the height) or 'row' (along the width).
  """
  scores = tf.einsum(_POSITIONAL_SCORES[axis], queries, positions)
  return tf.einsum(_AGGREGATE[axis], scores, values)


def axial_softmax_attention(queries, keys, values, positions, mask, axis):
  """Table 2's baseline along one axis: `softmax(q.k + q.r) V`, Ramachandran et al. style.

  Args:
    queries, keys: `(b, x, y, n, k)`.
    values: `(b, x, y, n, v)`.
    positions: `P` as in `positional_attention`.
    mask: boolean `(length, length)` `[query, key]`, False outside the neighbourhood.
    axis: 'column' or 'row'.
  """
  logits = (tf.einsum(_CONTENT_SCORES[axis], queries, keys) +
            tf.einsum(_POSITIONAL_SCORES[axis], queries, positions))
  # Scores end in (query, key): the (query, key) mask broadcasts over the rest.
  logits = tf.where(mask, tf.cast(logits, tf.float32), tf.float32.min)
  weights = tf.cast(tf.nn.softmax(logits, axis=-1), values.dtype)
  return tf.einsum(_AGGREGATE[axis], weights, values)
