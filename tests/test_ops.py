"""The math core against direct loop computations."""

import numpy as np
import pytest
import tensorflow as tf

from gsa_keras import ops


@pytest.mark.parametrize("length,reach,max_shift", [(5, 4, None), (5, 6, None), (6, 5, 2),
                                                    (4, 3, 0), (1, 0, None)])
def test_relative_to_absolute_is_eq_5_and_6(length, reach, max_shift):
  rng = np.random.default_rng(0)
  table = rng.normal(size=(2 * reach + 1, 3)).astype(np.float32)
  limit = reach if max_shift is None else max_shift
  # Eq. 5's one-hot tensor I[x, i, r] and eq. 6's contraction, literally.
  one_hot = np.zeros((length, length, 2 * reach + 1), np.float32)
  for x in range(length):
    for i in range(length):
      if abs(i - x) <= limit:
        one_hot[x, i, i - x + reach] = 1.0
  expected = np.einsum("xir,rk->xik", one_hot, table)
  got = ops.relative_to_absolute(tf.constant(table), length, max_shift).numpy()
  np.testing.assert_allclose(got, expected, rtol=0, atol=0)


def test_relative_to_absolute_with_dynamic_length_under_tf_function():
  table = tf.reshape(tf.range(7 * 2, dtype=tf.float32), [7, 2])
  spec = tf.TensorSpec([], tf.int32)
  fn = tf.function(lambda n: ops.relative_to_absolute(table, n), input_signature=[spec])
  np.testing.assert_array_equal(fn(tf.constant(3)), ops.relative_to_absolute(table, 3))


def test_table_needs_odd_rows():
  with pytest.raises(ValueError, match="odd"):
    ops.table_reach(tf.zeros([4, 2]))


def test_resize_relative_embeddings_interpolates_linearly_in_scaled_shift():
  rng = np.random.default_rng(1)
  table = rng.normal(size=(7, 4))  # shifts -3..3
  resized = ops.resize_relative_embeddings(tf.constant(table), 13).numpy()  # -6..6
  for new_shift in range(-6, 7):
    old = new_shift * 3 / 6 + 3  # position on the old row axis
    low = int(np.floor(old))
    high = min(low + 1, 6)
    frac = old - low
    expected = (1 - frac) * table[low] + frac * table[high]
    np.testing.assert_allclose(resized[new_shift + 6], expected, atol=1e-12)
  # Shrinking keeps the centre and the ends.
  small = ops.resize_relative_embeddings(tf.constant(table), 3).numpy()
  np.testing.assert_allclose(small, table[[0, 3, 6]], atol=1e-12)
  with pytest.raises(ValueError, match="rows"):
    ops.resize_relative_embeddings(tf.constant(table), 4)


def test_spatial_softmax_sums_to_one_per_channel_and_survives_bfloat16_extremes():
  keys = tf.constant(np.random.default_rng(2).normal(size=(2, 5, 6, 3, 4)) * 1e4,
                     tf.bfloat16)
  weights = tf.cast(ops.spatial_softmax(keys), tf.float32).numpy()
  assert np.isfinite(weights).all()
  np.testing.assert_allclose(weights.sum(axis=(1, 2)), 1.0, atol=2e-2)


def test_axial_softmax_attention_ignores_keys_outside_the_neighbourhood():
  rng = np.random.default_rng(3)
  q = tf.constant(rng.normal(size=(1, 5, 1, 1, 2)), tf.float32)
  k = tf.constant(rng.normal(size=(1, 5, 1, 1, 2)), tf.float32)
  v = tf.constant(rng.normal(size=(1, 5, 1, 1, 1)), tf.float32)
  positions = tf.zeros([5, 5, 2])
  out = ops.axial_softmax_attention(q, k, v, positions, ops.neighbourhood_mask(5, 0),
                                    "column")
  # With L = 0 each pixel attends only to itself.
  np.testing.assert_allclose(out.numpy(), v.numpy(), atol=1e-6)
