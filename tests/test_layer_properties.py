"""Properties of the GSA layers that follow from the paper, in both Keras flavours."""

import numpy as np
import pytest
import tensorflow as tf

from gsa_keras import ops
from gsa_keras import spec


def _inputs(shape, seed=0, scale=1.0):
  return tf.constant(np.random.default_rng(seed).normal(size=shape) * scale, tf.float32)


def test_content_only_output_is_equivariant_to_pixel_permutations(flavour):
  _, layers = flavour
  layer = layers.GlobalSelfAttention(8, num_heads=2, use_column=False, use_row=False)
  x = _inputs([2, 4, 5, 6])
  permutation = np.random.default_rng(1).permutation(20)

  def permute(t):
    flat = tf.reshape(t, [2, 20, -1])
    return tf.reshape(tf.gather(flat, permutation, axis=1), [2, 4, 5, -1])

  np.testing.assert_allclose(layer(permute(x)), permute(layer(x)), atol=1e-5)
  # Positional attention breaks this symmetry, which is why the paper adds it.
  full = layers.GlobalSelfAttention(8, num_heads=2)
  assert not np.allclose(full(permute(x)), permute(full(x)), atol=1e-3)


@pytest.mark.parametrize("max_relative_shift", [None, 2])
def test_positional_output_is_equivariant_to_translation_away_from_borders(
    flavour, max_relative_shift):
  _, layers = flavour
  layer = layers.GlobalSelfAttention.from_variant(
      "positional", 8, num_heads=2, max_relative_shift=max_relative_shift)
  # Content in a 3x3 block, zeros around it: moving the block by (2, 1) inside the
  # 8x8 image moves the output with it (eq. 7 depends on i - x only).
  block = _inputs([1, 3, 3, 4])
  x = tf.pad(block, [[0, 0], [1, 4], [2, 3], [0, 0]])
  shifted = tf.pad(block, [[0, 0], [3, 2], [3, 2], [0, 0]])
  y = layer(x, training=False).numpy()
  y_shifted = layer(shifted, training=False).numpy()
  np.testing.assert_allclose(y_shifted[:, 2:, 1:], y[:, :-2, :-1], atol=1e-5)
  np.testing.assert_allclose(y_shifted[:, :2], 0, atol=1e-6)


# SAN's layers: every weight's gradient against finite differences in
# tests/test_san_attention.py.
@pytest.mark.parametrize("variant", [variant for variant in spec.ATTENTION_VARIANTS
                                     if not variant.startswith("san_")])
def test_gradients_reach_every_trainable_weight(flavour, variant):
  _, layers = flavour
  if variant == spec.AXIAL_BASELINE:
    layer = layers.AxialContentPositionalAttention(8, num_heads=2)
  elif variant == spec.LOCAL_BASELINE:  # Even key channels per head: 4 over 2 heads.
    layer = layers.LocalSelfAttention(8, num_heads=2, kernel_size=3, key_channels=4)
  else:
    layer = layers.GlobalSelfAttention.from_variant(variant, 8, num_heads=2)
  x = _inputs([2, 5, 4, 6])
  layer(x)
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(tf.square(layer(x, training=True)) * _inputs([2, 5, 4, 8], 1))
  weights = layer.trainable_weights
  grads = tape.gradient(loss, weights)
  if variant == spec.LOCAL_BASELINE:
    expected = {"kqv_kernel", "row_offset_embeddings", "column_offset_embeddings"}
  else:
    expected = {"kqv_kernel"} | {f"{a}_embeddings" for a in layer._attended_axes}
    if len(layer._attended_axes) == 2:
      expected |= {"gamma", "beta"}
  assert {w.name.split("/")[-1].split(":")[0] for w in weights} == expected
  for weight, grad in zip(weights, grads):
    assert grad is not None, weight.name
    assert np.abs(tf.convert_to_tensor(grad).numpy()).max() > 0, weight.name


@pytest.mark.parametrize("axial", [False, True])
def test_xla_and_eager_agree(flavour, axial):
  _, layers = flavour
  cls = layers.AxialContentPositionalAttention if axial else layers.GlobalSelfAttention
  layer = cls(16, num_heads=4, max_relative_shift=3)
  x = _inputs([2, 7, 6, 8])
  eager = layer(x, training=False)
  compiled = tf.function(lambda t: layer(t, training=False), jit_compile=True)(x)
  np.testing.assert_allclose(compiled, eager, atol=1e-5, rtol=1e-5)


