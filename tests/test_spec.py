"""The network spec is Keras-free, and each argument check is written once."""

import subprocess
import sys

import pytest
import tf_keras

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
    spec.check_arguments(model_id=26, **fields)


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
