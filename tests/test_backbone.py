"""GSA-ResNet backbone: Model Garden registration, serialization, training, config errors."""

import json

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official.vision.configs import common
from official.vision.configs import image_classification
from official.vision.modeling import classification_model
from official.vision.modeling import factory as model_factory
from official.vision.modeling.backbones import factory

import gsa_keras.registry_imports
from gsa_keras import network
from gsa_keras import operators
from gsa_keras import spec
from gsa_keras.backbones import gsa_resnet
from gsa_keras.configs import backbones as configs

SMALL = 32  # The smallest input size the backbone accepts: its total stride.


def _input_specs(size):
  return tf_keras.layers.InputSpec(shape=[None, size, size, 3])


def _build(size=SMALL, l2_regularizer=None, norm_activation=None, **fields):
  """A backbone through the Model Garden factory, from a `Backbone` one-of config."""
  config = configs.Backbone(type="gsa_resnet", gsa_resnet=configs.GSAResNet(**fields))
  return factory.build_backbone(
      input_specs=_input_specs(size), backbone_config=config,
      norm_activation_config=norm_activation or common.NormActivation(
          use_sync_bn=False),
      l2_regularizer=l2_regularizer)


def _attention_layers(model):
  """The layers of every registered attention operator (`gsa_keras.operators`)."""
  attention_types = tuple({layer_type for name in operators.names()
                           for layer_type in operators.get(name).layer_types(tf_keras)})
  return [layer for layer in model.layers if isinstance(layer, attention_types)]


# Every depth, width and attention variant, and Table 5's per-stage choices. Depths
# 101 and 152 take longest to build; they run in the slow set.
_VARIANTS = (
    [dict(model_id=26), dict(model_id=38), dict(model_id=50),
     pytest.param(dict(model_id=101), marks=pytest.mark.slow),
     pytest.param(dict(model_id=152), marks=pytest.mark.slow),
     dict(model_id=26, width_variant="m_resnet"),
     dict(model_id=26, stem_type="v1", stochastic_depth_drop_rate=0.2),
     dict(model_id=26, max_relative_shift=3)] +
    [dict(model_id=26, attention_variant=v)
     for v in spec.ATTENTION_VARIANTS if v != "gsa"] +
    [dict(model_id=26, attention_groups=g) for g in ([], [4], [3, 4], [2, 3, 4], [1])])


@pytest.mark.parametrize("fields", _VARIANTS, ids=lambda f: json.dumps(f))
def test_variant_builds_runs_and_round_trips(fields):
  model = _build(**fields)
  width = spec.WIDTH_VARIANTS[fields.get("width_variant", "standard")]
  expected = {
      str(level): (SMALL // 2**level, SMALL // 2**level,
                   int(64 * 2**(level - 2) * width.scale) * width.expansion)
      for level in range(2, 6)}
  assert {k: tuple(v[1:]) for k, v in model.output_specs.items()} == expected
  groups = fields.get("attention_groups", [1, 2, 3, 4])
  repeats = spec.BLOCK_REPEATS[fields["model_id"]]
  assert len(_attention_layers(model)) == sum(repeats[g - 1] for g in groups)

  images = tf.random.stateless_uniform((2, SMALL, SMALL, 3), seed=(1, 2))
  endpoints = model(images, training=False)
  assert {k: tuple(v.shape[1:]) for k, v in endpoints.items()} == expected
  assert all(np.isfinite(v.numpy()).all() for v in endpoints.values())

  config = model.get_config()
  json.dumps(config)  # Plain JSON: no Python objects left.
  rebuilt = gsa_resnet.GSAResNet.from_config(config)
  assert rebuilt.get_config() == config
  assert [w.shape for w in rebuilt.weights] == [w.shape for w in model.weights]
  rebuilt.set_weights(model.get_weights())
  for level, output in rebuilt(images, training=False).items():
    np.testing.assert_allclose(output.numpy(), endpoints[level].numpy(), atol=1e-5)


def test_registered_for_the_model_garden():
  assert tf_keras.utils.get_registered_name(gsa_resnet.GSAResNet) == "gsa_keras>GSAResNet"
  config = configs.Backbone(type="gsa_resnet")
  assert isinstance(config.get(), configs.GSAResNet)
  assert config.get().attention_groups == [1, 2, 3, 4]


def test_keras_file_round_trip(tmp_path):
  model = _build(model_id=26, attention_groups=[3, 4],
                 l2_regularizer=tf_keras.regularizers.L2(1e-4))
  path = str(tmp_path / "backbone.keras")
  model.save(path)
  loaded = tf_keras.models.load_model(path)
  assert isinstance(loaded, gsa_resnet.GSAResNet)
  assert loaded.get_config() == model.get_config()
  images = tf.random.stateless_uniform((1, SMALL, SMALL, 3), seed=(3, 4))
  np.testing.assert_allclose(loaded(images)["5"].numpy(), model(images)["5"].numpy(),
                             atol=1e-5)


