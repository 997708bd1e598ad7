"""The GSA module's equations (Appendix B) as plain TensorFlow functions.

Index names follow the paper: `b` batch, `x` row (height), `y` column (width), `n` head,
`k` key/query channel, `v` value channel, `i` the key row of a column attention and `j`
the key column of a row attention. Tensors are channels-last, heads split out:
keys/queries `(b, x, y, n, k)`, values `(b, x, y, n, v)`.

Softmaxes run in float32 whatever the compute dtype, so bfloat16/float16 models neither
overflow nor lose the normaliser's precision over thousands of pixels.

Speed (see `benchmarks/`): the equations are exact whichever way they are evaluated, so
two of them pick an evaluation by shape, statically at trace time:
- content attention multiplies all heads at once with block-diagonal matrices when the
  heads' channels are few (two large matmuls instead of per-head products and the
  transposes around them);
- positional attention splits its score tensor, the module's largest, into blocks of
  whole columns (rows) of a bounded size, so each block is made and consumed while it
  is still in cache and memory stays bounded at any resolution.
"""

import math

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
  """Eq. 3, fused: one matmul computes keys, queries and values for all heads.

  `[K, Q, V]_{xyn} = X_{xyd} W_{dn[kqv]}`. The kernel's per-head slices are stacked
  part-major, `(parts, d, n * c)`, and the pixels multiply all parts in one matmul
  broadcast over them, so each part comes out contiguous: slicing the channels of a
  single `(b, x, y, n, k + k + v)` product instead costs more than the product (on CPU).
  When value and key channels differ, the values take a second matmul.

  Args:
    inputs: `(b, x, y, d)`.
    kernel: `(d, n, c)` with `c = [key_dim] + key_dim + value_dim`: the keys' slice
      first (only when `with_keys`), then the queries', then the values'.
    key_dim: channels per head of keys and queries.
    with_keys: whether the kernel has a key slice (positional-only modules need none).

  Returns:
    `(keys or None, queries, values)`, each `(b, x, y, n, channels)`.
  """
  channels, heads, width = kernel.shape
  queries_start = key_dim if with_keys else 0
  bounds = (([(0, key_dim)] if with_keys else []) +
            [(queries_start, queries_start + key_dim), (queries_start + key_dim, width)])
  parts = [kernel[:, :, start:stop] for start, stop in bounds]
  shape = tf.shape(inputs)
  pixels = tf.reshape(inputs, [1, -1, channels])
  projected = []
  for group in _equal_widths(parts):
    stacked = tf.stack([tf.reshape(part, [channels, -1]) for part in group])
    products = tf.matmul(pixels, stacked)  # (parts, b x y, n c)
    projected += [tf.reshape(product, [shape[0], shape[1], shape[2], heads, part.shape[-1]])
                  for product, part in zip(tf.unstack(products), group)]
  return (projected[0] if with_keys else None,) + tuple(projected[-2:])


def _equal_widths(parts):
  """Consecutive kernel slices grouped by their width (the keys' and queries' match)."""
  groups = []
  for part in parts:
    if groups and groups[-1][-1].shape[-1] == part.shape[-1]:
      groups[-1].append(part)
    else:
      groups.append([part])
  return groups


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


# Content attention: per-head einsums, or all heads at once as block-diagonal matmuls
# (n times the multiply-adds, but two large matmuls on the natural (pixels, channels)
# layout and no transposes). The latter wins while the heads' channels are few: up to
# 128 (one TPU MXU tile); measured on CPU in `benchmarks/`.
PER_HEAD = "per_head"
BLOCK_DIAGONAL = "block_diagonal"
CONTENT_FORMULATIONS = (PER_HEAD, BLOCK_DIAGONAL)
BLOCK_DIAGONAL_MAX_CHANNELS = 128


def content_formulation(num_heads, key_dim, value_dim):
  """The content attention's default evaluation for these head sizes."""
  widest = num_heads * max(key_dim, value_dim)
  return BLOCK_DIAGONAL if widest <= BLOCK_DIAGONAL_MAX_CHANNELS else PER_HEAD


