"""Local self-attention (Ramachandran et al. 2019, "Stand-Alone Self-Attention"), Table 3's
local baseline, on the math core's conventions.

Each pixel (i, j) attends to its `k x k` neighbourhood N(i, j) (Ramachandran et al. 2019's
equation):

    y_ij = sum_{(a, b) in N(i, j)} softmax_ab(q_ij . k_ab + q_ij . r_{a-i, b-j}) v_ab

per head. `r_{a-i, b-j}` is the concatenation of a row-offset embedding `r^row_{a-i}`
(the first half of the key channels) and a column-offset embedding `r^col_{b-j}` (the
second half), both shared by the heads, so `q . r = q[:k/2] . r^row + q[k/2:] . r^col`.

Index names follow `gsa_keras.ops.attention` (`b` batch, `x`/`y` pixel, `n` head, `k`
key and `v` value channels) with `p` a pixel and `m` a neighbour of the `k x k` window,
`m = (a - i + r) k + (b - j + r)` for the window radius `r = k // 2`.

How it is evaluated: the neighbourhood is gathered once per tensor, from each head's
pixels `(b, n, x y, c)` into `(b, n, x y, k k, c)` (one `tf.gather`; neighbours outside
the image read a clipped pixel and are masked); the logits, the masked softmax (float32
whatever the compute dtype) and the weighted sum are batched products over the window.
The relative logits need no gather: `q . r^row` and `q . r^col` are `(p, k)` each and
add up by broadcasting to `(p, k, k)`.
"""

import tensorflow as tf

from gsa_keras.ops.attention import by_head
from gsa_keras.ops.attention import dimensions


def neighbourhood(height, width, kernel_size):
  """The `k x k` window N(i, j) of every pixel, as indices into its image's pixels.

  Args:
    height, width: the image size (Python ints or scalar tensors).
    kernel_size: `k`, odd.

  Returns:
    `(index, inside)`, both `(height * width, k * k)`: `index[p, m]` is the flat pixel
    index `a * width + b` of neighbour `m` of pixel `p` (clipped into the image), and
    `inside[p, m]` is False where that neighbour lies outside the image (padding).
  """
  reach = kernel_size // 2
  offsets = tf.range(kernel_size) - reach
  rows = tf.range(height)[:, tf.newaxis] + offsets  # (x, k): a for each (i, a - i)
  columns = tf.range(width)[:, tf.newaxis] + offsets  # (y, k): b for each (j, b - j)
  row_inside = (rows >= 0) & (rows < height)
  column_inside = (columns >= 0) & (columns < width)
  rows = tf.clip_by_value(rows, 0, height - 1)
  columns = tf.clip_by_value(columns, 0, width - 1)
  # (x, y, k, k): broadcast the row window over columns and the column window over rows.
  index = (rows[:, tf.newaxis, :, tf.newaxis] * width +
           columns[tf.newaxis, :, tf.newaxis, :])
  inside = (row_inside[:, tf.newaxis, :, tf.newaxis] &
            column_inside[tf.newaxis, :, tf.newaxis, :])
  window = kernel_size * kernel_size
  return (tf.reshape(index, [height * width, window]),
          tf.reshape(inside, [height * width, window]))


def relative_logits(queries, row_embeddings, column_embeddings):
  """`q_ij . r_{a-i, b-j}` for every pixel and window offset, without a gather.

  Args:
    queries: per head, `(b, n, p, k)`, `k` even.
    row_embeddings, column_embeddings: `(kernel_size, k / 2)`, row `s + r` for offset
      `s` in `[-r, r]`; shared by the heads.

  Returns:
    `(b, n, p, kernel_size ** 2)`, window offsets row-major as in `neighbourhood`.
  """
  key_dim = queries.shape[-1]
  kernel_size = row_embeddings.shape[0]
  leading = dimensions(queries)[:-1]
  # 2-D products: on this CPU, TensorFlow 2.20's matmul of a (2, 1, 21, 4) tensor by a
  # broadcast 2-D (7, 4) one returned wrong values, and with (2, 2, 21, 4) corrupted
  # the heap.
  flat = tf.reshape(queries, [-1, key_dim])
  by_row = tf.matmul(flat[:, :key_dim // 2], row_embeddings, transpose_b=True)  # (., k)
  by_column = tf.matmul(flat[:, key_dim // 2:], column_embeddings, transpose_b=True)
  logits = by_row[:, :, tf.newaxis] + by_column[:, tf.newaxis, :]  # (., k, k)
  return tf.reshape(logits, leading + [kernel_size ** 2])


def local_attention(queries, keys, values, row_embeddings, column_embeddings):
  """Stand-alone local self-attention (Ramachandran et al. 2019) over `k x k` neighbourhoods.

  `y_ij = sum_{(a,b) in N(i,j)} softmax_ab(q_ij . k_ab + q_ij . r_{a-i,b-j}) v_ab`;
  neighbours outside the image take no weight (their logits are masked before the
  softmax, which runs in float32).

  Args:
    queries, keys: `(b, x, y, n, k)`, `k` even.
    values: `(b, x, y, n, v)`.
    row_embeddings, column_embeddings: `(kernel_size, k / 2)`, `kernel_size` odd.

  Returns:
    `(b, x, y, n, v)`.
  """
  kernel_size = row_embeddings.shape[0]
  batch, height, width, heads, value_dim = dimensions(values)
  index, inside = neighbourhood(height, width, kernel_size)
  queries = by_head(queries)  # (b, n, p, k)
  neighbour_keys = tf.gather(by_head(keys), index, axis=2)  # (b, n, p, m, k)
  neighbour_values = tf.gather(by_head(values), index, axis=2)  # (b, n, p, m, v)
  # q_ij . k_ab: one matrix-vector product per pixel and head.
  content = tf.squeeze(tf.matmul(neighbour_keys, queries[..., tf.newaxis]), -1)
  logits = tf.cast(content + relative_logits(queries, row_embeddings, column_embeddings),
                   tf.float32)  # (b, n, p, m)
  logits = tf.where(inside, logits, tf.float32.min)  # padding takes no weight
  weights = tf.cast(tf.nn.softmax(logits, axis=-1), values.dtype)
  outputs = tf.squeeze(tf.matmul(weights[..., tf.newaxis, :], neighbour_values), -2)
  return tf.transpose(tf.reshape(outputs, [batch, heads, height, width, value_dim]),
                      (0, 2, 3, 1, 4))