def test_norm_activation_and_regularizer_reach_every_weight():
  l2 = tf_keras.regularizers.L2(1e-4)
  norm_activation = common.NormActivation(
      activation="swish", use_sync_bn=True, norm_momentum=0.9, norm_epsilon=1e-5)
  model = _build(model_id=26, attention_groups=[2, 3, 4], l2_regularizer=l2,
                 norm_activation=norm_activation)

  norms = [layer for layer in model.submodules
           if isinstance(layer, tf_keras.layers.BatchNormalization)]
  attention = _attention_layers(model)
  # One BN per convolution and attention module, plus the one inside each module.
  convs = [layer for layer in model.layers if isinstance(layer, tf_keras.layers.Conv2D)]
  assert len(norms) == len(convs) + 2 * len(attention)
  for norm in norms:
    assert (norm.momentum, norm.epsilon, norm.synchronized) == (0.9, 1e-5, True)
  activations = [layer for layer in model.layers if isinstance(layer, tf_keras.layers.Activation)]
  assert activations and all(layer.activation.__name__ == "swish" for layer in activations)

  # Every kernel and relative embedding is regularized; batch norm is not.
  regularized = [w for layer in convs for w in layer.trainable_weights]
  regularized += [w for layer in attention for w in layer.trainable_weights
                  if "norm" not in w.name]
  assert len(regularized) == len(convs) + 3 * len(attention)
  assert len(model.losses) == len(regularized)
  expected = sum(1e-4 * tf.reduce_sum(tf.square(w)) for w in regularized)
  np.testing.assert_allclose(float(tf.add_n(model.losses)), float(expected), rtol=1e-5)


def test_classification_model_from_experiment_config():
  """The config path the registered experiments use: `ImageClassificationModel.backbone`."""
  model_config = image_classification.ImageClassificationModel(
      num_classes=10, input_size=[SMALL, SMALL, 3],
      backbone=configs.Backbone(type="gsa_resnet",
                                gsa_resnet=configs.GSAResNet(model_id=26)))
  model_config.override({"backbone": {"gsa_resnet": {"attention_groups": [2, 3, 4]}}})
  model = model_factory.build_classification_model(
      _input_specs(SMALL), model_config, tf_keras.regularizers.L2(1e-4))
  assert model(tf.zeros((1, SMALL, SMALL, 3))).shape == (1, 10)
  backbone = model.layers[1]
  assert isinstance(backbone, gsa_resnet.GSAResNet)
  assert backbone.get_config()["attention_groups"] == [2, 3, 4]


@pytest.mark.parametrize("policy,variant", [
    pytest.param("float32", "gsa", marks=pytest.mark.slow),
    pytest.param("mixed_bfloat16", "gsa", marks=pytest.mark.slow),
    pytest.param("mixed_bfloat16", spec.LOCAL_BASELINE, marks=pytest.mark.slow)])
def test_classifier_trains_with_finite_gradients_on_every_weight(policy, variant):
  """A few XLA-compiled (`jit_compile=True`) SGD steps on random data, per policy."""
  tf_keras.mixed_precision.set_global_policy(policy)
  try:
    # Gradient flow through every weight from the first step: without the zero
    # gammas of `zero_init_residual` (which hold the branches back at first; see
    # test_zero_init_residual_tames_the_initial_gradients).
    backbone = _build(model_id=26, l2_regularizer=tf_keras.regularizers.L2(1e-4),
                      zero_init_residual=False, attention_variant=variant)
    model = classification_model.ClassificationModel(
        backbone=backbone, num_classes=10, input_specs=_input_specs(SMALL),
        kernel_regularizer=tf_keras.regularizers.L2(1e-4))
    optimizer = tf_keras.optimizers.SGD(0.01, momentum=0.9)

    @tf.function(jit_compile=True)
    def train_step(images, labels):
      with tf.GradientTape() as tape:
        logits = tf.cast(model(images, training=True), tf.float32)
        loss = tf.reduce_mean(tf_keras.losses.sparse_categorical_crossentropy(
            labels, logits, from_logits=True)) + tf.add_n(model.losses)
      gradients = tape.gradient(loss, model.trainable_variables)
      optimizer.apply_gradients(zip(gradients, model.trainable_variables))
      return loss, gradients

    images = tf.random.stateless_normal((4, SMALL, SMALL, 3), seed=(5, 6))
    labels = tf.constant([0, 3, 5, 9])
    before = [w.numpy() for w in model.trainable_variables]
    for _ in range(3):
      loss, gradients = train_step(images, labels)
      assert np.isfinite(float(loss))
      for variable, gradient in zip(model.trainable_variables, gradients):
        assert gradient is not None, variable.name
        gradient = tf.cast(gradient, tf.float32).numpy()
        assert np.isfinite(gradient).all(), variable.name
        assert np.abs(gradient).max() > 0, variable.name
    for old, variable in zip(before, model.trainable_variables):
      assert not np.array_equal(old, variable.numpy()), variable.name
    if policy == "mixed_bfloat16":
      assert _attention_layers(backbone)[0].compute_dtype == "bfloat16"
  finally:
    tf_keras.mixed_precision.set_global_policy("float32")