def content_attention(keys, queries, values, formulation=None):
  """Eqs. 1 and 4: `Y^C = Q (softmax(K)^T V)`; queries are not normalised.

  Linear in the number of pixels: the `(k, v)` context replaces the pixel-by-pixel map.

  Args:
    keys, queries: `(b, x, y, n, k)`.
    values: `(b, x, y, n, v)`.
    formulation: 'per_head' or 'block_diagonal' (equal results); None chooses by
      `content_formulation`.
  """
  _, _, _, num_heads, key_dim = keys.shape
  value_dim = values.shape[-1]
  if formulation is None:
    formulation = content_formulation(num_heads, key_dim, value_dim)
  if formulation == PER_HEAD:
    return tf.einsum("bxynk,bnkv->bxynv", queries, global_context(keys, values))
  if formulation != BLOCK_DIAGONAL:
    raise ValueError(f"`formulation` must be one of {CONTENT_FORMULATIONS} or None, "
                     f"got {formulation!r}.")
  shape = tf.shape(values)
  pixels = lambda t: tf.reshape(t, [shape[0], shape[1] * shape[2], t.shape[3] * t.shape[4]])
  # Eq. 4's softmax with its division deferred to the small context: exp(K - max)^T V,
  # then each context row divided by its channel's sum over the pixels.
  logits = pixels(tf.cast(keys, tf.float32))
  weights = tf.exp(logits - tf.reduce_max(logits, axis=1, keepdims=True))
  sums = tf.reduce_sum(weights, axis=1)  # (b, n k)
  context = tf.matmul(tf.cast(weights, values.dtype), pixels(values), transpose_a=True)
  # Keep the diagonal (head n, head n) blocks: key channel n k only meets value n v.
  same_head = tf.equal(tf.range(num_heads * key_dim)[:, tf.newaxis] // key_dim,
                       tf.range(num_heads * value_dim)[tf.newaxis, :] // value_dim)
  context = tf.where(same_head, tf.cast(context, tf.float32) / sums[:, :, tf.newaxis], 0.0)
  outputs = tf.matmul(pixels(queries), tf.cast(context, queries.dtype))
  return tf.reshape(outputs, [shape[0], shape[1], shape[2], num_heads, value_dim])


# The positional attention's score tensor is split into blocks of whole lines of at most
# this many bytes (measured in `benchmarks/`: a few MB keeps each block in a CPU's
# caches while the blocks stay few); at most this many blocks, to bound the graph.
SCORE_BLOCK_BYTES = 4 * 2**20
MAX_SCORE_BLOCKS = 64
# The independent lines of an axis: column attention is independent per column y,
# row attention per row x, so blocks split the other spatial axis (of dimensions 1, 2).
_LINE_AXIS = {axis: 3 - dimension for axis, dimension in AXIS_DIMENSION.items()}


def score_blocks(queries_shape, axis, dtype=tf.float32, block_bytes=None):
  """How many blocks of lines `positional_attention` splits its scores into (>= 1).

  Needs the line count and length statically; an unknown batch size counts as 1.
  `block_bytes` defaults to `SCORE_BLOCK_BYTES`.
  """
  block_bytes = block_bytes or SCORE_BLOCK_BYTES
  batch, height, width, heads = queries_shape[:4]
  lines = queries_shape[_LINE_AXIS[axis]]
  length = queries_shape[AXIS_DIMENSION[axis]]
  if lines is None or length is None or heads is None:
    return 1
  score_bytes = (batch or 1) * height * width * heads * length * tf.as_dtype(dtype).size
  wanted = min(math.ceil(score_bytes / block_bytes), MAX_SCORE_BLOCKS, lines)
  # Equal blocks: the smallest divisor of `lines` that is at least `wanted`.
  return next(blocks for blocks in range(max(wanted, 1), lines + 1) if lines % blocks == 0)


def positional_attention(queries, values, positions, axis, blocks=None):
  """Eq. 7 along `axis` ('column' or 'row'): `Y = (Q P) V`, no softmax (eq. 2).

  Args:
    queries: `(b, x, y, n, k)`.
    values: `(b, x, y, n, v)`.
    positions: `P` from `relative_to_absolute`, `(h, h, k)` for a column attention,
      `(w, w, k)` for a row attention; shared by all heads.
    axis: 'column' (attend along the height) or 'row' (along the width).
    blocks: split the columns (rows) into this many equal blocks, each attended on its
      own (equal results); None chooses by `score_blocks`.
  """
  if blocks is None:
    blocks = score_blocks(queries.shape, axis, queries.dtype)
  if blocks == 1:  # The paper's two einsums.
    scores = tf.einsum(_POSITIONAL_SCORES[axis], queries, positions)
    return tf.einsum(_AGGREGATE[axis], scores, values)
  line_axis = _LINE_AXIS[axis]
  lines = queries.shape[line_axis]
  if not isinstance(blocks, int) or blocks < 1 or (lines is not None and lines % blocks):
    raise ValueError(f"`blocks` must be a positive int dividing the {lines} lines of the "
                     f"{axis} attention, got {blocks!r}.")
  outputs = []
  for query_block, value_block in zip(tf.split(queries, blocks, axis=line_axis),
                                      tf.split(values, blocks, axis=line_axis)):
    # One block after the other: run in parallel, all score blocks would be alive at
    # once, as many bytes as without blocks.
    with tf.control_dependencies(outputs[-1:]):
      query_block = tf.identity(query_block)
    outputs.append(positional_attention(query_block, value_block, positions, axis, 1))
  return tf.concat(outputs, axis=line_axis)


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
