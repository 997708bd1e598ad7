"""Table 3's local self-attention baseline (Ramachandran et al. 2019): the layer against
the loop-by-loop reference, its errors, its FLOPs, and the `local` backbone variant.

Stand-alone self-attention's equation (Ramachandran et al. 2019), per head:
`y_ij = sum_{(a,b) in N(i,j)} softmax_ab(q_ij . k_ab + q_ij . r_{a-i,b-j}) v_ab`.
"""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official.vision.configs import common
from official.vision.modeling import classification_model
from official.vision.modeling.backbones import factory

import gsa_keras.registry_imports
from gsa_keras import flops
from gsa_keras import spec
from gsa_keras.configs import backbones as configs
from tests.support import paper_costs
from tests.support import reference

TOLERANCE = 1e-5
TABLES = ("row_offset_embeddings", "column_offset_embeddings")


def _layer_and_inputs(layers, height, width, kernel_size, heads=2, channels=8, filters=6,
                      seed=0, batch=2):
  """A built layer with random weights and random inputs."""
  rng = np.random.default_rng(seed)
  layer = layers.LocalSelfAttention(filters, num_heads=heads, kernel_size=kernel_size)
  x = rng.standard_normal((batch, height, width, channels)).astype(np.float32)
  layer(x)
  for weight in layer.weights:
    weight.assign(rng.normal(0.0, 0.4, tuple(weight.shape)).astype(np.float32))
  return layer, x


def _reference(layer, x, **mutation):
  key_dim = layer.kqv_kernel.shape[-1] - layer.filters // layer.num_heads
  return reference.local_reference(
      x, layer.kqv_kernel.numpy(), layer.row_offset_embeddings.numpy(),
      layer.column_offset_embeddings.numpy(), num_heads=layer.num_heads,
      key_dim=key_dim // 2, value_dim=layer.filters // layer.num_heads,
      kernel_size=layer.kernel_size, **mutation)


# -- Parity with the loop reference. ----------------------------------------------------


@pytest.mark.parametrize("height,width,kernel_size,heads", [
    (5, 5, 3, 2),  # square
    (4, 9, 3, 2),  # non-square
    (6, 5, 7, 2),  # the paper's window, larger than the image on one side
    (3, 7, 7, 1),  # one head
    (4, 6, 1, 2),  # a 1x1 window: every pixel attends to itself only
])
def test_matches_the_loop_reference(flavour, height, width, kernel_size, heads):
  _, layers = flavour
  layer, x = _layer_and_inputs(layers, height, width, kernel_size, heads=heads)
  y = layer(x).numpy()
  np.testing.assert_allclose(y, _reference(layer, x), rtol=TOLERANCE, atol=TOLERANCE)
  assert y.shape == (2, height, width, 6)


def test_a_1x1_window_returns_the_values(flavour):
  """softmax over one neighbour is 1: the output is the value projection itself."""
  _, layers = flavour
  layer, x = _layer_and_inputs(layers, 4, 5, 1)
  values = np.einsum("bxyd,dnc->bxync", x, layer.kqv_kernel.numpy()[..., 8:])
  np.testing.assert_allclose(layer(x).numpy(), values.reshape(2, 4, 5, 6), atol=1e-5)


def test_padding_is_masked_at_the_corners_and_irrelevant_inside(flavour):
  """Corner pixels match the masked reference and not a zero-padded one; pixels whose
  window lies inside the image (>= r from every border) match both."""
  _, layers = flavour
  layer, x = _layer_and_inputs(layers, 7, 8, 3, seed=3)
  y = layer(x).numpy()
  masked = _reference(layer, x)
  zero_padded = _reference(layer, x, mask_padding=False)
  interior = (slice(None), slice(1, -1), slice(1, -1))
  np.testing.assert_allclose(y[interior], masked[interior], atol=TOLERANCE)
  np.testing.assert_allclose(y[interior], zero_padded[interior], atol=TOLERANCE)
  for corner in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
    at = (slice(None),) + corner
    np.testing.assert_allclose(y[at], masked[at], atol=TOLERANCE)
    assert np.abs(y[at] - zero_padded[at]).max() > 1e-2, corner


