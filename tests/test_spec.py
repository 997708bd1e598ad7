"""The network spec is Keras-free, and each argument check is written once."""

import dataclasses
import inspect
import subprocess
import sys
import typing

import pytest
import tf_keras

from official.core import exp_factory
from official.vision.configs import common

from gsa_keras import network
from gsa_keras import registry_imports
from gsa_keras import spec
from gsa_keras.backbones import gsa_resnet
from gsa_keras.configs import backbones as configs
from gsa_keras.layers import tf_keras as gsa_layers

_LOADED_MODULES = """
import sys
import {module}
heavy = sorted(name for name in ("tf_keras", "keras", "official", "tensorflow")
               if name in sys.modules)
print(",".join(heavy))
"""


def _heavy_modules_loaded_by(module):
  result = subprocess.run([sys.executable, "-c", _LOADED_MODULES.format(module=module)],
                          capture_output=True, text=True, check=True)
  return result.stdout.strip().split(",") if result.stdout.strip() else []


def test_importing_the_spec_loads_no_keras_and_no_model_garden():
  assert _heavy_modules_loaded_by("gsa_keras.spec") == []


def test_importing_the_layers_package_loads_no_keras():
  """The flavour (Keras 3 or tf_keras) is imported on first use of a layer."""
  assert "tf_keras" not in _heavy_modules_loaded_by("gsa_keras.layers")
  assert "official" not in _heavy_modules_loaded_by("gsa_keras.layers")


def test_importing_the_configs_loads_the_model_garden_configs_but_not_the_backbone():
  script = ("import sys, gsa_keras.configs.backbones; "
            "print('gsa_keras.backbones.gsa_resnet' in sys.modules, "
            "'official.vision.configs.backbones' in sys.modules)")
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
  assert result.stdout.split() == ["False", "True"]


# The same bad value gets the same message from the layer, the backbone and the config.
_SHARED_CHECKS = [
    (dict(num_heads=0), r"^`num_heads` must be a positive integer, got 0\.$"),
    (dict(num_heads=True), r"^`num_heads` must be a positive integer, got True\.$"),
    (dict(max_relative_shift=-2),
     r"^`max_relative_shift` must be None \(global attention\) or an integer >= 0, "
     r"got -2\.$"),
    (dict(max_relative_shift=2.0),
     r"^`max_relative_shift` must be None \(global attention\) or an integer >= 0, "
     r"got 2\.0\.$"),
]


@pytest.mark.parametrize("fields,message", _SHARED_CHECKS)
def test_layer_backbone_and_config_share_each_check(fields, message):
  with pytest.raises(ValueError, match=message):
    gsa_layers.GlobalSelfAttention(64, **fields)
  with pytest.raises(ValueError, match=message):
    gsa_resnet.GSAResNet(model_id=26, **fields)
  with pytest.raises(ValueError, match=message):
    configs.GSAResNet(model_id=26, **fields).validate()
  with pytest.raises(ValueError, match=message):
    spec.Architecture(model_id=26, **fields)


def test_stem_convs_are_he_et_al_and_resnet_d():
  assert spec.stem_convs("v0", "standard") == (spec.ConvSpec(64, 7, 2),)
  assert spec.stem_convs("v1", "m_resnet") == (
      spec.ConvSpec(36, 3, 2), spec.ConvSpec(36, 3, 1), spec.ConvSpec(72, 3, 1))


def test_residual_groups_of_gsa_resnet_50():
  groups = spec.residual_groups(50, "standard", (2, 3, 4))
  assert [(g.filters, g.output_filters, g.repeats, g.use_attention, g.downsample)
          for g in groups] == [(64, 256, 3, False, False), (128, 512, 4, True, True),
                               (256, 1024, 6, True, True), (512, 2048, 3, True, True)]


def test_backbone_layers_come_from_the_network_builder():
  """The Model Garden backbone is the shared builder's graph under the same names."""
  backbone = gsa_resnet.GSAResNet(
      model_id=26, input_specs=tf_keras.layers.InputSpec(shape=[None, 64, 64, 3]))
  names = [layer.name for layer in backbone.layers]
  assert names[:3] == ["images", "stem_conv1", "stem_conv1_bn"]
  assert "group2_block1_attention" in names and "group2_block1_pool" in names
  assert "group1_block1_conv2" not in names


# -- Every option once: the architecture and every entry point that takes it. -------------


def test_architecture_is_frozen_validated_and_documented():
  architecture = spec.Architecture(model_id=26, attention_groups=[3, 4])
  assert architecture.attention_groups == (3, 4)  # Lists become tuples: hashable.
  with pytest.raises(dataclasses.FrozenInstanceError):
    architecture.num_heads = 4
  with pytest.raises(ValueError, match=r"`num_heads`=7 must divide"):
    architecture.replace(num_heads=7)
  assert set(spec.OPTION_DOCS) == set(spec.OPTION_NAMES)
  for name, doc in spec.OPTION_DOCS.items():
    assert doc.endswith(".") and len(doc) > 20, name
  assert not spec.OPTION_NAMES.count("input_size")  # Not an option: an argument.


