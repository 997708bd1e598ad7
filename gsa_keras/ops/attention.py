"""The GSA module's equations (Appendix B) as plain TensorFlow functions.

Index names follow the paper: `b` batch, `x` row (height), `y` column (width), `n` head,
`k` key/query channel, `v` value channel, `i` the key row of a column attention and `j`
the key column of a row attention. Tensors are channels-last, heads split out:
keys/queries `(b, x, y, n, k)`, values `(b, x, y, n, v)`.

Softmaxes run in float32 whatever the compute dtype, so bfloat16/float16 models neither
overflow nor lose the normaliser's precision over thousands of pixels.

Speed (see `benchmarks/`): the equations are evaluated exactly, with each product laid
out as one batched matmul (per-pixel tensors are transposed into those layouts):
- content attention works on each head's pixels as one matrix, `(b, n, x y, c)`;
- positional attention runs on batches of lines (a column or row of one image and
  head), queries position-major and values line-major; only its score tensor is
  transposed between its two matmuls, and it splits that tensor, the module's largest,
  into blocks of whole lines of a bounded size, made and consumed one after the other,
  so memory stays bounded at any resolution.
"""

import math

import tensorflow as tf

from gsa_keras import spec

# Column attention mixes rows x <- i within a column y; row attention mixes columns
# y <- j within a row x. The two are the same computation along different axes, so
# they differ only in these equations, used as written by Table 2's axial baseline
# (`positional_attention` evaluates eq. 7 on batches of lines instead).
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


def dimensions(tensor):
  """The tensor's dimensions, static where known, else scalar tensors."""
  dynamic = tf.shape(tensor)
  return [size if size is not None else dynamic[index]
          for index, size in enumerate(tensor.shape)]


def by_head(tensor):
  """`(b, x, y, n, c)` -> `(b, n, x y, c)`: each head's pixels as one matrix."""
  batch, height, width, heads, channels = dimensions(tensor)
  return tf.reshape(tf.transpose(tensor, (0, 3, 1, 2, 4)),
                    [batch, heads, height * width, channels])


def _pixel_softmax(keys):
  """Eq. 4's sigma in float32, laid out `(b, n, k, x y)`: a softmax along the last axis."""
  batch, height, width, heads, key_dim = dimensions(keys)
  logits = tf.reshape(tf.transpose(keys, (0, 3, 4, 1, 2)),
                      [batch, heads, key_dim, height * width])
  return tf.nn.softmax(tf.cast(logits, tf.float32))


def spatial_softmax(keys):
  """Eq. 4's sigma: softmax over all pixels (x, y), per batch, head and channel."""
  batch, height, width, heads, key_dim = dimensions(keys)
  weights = tf.reshape(_pixel_softmax(keys), [batch, heads, key_dim, height, width])
  return tf.cast(tf.transpose(weights, (0, 3, 4, 1, 2)), keys.dtype)


def global_context(keys, values):
  """Eq. 4, second line: `C = softmax(K)^T V`, the `(b, n, k, v)` global context."""
  return tf.matmul(tf.cast(_pixel_softmax(keys), values.dtype), by_head(values))


def content_attention(keys, queries, values):
  """Eqs. 1 and 4: `Y^C = Q (softmax(K)^T V)`; queries are not normalised.

  Linear in the number of pixels: the `(k, v)` context replaces the pixel-by-pixel map.
  Each head's pixels form one matrix (`(b, n, x y, c)`), so both products are batched
  matmuls and the softmax over the pixels is one op along the last axis.

  Args:
    keys, queries: `(b, x, y, n, k)`.
    values: `(b, x, y, n, v)`.

  Returns:
    `(b, x, y, n, v)`.
  """
  batch, height, width, heads, value_dim = dimensions(values)
  outputs = tf.matmul(by_head(queries), global_context(keys, values))  # (b, n, x y, v)
  return tf.transpose(tf.reshape(outputs, [batch, heads, height, width, value_dim]),
                      (0, 2, 3, 1, 4))