def test_padded_neighbours_take_no_weight(flavour):
  """Changing only out-of-window pixels does not change a corner pixel's output, and
  the corner ignores what lies beyond the border however large the logits."""
  _, layers = flavour
  layer, x = _layer_and_inputs(layers, 6, 6, 3, seed=4, batch=1)
  moved = x.copy()
  moved[:, 2:, :] += 50.0  # Rows 2.. are outside pixel (0, 0)'s 3x3 window.
  moved[:, :, 2:] += 50.0
  np.testing.assert_allclose(layer(moved).numpy()[:, 0, 0], layer(x).numpy()[:, 0, 0],
                             atol=1e-5)


def test_gradients_on_every_weight_match_the_reference(flavour):
  """d(loss)/d(weight) for the kernel and both tables against float64 central
  differences of the loop reference."""
  _, layers = flavour
  layer, x = _layer_and_inputs(layers, 4, 5, 3, seed=5, batch=1)
  probe = np.random.default_rng(6).standard_normal((1, 4, 5, 6))
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(layer(x) * probe)
  gradients = dict(zip((w.name.split("/")[-1].split(":")[0] for w in layer.weights),
                       tape.gradient(loss, layer.weights)))
  assert set(gradients) == {"kqv_kernel"} | set(TABLES)
  weights = {name: getattr(layer, name).numpy().astype(np.float64)
             for name in gradients}

  def reference_loss(name, index, delta):
    changed = dict(weights)
    changed[name] = weights[name].copy()
    changed[name][index] += delta
    out = reference.local_reference(
        x, changed["kqv_kernel"], changed[TABLES[0]], changed[TABLES[1]], num_heads=2,
        key_dim=4, value_dim=3, kernel_size=3)
    return float(np.sum(out * probe))

  for name, index in [("kqv_kernel", (1, 0, 0)), ("kqv_kernel", (5, 1, 6)),
                      ("kqv_kernel", (2, 1, 9)), (TABLES[0], (0, 1)), (TABLES[0], (2, 0)),
                      (TABLES[1], (1, 1)), (TABLES[1], (2, 0))]:
    numeric = (reference_loss(name, index, 1e-4) - reference_loss(name, index, -1e-4)) / 2e-4
    analytic = float(tf.convert_to_tensor(gradients[name]).numpy()[index])
    assert abs(analytic - numeric) <= 1e-3 * max(1.0, abs(numeric)), (name, index)
    assert abs(numeric) > 1e-3, (name, index)  # A real derivative, not zero = zero.


def test_xla_mixed_precision_and_config_round_trip(flavour):
  keras_module, layers = flavour
  layer, x = _layer_and_inputs(layers, 9, 7, 7, heads=2, seed=7)
  eager = layer(x).numpy()
  compiled = tf.function(lambda t: layer(t), jit_compile=True)(x)
  np.testing.assert_allclose(compiled, eager, atol=1e-5, rtol=1e-5)

  mixed = layers.LocalSelfAttention(6, num_heads=2, dtype="mixed_bfloat16")
  mixed(x)
  mixed.set_weights(layer.get_weights())
  assert all(w.dtype == tf.float32 for w in mixed.weights)
  y = mixed(x)
  assert y.dtype == tf.bfloat16
  np.testing.assert_allclose(tf.cast(y, tf.float32).numpy(), eager, atol=0.1)

  config = layer.get_config()
  assert config["kernel_size"] == 7 and config["num_heads"] == 2
  rebuilt = type(layer).from_config(config)
  rebuilt(x)
  rebuilt.set_weights(layer.get_weights())
  np.testing.assert_allclose(rebuilt(x).numpy(), eager, atol=1e-6)
  assert keras_module.saving.get_registered_name(type(layer)) == (
      "gsa_keras>LocalSelfAttention")


# -- Bad arguments. ----------------------------------------------------------------------


@pytest.mark.parametrize("kwargs,message", [
    (dict(kernel_size=4), r"`kernel_size` must be an odd positive integer .* got 4"),
    (dict(kernel_size=0), r"`kernel_size` must be an odd positive integer .* got 0"),
    (dict(kernel_size=3.0), r"`kernel_size` must be an odd positive integer .* got 3.0"),
    (dict(kernel_size=True), r"`kernel_size` must be an odd positive integer .* True"),
    (dict(num_heads=0), r"`num_heads` must be a positive integer, got 0"),
    (dict(num_heads=3), r"`filters` \(8\) must be divisible by `num_heads` \(3\)"),
    (dict(num_heads=4, key_channels=12),
     r"must be even; `key_channels`=12 over `num_heads`=4 gives 3 per head"),
    (dict(num_heads=4, key_channels=10),
     r"`key_channels` \(10\) must be divisible by `num_heads` \(4\)"),
])
def test_bad_arguments_raise_naming_them(flavour, kwargs, message):
  _, layers = flavour
  with pytest.raises(ValueError, match=message):
    layers.LocalSelfAttention(8, **kwargs)