# Keys reach ~50 (bfloat16 case) and ~13 (float16 case): a softmax computed naively in
# float16 would overflow (exp(11.1) > 65504); the outputs stay within float16's range.
@pytest.mark.parametrize("policy,scale,tolerance", [("mixed_bfloat16", 30.0, 5e-2),
                                                    ("mixed_float16", 8.0, 5e-3)])
def test_mixed_precision_keeps_float32_variables_and_stays_close(flavour, policy, scale,
                                                                 tolerance):
  _, layers = flavour
  x = _inputs([2, 6, 6, 16], scale=scale)
  reference = layers.GlobalSelfAttention(16, num_heads=4)
  mixed = layers.GlobalSelfAttention(16, num_heads=4, dtype=policy)
  reference(x)
  mixed(x)
  rng = np.random.default_rng(7)
  reference.set_weights([rng.normal(size=w.shape) * 0.25 for w in reference.weights[:3]] +
                        reference.get_weights()[3:])
  mixed.set_weights(reference.get_weights())
  assert all(w.dtype == tf.float32 for w in mixed.weights)
  keys, _, _ = ops.project_kqv(x, reference.kqv_kernel, key_dim=4)
  assert tf.reduce_max(keys) > 12.0  # The scenario really stresses the softmax.
  y32 = reference(x, training=False).numpy()
  y = mixed(x, training=False)
  assert y.dtype == tf.as_dtype(policy.split("_")[1])
  y = tf.cast(y, tf.float32).numpy()
  assert np.isfinite(y).all()
  relative_error = np.linalg.norm(y - y32) / np.linalg.norm(y32)
  assert relative_error < tolerance


def test_unknown_batch_size_in_a_functional_model(flavour):
  keras, layers = flavour
  inputs = keras.Input(shape=(6, 5, 8))
  outputs = layers.GlobalSelfAttention(8, num_heads=2)(inputs)
  model = keras.Model(inputs, outputs)
  assert tuple(outputs.shape) == (None, 6, 5, 8)
  for batch in (1, 3):
    assert tuple(model(_inputs([batch, 6, 5, 8])).shape) == (batch, 6, 5, 8)


def test_compute_output_shape(flavour):
  _, layers = flavour
  layer = layers.GlobalSelfAttention(24, num_heads=4)
  assert tuple(layer.compute_output_shape((None, 7, 9, 8))) == (None, 7, 9, 24)


def test_max_relative_shift_works_for_any_size(flavour):
  _, layers = flavour
  layer = layers.GlobalSelfAttention(8, num_heads=2, max_relative_shift=2)
  layer(_inputs([1, 4, 4, 8]))
  assert tuple(layer.column_embeddings.shape) == (5, 4)
  for size in (1, 3, 11):
    assert layer(_inputs([1, size, size + 2, 8])).shape == (1, size, size + 2, 8)


def test_dynamic_spatial_size_under_tf_function(flavour):
  _, layers = flavour
  layer = layers.GlobalSelfAttention(8, num_heads=2, spatial_size=(6, 6))
  spec = tf.TensorSpec([None, None, None, 4], tf.float32)
  fn = tf.function(lambda t: layer(t, training=False), input_signature=[spec])
  x = _inputs([1, 4, 5, 4])
  np.testing.assert_allclose(fn(x), layer(x, training=False), atol=1e-6)
  with pytest.raises(tf.errors.InvalidArgumentError, match="relative embeddings cover"):
    fn(_inputs([1, 7, 5, 4]))


def test_transfer_weights_resizes_embeddings_for_a_new_resolution(flavour):
  keras, layers = flavour

  def model(size):
    inputs = keras.Input(shape=(size, size, 8))
    x = layers.GlobalSelfAttention(8, num_heads=2)(inputs)
    return keras.Model(inputs, layers.GlobalSelfAttention(8, num_heads=2)(x))

  small, large = model(4), model(7)
  layers.transfer_weights(small, large)
  for old, new in zip(small.weights, large.weights):
    if "embeddings" in new.name:
      assert tuple(new.shape) == (13, 4) and tuple(old.shape) == (7, 4)
      np.testing.assert_allclose(new.numpy()[[0, 6, 12]], old.numpy()[[0, 3, 6]],
                                 atol=1e-6)
    else:
      np.testing.assert_array_equal(new.numpy(), old.numpy())
  with pytest.raises(ValueError, match="same architecture"):
    layers.transfer_weights(small, keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)]))
