"""SAN's pairwise and patchwise self-attention (Zhao, Jia, Koltun 2020, eqs. 2 and 4):
the layers of `gsa_keras.layers.san` and the math of `gsa_keras.ops.san_attention`
against the float64 loop reference `tests/support/san_reference.py`, in both Kerases.

Both operators: `y_c(i) = sum_{j in R(i)} w_{c mod W}(i, j) beta_c(x_j)` over the
reflection-padded `k x k` footprint R(i), `W = filters / share_planes`.
"""

import inspect

import numpy as np
import pytest
import tensorflow as tf

from gsa_keras import operators
from gsa_keras import spec
from gsa_keras.applications import keras3 as applications
from gsa_keras.layers import san
from gsa_keras.ops import san_attention
from tests.support import san_reference

OPERATORS = ("pairwise", "patchwise")
NORMS = ("gamma_input_norm", "gamma_hidden_norm")
NORM_WEIGHTS = ("gamma", "beta", "moving_mean", "moving_variance")
SHARED_WEIGHTS = ("phi_kernel", "phi_bias", "psi_kernel", "psi_bias", "beta_kernel",
                  "beta_bias", "gamma_hidden_kernel", "gamma_output_kernel",
                  "gamma_output_bias")
POSITION_WEIGHTS = ("position_kernel", "position_bias")
TOLERANCE = 2e-5  # float32 against float64, relative to the outputs' largest magnitude


def _layer_class(flavour, operator):
  _, layers = flavour
  return {"pairwise": layers.PairwiseSelfAttention,
          "patchwise": layers.PatchwiseSelfAttention}[operator]


def _operator(layer):
  return "pairwise" if isinstance(layer, san.PairwiseSelfAttentionDefinition) else "patchwise"


def _randomize(layer, seed, scale=0.3):
  """Random weights, the batch norms' included: scales around 1, variances > 0."""
  rng = np.random.default_rng(seed)

  def assign(weight, values):
    weight.assign(np.asarray(values, layer.dtype))

  for name in SHARED_WEIGHTS + (POSITION_WEIGHTS if _operator(layer) == "pairwise" else ()):
    weight = getattr(layer, name)
    assign(weight, rng.normal(0.0, scale, tuple(weight.shape)))
  for norm in (getattr(layer, name) for name in NORMS):
    size = norm.gamma.shape[0]
    assign(norm.gamma, 1.0 + rng.normal(0.0, scale, size))
    assign(norm.beta, rng.normal(0.0, scale, size))
    assign(norm.moving_mean, rng.normal(0.0, scale, size))
    assign(norm.moving_variance, 0.5 + np.abs(rng.normal(0.0, 1.0, size)))


def _weights(layer):
  """The layer's weights by the reference's names, as float64 NumPy arrays."""
  names = SHARED_WEIGHTS + (POSITION_WEIGHTS if _operator(layer) == "pairwise" else ())
  weights = {name: np.asarray(getattr(layer, name).numpy(), np.float64) for name in names}
  for norm in NORMS:
    weights[norm] = {name: np.asarray(getattr(getattr(layer, norm), name).numpy(),
                                      np.float64) for name in NORM_WEIGHTS}
  return weights


def _layer_and_inputs(flavour, operator, height=7, width=9, kernel_size=3, channels=16,
                      filters=16, share_planes=8, relation_reduction=4, batch=2, seed=0,
                      dtype="float32"):
  """A built layer with random weights, and random inputs."""
  layer = _layer_class(flavour, operator)(
      filters, kernel_size=kernel_size, share_planes=share_planes,
      relation_reduction=relation_reduction, dtype=dtype)
  x = np.random.default_rng(seed).standard_normal(
      (batch, height, width, channels)).astype(dtype)
  layer(x)
  _randomize(layer, seed + 1)
  return layer, x


def _reference(layer, x, **options):
  return san_reference.san_reference(
      _operator(layer), x, _weights(layer), kernel_size=layer.kernel_size,
      share_planes=layer.share_planes, epsilon=layer.norm_epsilon, **options)


def _assert_close(actual, expected, tolerance=TOLERANCE):
  scale = max(1.0, float(np.abs(expected).max()))
  np.testing.assert_allclose(actual, expected, rtol=0, atol=tolerance * scale)


# -- The math core. -----------------------------------------------------------------------


@pytest.mark.parametrize("height,width,kernel_size", [
    (7, 9, 3), (9, 11, 7), (4, 5, 7), (2, 3, 3), (1, 1, 1)])