def test_odd_default_key_channels_fail_in_build_before_any_weight(flavour):
  _, layers = flavour
  layer = layers.LocalSelfAttention(8, num_heads=2)
  with pytest.raises(ValueError, match=r"the input channels \(6, the default "
                                       r"`key_channels`\) over `num_heads`=2 gives 3"):
    layer.build((None, 5, 5, 6))
  assert not layer.weights
  with pytest.raises(ValueError, match=r"expects inputs of rank 4"):
    layer.build((None, 5, 6))


# -- The backbone variant. ---------------------------------------------------------------


def test_local_resnet50_has_table3s_parameters_and_flops():
  """Table 3: 18.0M parameters, 7.0 GFLOPs. Ours: 18,015,504 (+0.1%), and 6.84 GFLOPs
  (-2.3%) counting the relative logits as the layer computes them (`flops`)."""
  cost = paper_costs.model_cost("Local-ResNet-50")
  assert cost.trainable_params == 18_015_504
  assert abs(cost.trainable_params / 18.0e6 - 1) <= 0.02
  assert cost.multiply_accumulate_flops == 6_839_386_104
  assert abs(cost.multiply_accumulate_flops / 7.0e9 - 1) <= 0.05
  assert abs(cost.flops / 7.0e9 - 1) <= 0.05
  local = [layer for layer in cost.layers if layer.layer_type == "LocalSelfAttention"]
  assert len(local) == 16  # every 3x3 convolution of ResNet-50's 16 blocks
  # The first module: 56x56 pixels, 64 channels, 8 heads, 7x7 windows.
  pixels, d, window, heads = 56 * 56, 64, 49, 8
  assert local[0].flops[flops.ATTENTION] == (
      2 * pixels * d * 3 * d + 2 * pixels * window * d + 2 * pixels * 7 * d +
      5 * pixels * window * heads + 2 * pixels * window * d)
  assert local[0].params == 64 * 8 * 24 + 2 * 7 * 4


def test_factory_build_forward_and_xla_bfloat16_training_step():
  """The Model Garden factory builds `attention_variant: local`; a forward pass and an
  XLA-compiled SGD step under mixed_bfloat16 give finite, non-zero gradients."""
  tf_keras.mixed_precision.set_global_policy("mixed_bfloat16")
  try:
    backbone = factory.build_backbone(
        input_specs=tf_keras.layers.InputSpec(shape=[None, 32, 32, 3]),
        backbone_config=configs.Backbone(type="gsa_resnet", gsa_resnet=configs.GSAResNet(
            model_id=26, attention_variant="local", attention_groups=[3, 4],
            zero_init_residual=False)),
        norm_activation_config=common.NormActivation(use_sync_bn=False))
    local = [layer for layer in backbone.layers if type(layer).__name__ == "LocalSelfAttention"]
    assert len(local) == 5 and local[0].compute_dtype == "bfloat16"
    assert local[0].kernel_size == spec.LOCAL_KERNEL_SIZE == 7
    model = classification_model.ClassificationModel(
        backbone=backbone, num_classes=10,
        input_specs=tf_keras.layers.InputSpec(shape=[None, 32, 32, 3]))
    images = tf.random.stateless_normal((2, 32, 32, 3), seed=(1, 2))
    assert model(images, training=False).shape == (2, 10)
    optimizer = tf_keras.optimizers.SGD(0.01)

    @tf.function(jit_compile=True)
    def train_step(labels):
      with tf.GradientTape() as tape:
        logits = tf.cast(model(images, training=True), tf.float32)
        loss = tf.reduce_mean(tf_keras.losses.sparse_categorical_crossentropy(
            labels, logits, from_logits=True))
      gradients = tape.gradient(loss, model.trainable_variables)
      optimizer.apply_gradients(zip(gradients, model.trainable_variables))
      return loss, gradients

    loss, gradients = train_step(tf.constant([1, 7]))
    assert np.isfinite(float(loss))
    for layer in local:
      for weight in layer.trainable_weights:
        gradient = tf.cast(gradients[[v is weight for v in model.trainable_variables]
                                     .index(True)], tf.float32).numpy()
        assert np.isfinite(gradient).all() and np.abs(gradient).max() > 0, weight.name
  finally:
    tf_keras.mixed_precision.set_global_policy("float32")
