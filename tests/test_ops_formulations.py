"""The math core's evaluations equal the paper's equations, values and gradients.

`content_attention` works per head on transposed layouts and `positional_attention` on
batches of lines, split into blocks chosen by shape. Layer-level parity
(`test_reference_parity.py`) only sees the blocks its small shapes choose, so here every
block split is forced and checked against the loop-based float64 reference, and
gradients against the literal einsums or the unsplit evaluation.
"""

import numpy as np
import pytest
import tensorflow as tf

from gsa_keras import ops
from gsa_keras.ops import attention
from tests.support import reference

TOLERANCE = 1e-5
# (batch, height, width, heads, key channels, value channels)
SHAPES = [(2, 5, 7, 2, 3, 4), (1, 6, 4, 4, 2, 2), (1, 1, 6, 1, 3, 5)]


def _tensors(shape, seed):
  batch, height, width, heads, key_dim, value_dim = shape
  rng = np.random.default_rng(seed)
  keys = rng.normal(size=(batch, height, width, heads, key_dim)) * 3
  queries = rng.normal(size=(batch, height, width, heads, key_dim))
  values = rng.normal(size=(batch, height, width, heads, value_dim))
  return keys, queries, values


def _divisors(count):
  return [d for d in range(1, count + 1) if count % d == 0]


@pytest.mark.parametrize("shape", SHAPES)
def test_content_attention_equals_the_reference(shape):
  keys, queries, values = _tensors(shape, seed=1)
  expected = reference.content_attention(queries, keys, values)
  got = ops.content_attention(*(tf.constant(t, tf.float32) for t in (keys, queries, values)))
  np.testing.assert_allclose(got.numpy(), expected, rtol=TOLERANCE, atol=TOLERANCE)


def _gradients(function, tensors):
  tensors = [tf.constant(t, tf.float32) for t in tensors]
  # A fixed random cotangent, so that every output element matters.
  with tf.GradientTape() as tape:
    tape.watch(tensors)
    outputs = function(*tensors)
    weights = tf.constant(np.random.default_rng(7).normal(size=outputs.shape), tf.float32)
    loss = tf.reduce_sum(outputs * weights)
  return [tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, tensors)]


def _literal_content_attention(keys, queries, values):
  """Eqs. 1 and 4 as the paper's einsums on the `(b, x, y, n, c)` layout."""
  keys = tf.cast(keys, tf.float32)
  weights = tf.exp(keys - tf.reduce_max(keys, axis=(1, 2), keepdims=True))
  weights /= tf.reduce_sum(weights, axis=(1, 2), keepdims=True)
  return tf.einsum("bxynk,bnkv->bxynv", queries,
                   tf.einsum("bxynk,bxynv->bnkv", weights, values))


@pytest.mark.parametrize("shape", SHAPES)
def test_content_attention_gradients_equal_the_literal_einsums(shape):
  tensors = _tensors(shape, seed=2)
  for a, b in zip(_gradients(ops.content_attention, tensors),
                  _gradients(_literal_content_attention, tensors)):
    assert np.abs(a).max() > 1e-3  # Each input really receives a gradient.
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_content_attention_keeps_its_float32_softmax_under_bfloat16():
  keys, queries, values = _tensors((1, 8, 8, 2, 4, 4), seed=3)
  keys = keys * 1e3  # A naive bfloat16 softmax would overflow.
  expected = reference.content_attention(queries, keys, values)
  got = ops.content_attention(*(tf.constant(t, tf.bfloat16) for t in (keys, queries, values)))
  got = tf.cast(got, tf.float32).numpy()
  assert np.isfinite(got).all()
  np.testing.assert_allclose(got, expected, rtol=0.05, atol=0.1)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("axis", attention.AXES)
def test_every_block_split_equals_the_reference(shape, axis):
  _, queries, values = _tensors(shape, seed=4)
  batch, height, width, _, key_dim, _ = shape
  length = height if axis == "column" else width
  lines = width if axis == "column" else height
  table = np.random.default_rng(5).normal(size=(2 * length - 1, key_dim))
  literal = (reference.column_positional_attention if axis == "column" else
             reference.row_positional_attention)
  expected = literal(queries, values, table, None)
  positions = ops.relative_to_absolute(tf.constant(table, tf.float32), length)
  for blocks in _divisors(lines):
    got = ops.positional_attention(tf.constant(queries, tf.float32),
                                   tf.constant(values, tf.float32), positions, axis,
                                   blocks=blocks)
    np.testing.assert_allclose(got.numpy(), expected, rtol=TOLERANCE, atol=TOLERANCE,
                               err_msg=f"{blocks} blocks")