# The positional attention's score tensor is split into blocks of whole lines of at most
# this many bytes, and into at most this many blocks. Measured on CPU (see
# `benchmarks/`): blocks of a few MB beat one large score tensor, while many smaller
# blocks lose more to the per-op overhead than they gain in cache.
SCORE_BLOCK_BYTES = 8 * 2**20
MAX_SCORE_BLOCKS = 32


def _line_axis(axis):
  """The dimension of `(b, x, y, ...)` that indexes an axis's independent lines.

  Column attention is independent per column y, row attention per row x.
  """
  return 3 - AXIS_DIMENSION[axis]


def score_blocks(queries_shape, axis, dtype=tf.float32, block_bytes=None):
  """How many blocks of lines `positional_attention` splits its scores into (>= 1).

  Needs the line count and length statically; an unknown batch size counts as 1.
  `block_bytes` defaults to `SCORE_BLOCK_BYTES`.
  """
  block_bytes = block_bytes or SCORE_BLOCK_BYTES
  batch, height, width, heads = queries_shape[:4]
  lines = queries_shape[_line_axis(axis)]
  length = queries_shape[AXIS_DIMENSION[axis]]
  if lines is None or length is None or heads is None:
    return 1
  score_bytes = (batch or 1) * height * width * heads * length * tf.as_dtype(dtype).size
  wanted = min(math.ceil(score_bytes / block_bytes), MAX_SCORE_BLOCKS, lines)
  # Equal blocks: the smallest divisor of `lines` that is at least `wanted`.
  return next(blocks for blocks in range(max(wanted, 1), lines + 1) if lines % blocks == 0)


def positional_attention(queries, values, positions, axis, blocks=None):
  """Eq. 7 along `axis` ('column' or 'row'): `Y = (Q P) V`, no softmax (eq. 2).

  Evaluated on batches of lines: a line is one column (row) of one image and head. The
  scores `S = Q P` multiply per query position (`P` depends on it), the aggregation
  `S V` per line, so queries are laid out position-major and values line-major, and
  only the score tensor is transposed between the two matmuls, one block at a time.

  Args:
    queries: `(b, x, y, n, k)`.
    values: `(b, x, y, n, v)`.
    positions: `P` from `relative_to_absolute`, `(h, h, k)` for a column attention,
      `(w, w, k)` for a row attention; shared by all heads.
    axis: 'column' (attend along the height) or 'row' (along the width).
    blocks: split the columns (rows) into this many equal blocks, attended one after
      the other (equal results); None chooses by `score_blocks`.
  """
  if blocks is None:
    blocks = score_blocks(queries.shape, axis, queries.dtype)
  attended, line = AXIS_DIMENSION[axis], _line_axis(axis)
  lines = queries.shape[line]
  if not isinstance(blocks, int) or blocks < 1 or (lines is not None and lines % blocks):
    raise ValueError(f"`blocks` must be a positive int dividing the {lines} lines of the "
                     f"{axis} attention, got {blocks!r}.")
  line_major = (line, 0, 3, attended, 4)  # (lines, b, n, length, v)
  by_position = tf.transpose(queries, (attended, line, 0, 3, 4))  # (length, lines, b, n, k)
  by_line = tf.transpose(values, line_major)
  outputs = []
  for query_block, value_block in zip(tf.split(by_position, blocks, axis=1),
                                      tf.split(by_line, blocks, axis=0)):
    # One block after the other: run in parallel, all score blocks would be alive at
    # once, as many bytes as without blocks.
    with tf.control_dependencies(outputs[-1:]):
      query_block = tf.identity(query_block)
    outputs.append(_attend_lines(query_block, value_block, positions))
  outputs = tf.concat(outputs, axis=0) if blocks > 1 else outputs[0]
  return tf.transpose(outputs, _inverse(line_major))