@pytest.mark.parametrize("fields,message", [
    (dict(norm_momentum=1.0), r"`norm_momentum` must be in \[0, 1\), got 1\.0"),
    (dict(norm_epsilon=0), r"`norm_epsilon` must be a number > 0, got 0"),
    (dict(zero_init_residual=1), r"`zero_init_residual` must be True or False"),
    (dict(activation=""), r"`activation` must be a name"),
    (dict(stochastic_depth_drop_rate=1.0), r"`stochastic_depth_drop_rate` must be in"),
])
def test_new_options_are_checked_too(fields, message):
  with pytest.raises(ValueError, match=message):
    spec.Architecture(**fields)


def test_the_model_garden_config_is_derived_from_the_architecture():
  """Names, types and defaults, field by field; the batch norm and activation
  options come from the task's `norm_activation`."""
  fields = {f.name: f for f in dataclasses.fields(configs.GSAResNet)
            if f.name not in ("default_params", "restrictions")}
  assert tuple(fields) == configs.BACKBONE_FIELDS
  assert set(configs.BACKBONE_FIELDS) | set(configs.NORM_ACTIVATION_FIELDS) == set(
      spec.OPTION_NAMES)
  hints = typing.get_type_hints(configs.GSAResNet)
  config = configs.GSAResNet()
  for name in configs.BACKBONE_FIELDS:
    expected_type = spec.OPTION_TYPES[name]
    if typing.get_origin(expected_type) is tuple:
      assert hints[name] == typing.List[int], name
      assert getattr(config, name) == list(spec.default(name)), name
    else:
      assert hints[name] == expected_type, name
      assert getattr(config, name) == spec.default(name), name
  assert config.architecture() == spec.Architecture()
  norm = common.NormActivation(activation="swish", use_sync_bn=True, norm_momentum=0.5,
                               norm_epsilon=1e-4)
  assert configs.GSAResNet(model_id=26).architecture(norm) == spec.Architecture(
      model_id=26, activation="swish", use_sync_bn=True, norm_momentum=0.5,
      norm_epsilon=1e-4)
  assert configs.GSAResNet.from_architecture(spec.Architecture(
      attention_groups=(2,))).attention_groups == [2]


def _defaults(signature, names):
  return {name: signature.parameters[name].default for name in names}


def test_every_entry_point_has_the_architectures_defaults():
  """One default per option: the builder, the Model Garden config and backbone, the
  Keras models, the FLOP counter's command and the registered experiments."""
  from gsa_keras import flops
  from gsa_keras.applications import keras3
  from gsa_keras.applications import tf_keras as tf_keras_applications
  defaults = spec.Architecture()
  assert network.ResNetBuilder(tf_keras).architecture == defaults
  assert configs.GSAResNet().architecture() == defaults
  # The backbone has no option of its own: it takes the architecture (or its fields).
  assert list(inspect.signature(gsa_resnet.GSAResNet.__init__).parameters) == [
      "self", "architecture", "input_specs", "kernel_regularizer", "kwargs"]
  for module in (keras3, tf_keras_applications):
    signature = inspect.signature(module.from_architecture)
    assert _defaults(signature, spec.OPTION_NAMES) == defaults.options()
  parser_args = flops.argparse.Namespace(**{name: None for name in spec.OPTION_NAMES})
  assert flops.architecture_from_flags(parser_args) == defaults
  for experiment in ("gsa_resnet_digits", "gsa_resnet_imagenet",
                     "gsa_resnet_fashion_mnist"):
    model = exp_factory.get_exp_config(experiment).task.model
    norm = {name: getattr(model.norm_activation, name)
            for name in ("norm_momentum", "norm_epsilon", "activation")}
    assert norm == {name: getattr(defaults, name) for name in norm}, experiment


def test_every_option_is_a_flag_of_the_flop_counter(capsys):
  from gsa_keras import flops
  with pytest.raises(SystemExit):
    flops.main(["--help"])
  help_text = " ".join(capsys.readouterr().out.split())
  for name in spec.OPTION_NAMES:
    assert f"--{name}" in help_text, name
  args = flops.argparse.Namespace(**{name: None for name in spec.OPTION_NAMES})
  args.attention_groups, args.max_relative_shift = "none", "3"
  args.stochastic_depth_drop_rate, args.zero_init_residual = "0.1", "false"
  assert flops.architecture_from_flags(args) == spec.Architecture(
      attention_groups=(), max_relative_shift=3, stochastic_depth_drop_rate=0.1,
      zero_init_residual=False)


def test_each_options_doc_is_written_once_and_shown_everywhere():
  """The config's and the Keras models' docstrings carry `OPTION_DOCS`."""
  from gsa_keras.applications import keras3

  def words(text):
    return " ".join(text.split())
  for name in configs.BACKBONE_FIELDS:
    assert words(spec.OPTION_DOCS[name]) in words(configs.GSAResNet.__doc__), name
  for name in spec.OPTION_NAMES:
    assert words(spec.OPTION_DOCS[name]) in words(keras3.from_architecture.__doc__), name


def test_the_layers_batch_norm_defaults_are_the_architectures():
  """A GSA layer made on its own normalises as the networks do."""
  for layer_class in (gsa_layers.GlobalSelfAttention,
                      gsa_layers.AxialContentPositionalAttention):
    layer = layer_class(8)
    assert (layer.norm_momentum, layer.norm_epsilon) == (
        spec.default("norm_momentum"), spec.default("norm_epsilon")), layer_class
    assert layer.num_heads == spec.default("num_heads")