# Eq. 7 as the paper writes it: the scores' and the aggregation's einsums.
_LITERAL_POSITIONAL = {
    "column": ("bxynk,xik->bxyni", "bxyni,biynv->bxynv"),
    "row": ("bxynk,yjk->bxynj", "bxynj,bxjnv->bxynv"),
}


@pytest.mark.parametrize("axis", attention.AXES)
def test_every_block_split_has_the_literal_gradients(axis):
  _, queries, values = _tensors((2, 6, 6, 2, 3, 4), seed=6)
  table = np.random.default_rng(8).normal(size=(11, 3))
  scores, aggregate = _LITERAL_POSITIONAL[axis]

  def literal(q, v, t):
    return tf.einsum(aggregate, tf.einsum(scores, q, ops.relative_to_absolute(t, 6)), v)

  expected = _gradients(literal, [queries, values, table])
  for blocks in (1, 2, 3, 6):
    def function(q, v, t, blocks=blocks):
      return ops.positional_attention(q, v, ops.relative_to_absolute(t, 6), axis, blocks)
    for a, b in zip(_gradients(function, [queries, values, table]), expected):
      assert np.abs(b).max() > 1e-3
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=f"{blocks} blocks")


def test_score_blocks_bound_the_block_size():
  # ResNet-50's first stage at batch 8: 45 MB of column scores.
  shape = (8, 56, 56, 8, 8)
  score_bytes = 8 * 56 * 56 * 8 * 56 * 4
  for budget in (2**20, 4 * 2**20, 16 * 2**20):
    blocks = ops.score_blocks(shape, "column", block_bytes=budget)
    assert 56 % blocks == 0
    assert score_bytes / blocks <= budget
    assert score_bytes / _smaller_divisor(56, blocks) > budget  # The fewest that fit.
  assert ops.score_blocks(shape, "row", block_bytes=10**12) == 1
  # Unknown batch counts as one image (5.6 MB: 6 blocks would do, 7 divide 56 rows);
  # unknown lines cannot be split.
  assert ops.score_blocks((None, 56, 56, 8, 8), "row", block_bytes=2**20) == 7
  assert ops.score_blocks((8, None, None, 8, 8), "row") == 1
  # At most MAX_SCORE_BLOCKS, whatever the size.
  assert ops.score_blocks((64, 512, 512, 8, 8), "row") <= attention.MAX_SCORE_BLOCKS


def _smaller_divisor(count, divisor):
  return max(d for d in _divisors(count) if d < divisor)


def test_blocks_must_divide_the_lines():
  queries = tf.zeros([1, 4, 6, 1, 2])
  positions = tf.zeros([4, 4, 2])
  with pytest.raises(ValueError, match="`blocks`.*dividing the 6 lines.*got 4"):
    ops.positional_attention(queries, queries, positions, "column", blocks=4)


@pytest.mark.parametrize("with_keys,key_dim,value_dim", [(True, 3, 3), (True, 2, 5),
                                                         (False, 3, 3), (False, 4, 2)])
def test_projection_equals_eq_3_sliced(with_keys, key_dim, value_dim):
  rng = np.random.default_rng(9)
  inputs = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
  width = (2 if with_keys else 1) * key_dim + value_dim
  kernel = rng.normal(size=(5, 2, width)).astype(np.float32)
  kqv = np.einsum("bxyd,dnc->bxync", inputs, kernel)  # Eq. 3, then the slices.
  offset = key_dim if with_keys else 0
  expected = (kqv[..., :key_dim] if with_keys else None,
              kqv[..., offset:offset + key_dim], kqv[..., offset + key_dim:])
  got = ops.project_kqv(tf.constant(inputs), tf.constant(kernel), key_dim, with_keys)
  for name, e, g in zip(("keys", "queries", "values"), expected, got):
    if e is None:
      assert g is None
    else:
      np.testing.assert_allclose(g.numpy(), e, rtol=1e-5, atol=1e-5, err_msg=name)
