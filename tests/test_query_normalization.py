"""The GSA module's optional query normalisation (`query_normalization`, not in the
paper): linear in the input's scale where the paper's module is cubic, serialisable,
and checked before anything is built. Its parity with the loop reference is in
`tests/test_reference_parity.py`."""

import numpy as np
import pytest

from gsa_keras import ops
from gsa_keras.layers import keras3
from gsa_keras.layers import tf_keras
from studies import input_scale

FLAVOURS = {"keras3": keras3, "tf_keras": tf_keras}

def test_l2_scale_starts_at_the_square_root_of_the_key_channels():
  layer = keras3.GlobalSelfAttention(16, num_heads=2, key_channels=8,
                                     query_normalization="l2")
  layer(np.ones((1, 4, 4, 6), np.float32))
  np.testing.assert_allclose(layer.query_scale.numpy(), [2.0, 2.0])  # sqrt(8 / 2)
  assert "query_scale" in [w.path.split("/")[-1] for w in layer.weights]
  assert not hasattr(keras3.GlobalSelfAttention(16, num_heads=2), "query_scale")


def test_an_all_zero_query_stays_finite():
  queries = np.zeros((1, 2, 2, 2, 4), np.float32)
  out = ops.normalize_queries(queries, "l2", np.ones(2, np.float32)).numpy()
  assert np.all(out == 0.0)
  out = ops.normalize_queries(queries, "softmax").numpy()
  np.testing.assert_allclose(out, 0.25)


@pytest.mark.parametrize("method,lower,upper", [
    # The module's growth exponents (1x->2x, 2x->4x) over seeds 0-9 of
    # `studies.input_scale`'s module, bounds widened by the range's width on each side:
    # None 2.97-3.07 (cubic); 'l2' 1.001-1.048: linear, the normalised queries do not
    # change with the scale (the projection has no bias); 'softmax' 1.13-1.72: a
    # softmax sharpens as its logits grow, so its queries still change with the scale.
    (None, 2.8, 3.3), ("l2", 0.95, 1.10), ("softmax", 0.55, 2.3)])
def test_normalised_queries_make_the_module_linear_in_evaluation_mode(
    method, lower, upper):
  for seed in (0, 1):
    layer = input_scale.gsa_layer(seed, "gsa", query_normalization=method)
    inputs = input_scale._inputs(input_scale.LAYER_SHAPE, seed)
    sizes = [input_scale.rms(layer(scale * inputs, training=False))
             for scale in input_scale.SCALES]
    exponents = np.asarray(input_scale.growth_exponents(sizes))
    assert np.all((exponents > lower) & (exponents < upper)), (method, exponents)


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
def test_config_round_trip_keeps_the_normalisation(flavour):
  layer_class = FLAVOURS[flavour].GlobalSelfAttention
  layer = layer_class(8, num_heads=2, query_normalization="l2")
  x = np.random.default_rng(0).standard_normal((1, 4, 4, 8)).astype(np.float32)
  out = layer(x, training=False)
  config = layer.get_config()
  assert config["query_normalization"] == "l2"
  clone = layer_class.from_config(config)
  clone(x, training=False)
  clone.set_weights(layer.get_weights())
  np.testing.assert_array_equal(clone(x, training=False), out)
  assert layer_class(8, num_heads=2).get_config()["query_normalization"] is None


@pytest.mark.parametrize("value", ["L2", "layer", True, 0])
def test_a_bad_normalisation_is_refused_by_name(value):
  with pytest.raises(ValueError, match=r"`query_normalization` must be one of "
                     r"\[None, 'softmax', 'l2'\], got "):
    keras3.GlobalSelfAttention(8, num_heads=2, query_normalization=value)