# -- Bad configs fail before any layer is built, naming the field. -----------------------

_BAD_CONFIGS = [
    (dict(model_id=34), 224, r"`model_id` must be one of 26, 38, 50, 101, 152, got 34"),
    (dict(attention_groups=[0, 4]), 224, r"`attention_groups` .* got \[0, 4\]"),
    (dict(attention_groups=[2, 5]), 224, r"`attention_groups` .* got \[2, 5\]"),
    (dict(num_heads=7), 224, r"`num_heads`=7 must divide .* group 1 .* 64 channels"),
    (dict(num_heads=48, attention_groups=[3, 4]), 224,
     r"`num_heads`=48 .* group 3 .* 256 channels"),
    (dict(width_variant="wide"), 224, r"`width_variant` must be one of 'standard', "
                                      r"'m_resnet', got 'wide'"),
    (dict(attention_variant="sasa"), 224, r"`attention_variant` must be one of"),
    (dict(attention_variant="local", max_relative_shift=3), 224,
     r"`max_relative_shift` does not apply to attention_variant='local'"),
    (dict(attention_variant="local", num_heads=64), 224,
     r"must be even; `num_heads`=64 on residual group 1's 64 channels gives 1 per head"),
    (dict(stem_type="v2"), 224, r"`stem_type` must be one of 'v0', 'v1', got 'v2'"),
    (dict(), 100, r"`input_specs` height must be a multiple of 32 .* got 100"),
    (dict(), 48, r"`input_specs` height must be a multiple of 32 .* got 48"),
]


@pytest.fixture
def no_model_building(monkeypatch):
  """Fails the test if the backbone starts creating layers."""
  def forbidden(*args, **kwargs):
    raise AssertionError("The backbone started building before validating.")
  monkeypatch.setattr(network.ResNetBuilder, "endpoints", forbidden)


@pytest.mark.parametrize("fields,size,message", _BAD_CONFIGS,
                         ids=[m[:30] for _, _, m in _BAD_CONFIGS])
def test_bad_config_raises_naming_the_field(fields, size, message, no_model_building):
  del no_model_building
  with pytest.raises(ValueError, match=message):
    _build(size=size, **fields)


@pytest.mark.parametrize("fields,size,message",
                         [c for c in _BAD_CONFIGS if c[1] == 224],
                         ids=[m[:30] for f, s, m in _BAD_CONFIGS if s == 224])
def test_config_validate_raises_naming_the_field(fields, size, message):
  del size
  with pytest.raises(ValueError, match=message):
    configs.GSAResNet(**fields).validate()


def test_unknown_input_size_needs_max_relative_shift(no_model_building):
  del no_model_building
  with pytest.raises(ValueError, match=r"`input_specs` height is unknown"):
    gsa_resnet.GSAResNet(
        input_specs=tf_keras.layers.InputSpec(shape=[None, None, None, 3]))


def test_any_input_size_with_local_positional_attention():
  """With `max_relative_shift` the tables are fixed and one model serves every size."""
  model = gsa_resnet.GSAResNet(
      model_id=26, max_relative_shift=3,
      input_specs=tf_keras.layers.InputSpec(shape=[None, None, None, 3]))
  for size in (32, 64):
    endpoints = model(tf.zeros((1, size, size, 3)))
    assert endpoints["5"].shape == (1, size // 32, size // 32, 2048)


def _initial_gradient_norm(**backbone_kwargs):
  """Global gradient norm of a GSA-ResNet-26 classifier at initialisation (32x32)."""
  tf_keras.utils.set_random_seed(0)
  backbone = gsa_resnet.GSAResNet(
      model_id=26, input_specs=tf_keras.layers.InputSpec(shape=[None, 32, 32, 3]),
      **backbone_kwargs)
  images = tf_keras.Input((32, 32, 3))
  features = tf_keras.layers.GlobalAveragePooling2D()(backbone(images)["5"])
  model = tf_keras.Model(images, tf_keras.layers.Dense(10)(features))
  x = tf.random.stateless_normal([64, 32, 32, 3], seed=[1, 2])
  y = tf.random.stateless_uniform([64], seed=[3, 4], maxval=10, dtype=tf.int32)
  with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf_keras.losses.sparse_categorical_crossentropy(
        y, model(x, training=True), from_logits=True))
  grads = tape.gradient(loss, model.trainable_weights)
  return float(tf.linalg.global_norm([tf.convert_to_tensor(g) for g in grads]))


def test_zero_init_residual_tames_the_initial_gradients():
  """Without it GSA modules blow the initial gradients up: at this seed 4,211 vs 95 for
  the convolutional ResNet-26, 9 with it (seeds 0-4: 3,080-7,971 vs 92-96)."""
  gsa = _initial_gradient_norm()
  gsa_plain = _initial_gradient_norm(zero_init_residual=False)
  conv_plain = _initial_gradient_norm(attention_groups=(), zero_init_residual=False)
  assert gsa_plain > 10 * conv_plain, (gsa_plain, conv_plain)
  assert gsa < conv_plain, (gsa, conv_plain)