def test_footprints_are_numpy_reflect_padding(height, width, kernel_size):
  """The index table reads what `np.pad(mode='reflect')` puts in each window."""
  pixels = np.arange(height * width).reshape(height, width)
  padded = np.pad(pixels, kernel_size // 2, mode="reflect")
  expected = np.array([[padded[i + m // kernel_size, j + m % kernel_size]
                        for m in range(kernel_size ** 2)]
                       for i in range(height) for j in range(width)])
  index = san_attention.reflected_neighbourhood(height, width, kernel_size).numpy()
  np.testing.assert_array_equal(index, expected)


def test_aggregation_gives_output_channel_c_weight_channel_c_mod_w():
  """Weight channel w is one-hot on neighbour w, so output channel c reads beta_c at
  neighbour c mod W (SAN's interleaved sharing), not at c // share_planes."""
  height, width, kernel_size, channels, weight_channels = 4, 5, 3, 16, 4
  values = np.random.default_rng(1).standard_normal((1, height, width, channels))
  weights = np.zeros((1, height, width, kernel_size ** 2, weight_channels))
  for w in range(weight_channels):
    weights[..., w, w] = 1.0
  index = san_attention.reflected_neighbourhood(height, width, kernel_size)
  y = san_attention.interleaved_aggregation(tf.constant(weights), tf.constant(values),
                                            index).numpy()
  padded = np.pad(values[0], ((1, 1), (1, 1), (0, 0)), mode="reflect")

  def reading(neighbour_of_channel):
    return np.array([[[padded[i + m // 3, j + m % 3, c]
                       for c, m in enumerate(map(neighbour_of_channel, range(channels)))]
                      for j in range(width)] for i in range(height)])

  np.testing.assert_allclose(y[0], reading(lambda c: c % weight_channels), atol=1e-12)
  share_planes = channels // weight_channels
  assert np.abs(y[0] - reading(lambda c: c // share_planes)).max() > 0.5


def test_patchwise_layouts_are_sans():
  """The relation is phi, then psi channel-major (r + c k^2 + m); gamma's output channel
  w k^2 + m is neighbour m's weight in weight channel w."""
  height, width, kernel_size, window = 3, 4, 3, 9
  queries = tf.reshape(tf.range(1 * height * width * 2, dtype=tf.float32),
                       [1, height, width, 2]) + 1000.0
  keys = tf.reshape(tf.range(1 * height * width * 2, dtype=tf.float32),
                    [1, height, width, 2])
  index = san_attention.reflected_neighbourhood(height, width, kernel_size)
  relation = san_attention.patchwise_relation(queries, keys, index).numpy()
  neighbours = index.numpy().reshape(height, width, window)
  for c in range(2):
    for m in range(window):
      np.testing.assert_array_equal(relation[0, :, :, 2 + c * window + m],
                                    keys.numpy()[0].reshape(-1, 2)[neighbours[..., m], c])
  np.testing.assert_array_equal(relation[0, :, :, :2], queries.numpy()[0])
  outputs = tf.reshape(tf.range(height * width * 2 * window, dtype=tf.float32),
                       [1, height, width, 2 * window])
  weights = san_attention.patchwise_weights(outputs, kernel_size).numpy()
  for w in range(2):
    for m in range(window):
      np.testing.assert_array_equal(weights[..., m, w], outputs.numpy()[..., w * window + m])


def test_position_grid_is_sans_column_then_row():
  grid = san_attention.position_grid(3, 5).numpy()
  np.testing.assert_allclose(grid[1, :, 0], np.linspace(-1, 1, 5))
  np.testing.assert_allclose(grid[:, 2, 1], np.linspace(-1, 1, 3))
  np.testing.assert_array_equal(san_attention.position_grid(1, 1).numpy(), [[[-1.0, -1.0]]])


# -- Parity with the loop reference. ----------------------------------------------------


@pytest.mark.parametrize("operator", OPERATORS)
@pytest.mark.parametrize("height,width,kernel_size", [
    (7, 9, 3),  # non-square, 3x3
    (9, 11, 7),  # SAN's 7x7 footprint: every pixel within 3 of a border reflects
    (4, 5, 7),  # the smallest input a 7x7 footprint reflects into
])
def test_matches_the_loop_reference(flavour, operator, height, width, kernel_size):
  layer, x = _layer_and_inputs(flavour, operator, height, width, kernel_size)
  y = layer(x).numpy()
  assert y.shape == (2, height, width, 16)
  _assert_close(y, _reference(layer, x))


@pytest.mark.parametrize("operator", OPERATORS)
def test_borders_are_reflected_interiors_need_no_padding(flavour, operator):
  """Pixels whose footprint lies inside the image match a reference with clamped
  (replicated) borders too; every side's border pixels match only the reflected one."""
  layer, x = _layer_and_inputs(flavour, operator, 7, 9, 3, seed=2)
  y = layer(x).numpy()
  reflected, clamped = _reference(layer, x), _reference(layer, x, border="clamp")
  _assert_close(y, reflected)
  interior = (slice(None), slice(1, -1), slice(1, -1))
  _assert_close(y[interior], clamped[interior])
  for side in ((slice(None), 0), (slice(None), -1), (slice(None), slice(None), 0),
               (slice(None), slice(None), -1)):
    assert np.abs(y[side] - clamped[side]).max() > 1e-2, side


@pytest.mark.parametrize("operator", OPERATORS)
def test_output_channel_c_uses_weight_channel_c_mod_w(flavour, operator):
  """16 channels, share_planes 4: W = 4 weight channels. The layer matches the
  reference with c mod W and not one with blocks of share_planes channels (c // 4)."""
  layer, x = _layer_and_inputs(flavour, operator, 5, 6, 3, share_planes=4, seed=3)
  y = layer(x).numpy()
  _assert_close(y, _reference(layer, x))
  blockwise = _reference(layer, x, weight_channel=san_reference.blockwise)
  assert np.abs(y - blockwise).max() > 0.05 * np.abs(y).max()


def test_attention_weights_pairwise_softmax_patchwise_unnormalised(flavour):
  for operator, weights_of in (("pairwise", san_reference.pairwise_attention_weights),
                               ("patchwise", san_reference.patchwise_attention_weights)):
    layer, x = _layer_and_inputs(flavour, operator, 5, 6, 3, seed=4)
    weights = layer.attention_weights(x).numpy()
    assert weights.shape == (2, 5, 6, 9, 2)
    expected = weights_of(x, _weights(layer), kernel_size=3, epsilon=layer.norm_epsilon)
    _assert_close(weights, expected)
    sums = weights.sum(axis=3)
    if operator == "pairwise":
      np.testing.assert_allclose(sums, 1.0, atol=1e-5)
      assert (weights > 0).all()
    else:
      assert np.abs(sums - 1.0).max() > 0.1


@pytest.mark.parametrize("operator", OPERATORS)
def test_training_normalises_with_the_batch_statistics(flavour, operator):
  """gamma's batch norms: statistics over the batch, pixels (and, pairwise, neighbours)
  in training, and the moving statistics follow them with momentum 0.9."""
  layer, x = _layer_and_inputs(flavour, operator, 5, 6, 3, seed=5)
  expected = _reference(layer, x, training=True)
  before = layer.gamma_hidden_norm.moving_mean.numpy().copy()
  _assert_close(layer(x, training=True).numpy(), expected)
  assert np.abs(layer.gamma_hidden_norm.moving_mean.numpy() - before).max() > 1e-3


@pytest.mark.parametrize("operator", OPERATORS)
def test_gradients_match_central_differences_of_the_reference(flavour, operator):
  """float64: d(loss)/d(input and weights) by the tape against central differences of
  the float64 reference, at border, corner and interior pixels."""
  layer, x = _layer_and_inputs(flavour, operator, 4, 5, 3, channels=8, filters=8,
                               share_planes=4, relation_reduction=2, batch=1, seed=6,
                               dtype="float64")
  probe = np.random.default_rng(7).standard_normal((1, 4, 5, 8))
  inputs = tf.constant(x)
  with tf.GradientTape() as tape:
    tape.watch(inputs)
    loss = tf.reduce_sum(layer(inputs) * probe)
  names = SHARED_WEIGHTS + (POSITION_WEIGHTS if operator == "pairwise" else ())
  variables = [getattr(layer, name) for name in names] + [layer.gamma_input_norm.gamma]
  gradients = tape.gradient(loss, [inputs] + variables)
  analytic = {name: np.asarray(gradient) for name, gradient in
              zip(("x",) + names + ("gamma_input_norm",), gradients)}
  weights = _weights(layer)

  def reference_loss(name, at, delta):
    inputs, changed = x.copy(), {key: (dict(value) if isinstance(value, dict) else value)
                                 for key, value in weights.items()}
    if name == "x":
      inputs[at] += delta
    elif name == "gamma_input_norm":
      changed[name]["gamma"] = changed[name]["gamma"].copy()
      changed[name]["gamma"][at] += delta
    else:
      changed[name] = changed[name].copy()
      changed[name][at] += delta
    out = san_reference.san_reference(operator, inputs, changed, kernel_size=3,
                                      share_planes=4, epsilon=layer.norm_epsilon)
    return float(np.sum(out * probe))

  # Input entries at corner, border and interior pixels; for each weight, its entry of
  # the largest gradient (a ReLU may zero some) and its first entry.
  checks = [("x", (0, 0, 0, 1)), ("x", (0, 3, 4, 5)), ("x", (0, 2, 2, 3)),
            ("x", (0, 0, 2, 7))]
  for name in analytic:
    if name not in ("x", "position_bias"):
      largest = np.unravel_index(np.argmax(np.abs(analytic[name])), analytic[name].shape)
      checks += [(name, largest), (name, (0,) * analytic[name].ndim)]
  for name, at in checks:
    numeric = (reference_loss(name, at, 1e-5) - reference_loss(name, at, -1e-5)) / 2e-5
    assert abs(analytic[name][at] - numeric) <= 1e-6 * max(1.0, abs(numeric)), (name, at)
    if name == "x" or at != (0,) * len(at):
      assert abs(numeric) > 1e-4, (name, at)  # a real derivative, not zero = zero
  if operator == "pairwise":  # p's bias cancels in p_i - p_j
    np.testing.assert_allclose(analytic["position_bias"], 0.0, atol=1e-10)


# -- Compilation, precision, configs. -----------------------------------------------------


@pytest.mark.parametrize("operator", OPERATORS)
def test_xla_matches_eager_forward_and_gradients(flavour, operator):
  layer, x = _layer_and_inputs(flavour, operator, 5, 6, 5, seed=8)

  def forward_and_gradients(inputs):
    with tf.GradientTape() as tape:
      outputs = layer(inputs, training=False)
      loss = tf.reduce_sum(tf.square(outputs))
    return outputs, tape.gradient(loss, layer.trainable_weights)

  eager_outputs, eager_gradients = forward_and_gradients(tf.constant(x))
  outputs, gradients = tf.function(forward_and_gradients, jit_compile=True)(tf.constant(x))
  _assert_close(outputs.numpy(), eager_outputs.numpy(), 1e-5)
  for gradient, eager in zip(gradients, eager_gradients):
    _assert_close(np.asarray(gradient), np.asarray(eager), 1e-4)


@pytest.mark.parametrize("operator", OPERATORS)
def test_mixed_bfloat16_is_finite_and_close_to_float32(flavour, operator):
  """Measured: the largest error is about 1-2% of the outputs' largest magnitude (bfloat16
  has 8 significant bits); 5% leaves a margin without hiding a wrong result."""
  layer, x = _layer_and_inputs(flavour, operator, 7, 9, 3, seed=9)
  mixed = _layer_class(flavour, operator)(16, kernel_size=3, relation_reduction=4,
                                          dtype="mixed_bfloat16")
  mixed(x)
  mixed.set_weights(layer.get_weights())
  assert all(weight.dtype == tf.float32 for weight in mixed.weights)
  y = mixed(x, training=False)
  assert y.dtype == tf.bfloat16
  y = tf.cast(y, tf.float32).numpy()
  assert np.isfinite(y).all()
  expected = layer(x).numpy()
  assert np.abs(y - expected).max() <= 0.05 * np.abs(expected).max()


@pytest.mark.parametrize("operator", OPERATORS)
def test_config_round_trip_gives_the_same_layer(flavour, operator):
  keras_module, _ = flavour
  layer_class = _layer_class(flavour, operator)
  options = dict(kernel_size=5, share_planes=4, relation_reduction=8, norm_momentum=0.8,
                 norm_epsilon=1e-3, use_sync_bn=False,
                 kernel_initializer="glorot_uniform",
                 kernel_regularizer=keras_module.regularizers.L2(1e-4))
  layer = layer_class(16, name="san", **options)
  x = np.random.default_rng(10).standard_normal((2, 6, 7, 16)).astype(np.float32)
  layer(x)
  _randomize(layer, 11)
  config = layer.get_config()
  arguments = set(inspect.signature(layer_class).parameters) - {"kwargs"}
  assert arguments <= set(config)
  for option in ("kernel_size", "share_planes", "relation_reduction", "norm_momentum",
                 "norm_epsilon"):
    assert config[option] == options[option]
  rebuilt = layer_class.from_config(config)
  rebuilt(x)
  rebuilt.set_weights(layer.get_weights())
  np.testing.assert_array_equal(rebuilt(x).numpy(), layer(x).numpy())
  assert keras_module.saving.get_registered_name(layer_class) == (
      f"gsa_keras>{layer_class.__name__}")
  assert len(rebuilt.losses) == (6 if operator == "pairwise" else 5)  # one per kernel


@pytest.mark.parametrize("operator", OPERATORS)
def test_parameters_are_sans(flavour, operator):
  """SAN's SAM (`model/san.py`) for 32 input channels, 16 outputs, 7x7, share_planes 8
  and rel_planes 32 // 16 = 2: conv1, conv2 (biased), conv3 (biased), conv_w's batch
  norms (scale and offset), its bias-free and its biased 1x1 convolution, and, pairwise,
  conv_p (2 -> 2 with bias)."""
  layer = _layer_class(flavour, operator)(16, kernel_size=7)
  layer.build((None, 14, 14, 32))
  rel, weight_channels, window = 2, 2, 49
  projections = 2 * (32 * rel + rel) + 32 * 16 + 16
  if operator == "pairwise":
    gamma = (2 * (rel + 2) + (rel + 2) * rel + 2 * rel + rel * weight_channels
             + weight_channels)
    expected = projections + gamma + 2 * 2 + 2
  else:
    inputs = rel * (window + 1)
    gamma = (2 * inputs + inputs * weight_channels + 2 * weight_channels
             + weight_channels * window * weight_channels + window * weight_channels)
    expected = projections + gamma
  assert sum(int(np.prod(w.shape)) for w in layer.trainable_weights) == expected


def test_unknown_input_sizes_are_traced_and_checked_at_run_time(flavour):
  """Under a `tf.function` with unknown batch and spatial sizes the layers give the eager
  outputs, and a too small input fails when it runs."""
  for operator in OPERATORS:
    layer, x = _layer_and_inputs(flavour, operator, 5, 6, 5, seed=12)
    traced = tf.function(lambda inputs, layer=layer: layer(inputs),
                         input_signature=[tf.TensorSpec([None, None, None, 16])])
    _assert_close(traced(x).numpy(), layer(x).numpy(), 1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"`kernel_size`=5 needs "
                                                             r"inputs of more than 2"):
      traced(np.zeros((1, 2, 6, 16), np.float32))


# -- Bad arguments. ----------------------------------------------------------------------


@pytest.mark.parametrize("operator", OPERATORS)
@pytest.mark.parametrize("kwargs,message", [
    (dict(filters=0), r"`filters` must be a positive integer, got 0"),
    (dict(filters=12), r"`filters` \(12\) must be divisible by `share_planes` \(8\)"),
    (dict(kernel_size=4), r"`kernel_size` must be an odd positive integer .* got 4"),
    (dict(kernel_size=True), r"`kernel_size` must be an odd positive integer .* True"),
    (dict(share_planes=0), r"`share_planes` must be a positive integer, got 0"),
    (dict(relation_reduction=2.0), r"`relation_reduction` must be a positive integer, "
                                   r"got 2.0"),
    (dict(norm_momentum=1.0), r"`norm_momentum` must be in \[0.0, 1.0\), got 1.0"),
    (dict(norm_epsilon=0), r"`norm_epsilon` must be a number > 0.0, got 0"),
    (dict(use_sync_bn="yes"), r"`use_sync_bn` must be True or False, got 'yes'"),
])
def test_bad_arguments_raise_naming_them(flavour, operator, kwargs, message):
  kwargs = {"filters": 16, **kwargs}
  with pytest.raises(ValueError, match=message):
    _layer_class(flavour, operator)(kwargs.pop("filters"), **kwargs)


@pytest.mark.parametrize("operator", OPERATORS)
def test_inputs_too_small_or_too_narrow_fail_in_build_before_any_weight(flavour, operator):
  layer = _layer_class(flavour, operator)(16, kernel_size=7)
  with pytest.raises(ValueError, match=r"`kernel_size`=7 needs inputs of more than 3 "
                                       r"pixels along each side .* got a 3x9 input\. Use "
                                       r"inputs of at least 4x4 pixels, or `kernel_size` "
                                       r"<= 5"):
    layer.build((None, 3, 9, 32))
  with pytest.raises(ValueError, match=r"`relation_reduction`=16 leaves no relation "
                                       r"channel for 8 input channels"):
    layer.build((None, 9, 9, 8))
  with pytest.raises(ValueError, match=r"expects inputs of rank 4"):
    layer.build((None, 9, 32))
  assert not layer.weights
  layer.build((None, 4, 4, 32))  # the smallest a 7x7 footprint reflects into
  with pytest.raises(ValueError, match=r"`kernel_size`=7 needs .* got a 2x5 input"):
    layer(np.zeros((1, 2, 5, 32), np.float32))


# -- In the GSA-ResNet structure (`attention_variant`, `gsa_keras.operators`). ----------


@pytest.mark.parametrize("feature_size,expected", [
    ((None, None), 7), ((56, 56), 7), ((4, 9), 7), ((3, 3), 5), ((2, 5), 3), ((1, 1), 1),
])
def test_the_footprint_narrows_only_where_reflection_cannot_reach(feature_size, expected):
  assert operators.san_kernel_size(feature_size) == expected


def _matmul_flops_from_weights(layer, pixels):
  """2 per multiply-accumulate of every 1x1 kernel and of the aggregation, counted from
  the layer's weight shapes: phi, psi and beta at every pixel, gamma's kernels at every
  (pixel, neighbour) pair (pairwise) or every pixel (patchwise)."""
  footprint = layer.kernel_size ** 2
  gamma_positions = pixels * (footprint if layer.pairwise else 1)
  total = 0
  for weight in layer.weights:
    name = weight.name.split("/")[-1].split(":")[0]
    if name in ("phi_kernel", "psi_kernel", "beta_kernel"):
      total += 2 * pixels * int(np.prod(weight.shape))
    elif name in ("gamma_hidden_kernel", "gamma_output_kernel"):
      total += 2 * gamma_positions * int(np.prod(weight.shape))
  return total + 2 * pixels * footprint * layer.filters


@pytest.mark.parametrize("variant", [operators.SAN_PAIRWISE, operators.SAN_PATCHWISE])
def test_a_gsa_resnet_with_sans_operators_builds_runs_and_is_counted(variant):
  model = applications.from_architecture(
      spec.Architecture(model_id=26, attention_variant=variant), input_shape=(32, 32, 3),
      classes=10, weights=None)
  layers = {layer.name: layer for layer in model.layers
            if isinstance(layer, san.SelfAttentionNetworkBase)}
  # 32x32 inputs: 8x8 maps in group 1, 4x4 in group 3's first block (7x7 footprints
  # still fit), 2x2 after it (3x3).
  assert {name: layer.kernel_size for name, layer in layers.items()} == {
      "group1_block1_attention": 7, "group2_block1_attention": 7,
      "group2_block2_attention": 7, "group3_block1_attention": 7,
      "group3_block2_attention": 3, "group3_block3_attention": 3,
      "group3_block4_attention": 3, "group4_block1_attention": 3}
  logits = model(np.random.default_rng(0).normal(size=(2, 32, 32, 3)), training=False)
  assert np.isfinite(logits.numpy()).all()
  # The FLOP rule's 2-per-MAC count holds every kernel and the aggregation, counted
  # here from the weights' shapes; the rest (biases, subtractions, softmax, batch norms
  # and ReLUs in gamma) is a small addition on top.
  layer = layers["group1_block1_attention"]
  counted = operators.find(variant).count_flops(layer, (None, 8, 8, layer.filters), None)
  from_weights = _matmul_flops_from_weights(layer, 64)
  assert from_weights <= counted[operators.ATTENTION] <= 1.1 * from_weights
  assert 0 < counted[operators.ELEMENTWISE] < 0.2 * from_weights


def test_options_of_the_gsa_module_are_refused_for_sans_operators():
  with pytest.raises(ValueError, match="`query_normalization` does not apply"):
    spec.Architecture(attention_variant=operators.SAN_PAIRWISE, query_normalization="l2")
  with pytest.raises(ValueError, match="`max_relative_shift` does not apply"):
    spec.Architecture(attention_variant=operators.SAN_PATCHWISE, max_relative_shift=4)
