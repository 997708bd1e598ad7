"""Relative position embeddings of the positional attention (Appendix B, eqs. 5-6).

A table `R` of shape `(2M + 1, k)` holds one embedding per vertical (or horizontal)
relative shift `r = i - x` in `[-M, M]`, row `r + M`. The paper turns relative shifts
into absolute positions with a one-hot tensor `I` of shape `(h, h, 2M + 1)` (eq. 5) and
a contraction (eq. 6); here the same `P[x, i] = R[i - x]` comes from one gather, which
costs O(h^2 k) instead of O(h^3 k).
"""

import tensorflow as tf


def table_reach(table):
  """The largest shift `M` a table of `2M + 1` rows covers (a Python int)."""
  rows = table.shape[0]
  if rows is None or rows % 2 != 1:
    raise ValueError(
        f"A relative embedding table needs an odd, known number of rows (2M+1), "
        f"got shape {tuple(table.shape)}.")
  return (rows - 1) // 2


def relative_shifts(length):
  """`shift[x, i] = i - x` for a column or row of `length` pixels, shape `(length, length)`."""
  positions = tf.range(length)
  return positions[tf.newaxis, :] - positions[:, tf.newaxis]


def neighbourhood_mask(length, max_shift):
  """Eq. 5's condition `|i - x| <= L` as a boolean `(length, length)` tensor."""
  return tf.abs(relative_shifts(length)) <= max_shift


def relative_to_absolute(table, length, max_shift=None):
  """Eqs. 5-6: `P[x, i, :] = R[i - x]` where `|i - x| <= L`, zero elsewhere.

  Args:
    table: `(2M + 1, k)` relative embeddings, row `r + M` for shift `r`.
    length: the number of pixels along the axis, a Python int or scalar tensor.
    max_shift: `L`, the largest shift attended to; `None` means the table's reach `M`.
      Shifts beyond `M` always get zeros: callers check that `length - 1 <= M` when the
      attention is meant to be global.

  Returns:
    `P`, shape `(length, length, k)`, indexed `[query position x, key position i]`.
  """
  reach = table_reach(table)
  limit = reach if max_shift is None else min(max_shift, reach)
  shifts = relative_shifts(length)
  # Shifts outside the neighbourhood point at an extra all-zero row.
  index = tf.where(tf.abs(shifts) <= limit, shifts + reach, 2 * reach + 1)
  padded = tf.concat([table, tf.zeros_like(table[:1])], axis=0)
  return tf.gather(padded, index)


def resize_relative_embeddings(table, rows):
  """Linearly interpolates a `(2M + 1, k)` table to `(rows, k)`, `rows = 2M' + 1`.

  Shifts scale with the resolution: the new shift `s'` takes the old table's value at
  `s' * M / M'`, so the centre (shift 0) and both ends stay where they were. Use it to
  fine-tune or serve a global-attention model at another feature size.
  """
  table = tf.convert_to_tensor(table)
  old_reach = table_reach(table)
  if rows < 1 or rows % 2 != 1:
    raise ValueError(f"`rows` must be a positive odd number (2M+1), got {rows}.")
  new_reach = (rows - 1) // 2
  if new_reach == old_reach:
    return table
  if new_reach == 0 or old_reach == 0:
    return tf.repeat(table[old_reach:old_reach + 1], rows, axis=0)
  # Position of each new row on the old table's row axis.
  source = tf.linspace(0.0, float(2 * old_reach), rows)
  lower = tf.clip_by_value(tf.floor(source), 0.0, float(2 * old_reach - 1))
  fraction = tf.cast(source - lower, table.dtype)[:, tf.newaxis]
  lower = tf.cast(lower, tf.int32)
  return (1 - fraction) * tf.gather(table, lower) + fraction * tf.gather(table, lower + 1)
