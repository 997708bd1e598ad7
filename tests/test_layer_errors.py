"""Bad arguments and inputs fail with a ValueError that names them, before any weight exists."""

import pytest
import tensorflow as tf


@pytest.mark.parametrize("kwargs,message", [
    (dict(filters=0), r"`filters` must be a positive integer, got 0"),
    (dict(filters=8.0), r"`filters` must be a positive integer, got 8.0"),
    (dict(filters=8, num_heads=-1), r"`num_heads` must be a positive integer, got -1"),
    (dict(filters=10, num_heads=4), r"`filters` \(10\) must be divisible by `num_heads` \(4\)"),
    (dict(filters=8, key_channels=0), r"`key_channels` must be a positive integer, got 0"),
    (dict(filters=8, key_channels=6, num_heads=4),
     r"`key_channels` \(6\) must be divisible by `num_heads` \(4\)"),
    (dict(filters=8, max_relative_shift=-1), r"`max_relative_shift` must be None .* got -1"),
    (dict(filters=8, max_relative_shift=1.5), r"`max_relative_shift` must be None .* got 1.5"),
    (dict(filters=8, spatial_size=(0, 4)), r"`spatial_size` must be a positive integer, got 0"),
    (dict(filters=8, spatial_size=(4, 4, 4)), r"`spatial_size` must be None, an int or a"),
    (dict(filters=8, use_content=False, use_column=False, use_row=False),
     r"At least one of `use_content`, `use_column` and `use_row`"),
])
def test_bad_constructor_arguments(flavour, kwargs, message):
  _, layers = flavour
  with pytest.raises(ValueError, match=message):
    layers.GlobalSelfAttention(**kwargs)


@pytest.mark.parametrize("layer_kwargs,input_shape,message", [
    (dict(), (2, 4, 8), r"expects inputs of rank 4 \(batch, height, width, channels\)"),
    (dict(), (2, 4, 4, 4, 8), r"expects inputs of rank 4"),
    (dict(), (2, 4, 4, None), r"needs a known channel dimension"),
    (dict(num_heads=4), (2, 4, 4, 6),
     r"the input channels \(6\) must be divisible by `num_heads` \(4\)"),
    (dict(), (None, None, 4, 8),
     r"must know the input's column length .* Pass `spatial_size=\(height, width\)`"),
    (dict(), (None, 4, None, 8), r"must know the input's row length"),
    (dict(spatial_size=(4, 6)), (None, 5, 6, 8),
     r"the input's column length 5 exceeds what its relative embeddings cover \(at most 4"),
])
def test_bad_input_shapes_fail_in_build_before_any_weight(flavour, layer_kwargs,
                                                          input_shape, message):
  _, layers = flavour
  layer_kwargs.setdefault("num_heads", 2)
  for cls in (layers.GlobalSelfAttention, layers.AxialContentPositionalAttention):
    layer = cls(8, **layer_kwargs)
    with pytest.raises(ValueError, match=message):
      layer.build(input_shape)
    assert not layer.weights


def test_unknown_spatial_size_is_fine_with_max_relative_shift_or_spatial_size(flavour):
  _, layers = flavour
  layers.GlobalSelfAttention(8, num_heads=2, max_relative_shift=3).build((None, None, None, 8))
  layers.GlobalSelfAttention(8, num_heads=2, spatial_size=5).build((None, None, None, 8))


def test_input_larger_than_the_embeddings_fails_in_call(flavour):
  _, layers = flavour
  layer = layers.GlobalSelfAttention(8, num_heads=2)
  layer(tf.zeros([1, 4, 4, 8]))
  layer(tf.zeros([1, 3, 2, 8]))  # Smaller inputs are fine.
  with pytest.raises(ValueError, match=r"the input's row length 6 exceeds .*at most 4"):
    layer(tf.zeros([1, 4, 6, 8]))


def test_from_variant_rejects_unknown_names(flavour):
  _, layers = flavour
  with pytest.raises(ValueError, match=r"`variant` must be one of \['gsa', 'positional'"):
    layers.GlobalSelfAttention.from_variant("colum", 8)