def _line_scores(queries, positions):
  """Eq. 7, first line, `S = Q P` per query position: queries `(length, ..., k)` ->
  scores `(length, lines, length)`, `[x, line, i]` the weight of pixel i for query x."""
  length, key_dim = tf.shape(queries)[0], queries.shape[-1]
  return tf.matmul(tf.reshape(queries, [length, -1, key_dim]), positions,
                   transpose_b=True)


def positional_scores(queries, positions, axis):
  """Eq. 7's `S = Q P` along `axis` for every query pixel, as `positional_attention`
  computes it: `(b, x, y, n, length)`, the weights pixel (x, y) gives the pixels of
  its column (`axis='column'`, length h) or of its row (`'row'`, length w).

  Args:
    queries: `(b, x, y, n, k)`.
    positions: `P` from `relative_to_absolute`, `(length, length, k)`.
    axis: 'column' or 'row'.
  """
  position_major = (AXIS_DIMENSION[axis], _line_axis(axis), 0, 3, 4)
  by_position = tf.transpose(queries, position_major)  # (length, lines, b, n, k)
  leading = dimensions(by_position)[:-1]
  scores = tf.reshape(_line_scores(by_position, positions),
                      leading + [tf.shape(positions)[0]])
  return tf.transpose(scores, _inverse(position_major))


def _attend_lines(queries, values, positions):
  """Eq. 7 on a batch of lines: queries `(length, ..., k)`, values `(..., length, v)`.

  Returns the outputs shaped like `values`.
  """
  shape = tf.shape(values)
  length, value_dim = shape[-2], values.shape[-1]
  scores = tf.transpose(_line_scores(queries, positions), (1, 0, 2))  # (lines, x, i)
  outputs = tf.matmul(scores, tf.reshape(values, [-1, length, value_dim]))  # Y = S V
  return tf.reshape(outputs, shape)


def _inverse(permutation):
  """The permutation that undoes `tf.transpose(..., permutation)`."""
  return tuple(sorted(range(len(permutation)), key=permutation.__getitem__))


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


# Normalisations of the queries that the module may apply before both of its branches.
# None is the paper's module: Section 3.1 leaves the queries of eq. 1 unnormalised
# (softmax on them cost 1% top-1 on ImageNet). Unnormalised, the content branch is
# quadratic in the scale of the module's input and the positional branch cubic once the
# batch norm between its column and row passes uses moving statistics (evaluation
# mode): `study_results/input_scale/`. 'l2' makes both branches linear in it; 'softmax'
# only partly, as a softmax sharpens when its input grows (tests/test_query_normalization.py).
QUERY_NORMALIZATIONS = spec.QUERY_NORMALIZATIONS
# Added to the squared norm in 'l2', so an all-zero query stays zero instead of NaN.
L2_EPSILON = 1e-6


def normalize_queries(queries, method, scale=None):
  """The queries `(b, x, y, n, k)` normalised per pixel and head by `method`.

  - None: unchanged (the paper's eq. 1).
  - 'softmax': a softmax over each head's k channels, the normalisation of Shen et
    al. (2018) that the paper removed: each pixel's content output is then a convex
    combination of the global context vectors (eq. 1).
  - 'l2': each head's query divided by its L2 norm and multiplied by that head's
    learned `scale` (`(n,)`), so only its direction depends on the input.

  Both normalisations run in float32 and return the queries' dtype.
  """
  if method is None:
    return queries
  spec.check_query_normalization(method)
  values = tf.cast(queries, tf.float32)
  if method == "softmax":
    normalized = tf.nn.softmax(values, axis=-1)
  else:
    if scale is None:
      raise ValueError("`query_normalization='l2'` needs the per-head `scale`.")
    normalized = (values * tf.math.rsqrt(
        tf.reduce_sum(tf.square(values), axis=-1, keepdims=True) + L2_EPSILON)
                  * tf.cast(scale, tf.float32)[:, None])
  return tf.cast(normalized, queries.dtype)
