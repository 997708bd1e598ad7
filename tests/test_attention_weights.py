"""`GlobalSelfAttention.attention_weights` against loop-by-loop NumPy scores."""

import numpy as np
import pytest
import tensorflow as tf

from tests.support import reference

HEADS = 2


def _reference_weights(layer, x):
  """Eq. 4's softmax(K) and eq. 7's S = Q P, loop by loop in float64 from the weights."""
  kernel = layer.kqv_kernel.numpy()
  value_dim = layer.filters // HEADS
  key_dim = (kernel.shape[-1] - value_dim) // (2 if layer.use_content else 1)
  keys, queries, _ = reference.split_kqv(reference.kqv_projection(x, kernel), key_dim,
                                         value_dim, layer.use_content)
  batch, height, width = x.shape[:3]
  reach = reference.window_half_width(layer.max_relative_shift)
  expected = {}
  if layer.use_content:
    content = np.zeros_like(keys)
    for b in range(batch):
      for n in range(HEADS):
        for c in range(key_dim):
          content[b, :, :, n, c] = reference.softmax_1d(
              keys[b, :, :, n, c].ravel()).reshape(height, width)
    expected["content"] = content
  for axis, length, used in (("column", height, layer.use_column),
                             ("row", width, layer.use_row)):
    if not used:
      continue
    table = getattr(layer, f"{axis}_embeddings").numpy()
    scores = np.zeros((batch, height, width, HEADS, length))
    for b in range(batch):
      for px in range(height):
        for py in range(width):
          own = px if axis == "column" else py
          for n in range(HEADS):
            for other in range(length):
              if abs(other - own) <= reach:
                scores[b, px, py, n, other] = queries[b, px, py, n] @ (
                    reference.relative_embedding(table, other - own))
    expected[axis] = scores
  return expected


@pytest.mark.parametrize("variant,max_relative_shift", [
    ("gsa", None), ("gsa", 1), ("positional", None), ("content_row", 2),
    ("column", None)])
def test_weights_equal_the_reference(flavour, variant, max_relative_shift):
  _, gsa_layers = flavour
  layer = gsa_layers.GlobalSelfAttention.from_variant(
      variant, 8, num_heads=HEADS, max_relative_shift=max_relative_shift)
  x = np.random.default_rng(3).normal(size=(2, 5, 4, 6)).astype(np.float32)
  weights = layer.attention_weights(x)
  expected = _reference_weights(layer, x)
  assert set(weights) == set(expected)
  for kind, values in expected.items():
    np.testing.assert_allclose(weights[kind].numpy(), values, rtol=1e-4, atol=1e-5,
                               err_msg=kind)


def test_column_only_output_is_its_weights_times_the_values(flavour):
  """The weights are the ones the output uses: Y = S V (eq. 7) with the layer's V."""
  _, gsa_layers = flavour
  layer = gsa_layers.GlobalSelfAttention.from_variant("column", 8, num_heads=HEADS)
  x = np.random.default_rng(4).normal(size=(1, 6, 3, 4)).astype(np.float32)
  outputs = layer(x).numpy()
  scores = layer.attention_weights(x)["column"].numpy()  # (b, x, y, n, i)
  _, _, values = reference.split_kqv(
      reference.kqv_projection(x, layer.kqv_kernel.numpy()), 2, 4, False)
  expected = np.einsum("bxyni,biynv->bxynv", scores, values).reshape(1, 6, 3, 8)
  np.testing.assert_allclose(outputs, expected, rtol=1e-4, atol=1e-5)


def test_weights_under_mixed_bfloat16_stay_close(flavour):
  _, gsa_layers = flavour
  layer = gsa_layers.GlobalSelfAttention(8, num_heads=HEADS, dtype="mixed_bfloat16")
  x = np.random.default_rng(5).normal(size=(1, 4, 4, 8)).astype(np.float32)
  weights = layer.attention_weights(x)
  assert weights["column"].dtype == tf.bfloat16
  expected = _reference_weights(layer, x)
  np.testing.assert_allclose(
      tf.cast(weights["content"], tf.float32).numpy(), expected["content"], atol=2e-2)
