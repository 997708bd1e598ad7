"""Typed configs for the GSA-ResNet backbone (`backbone.type: gsa_resnet`).

`GSAResNet` is derived from `gsa_keras.spec.Architecture`: one field per option of
the network, with the option's name, type (tuples as lists, as YAML has them) and
default, except the batch norm and activation options (`NORM_ACTIVATION_FIELDS`),
which the Model Garden keeps in the task's `model.norm_activation` for every backbone.
`GSAResNet.architecture(norm_activation)` joins the two into the `Architecture` the
backbone is built from.
"""

import dataclasses
import typing
from typing import List, Optional

from official.modeling import hyperparams
from official.vision.configs import backbones as vision_backbones
from official.vision.configs import common

from gsa_keras import spec

# The options the Model Garden reads from `task.model.norm_activation` (same names).
NORM_ACTIVATION_FIELDS = ("activation", "use_sync_bn", "norm_momentum", "norm_epsilon")
# The options in `backbone.gsa_resnet`.
BACKBONE_FIELDS = tuple(name for name in spec.OPTION_NAMES
                        if name not in NORM_ACTIVATION_FIELDS)


@dataclasses.dataclass
class _GSAResNetBase(hyperparams.Config):
  """What `GSAResNet` adds to its fields."""

  def architecture(self, norm_activation: Optional[common.NormActivation] = None
                   ) -> spec.Architecture:
    """The network: these fields, and `norm_activation`'s (the options' defaults
    without it). Raises ValueError naming a bad field."""
    options = self.as_dict()
    if norm_activation is not None:
      options.update({name: getattr(norm_activation, name)
                      for name in NORM_ACTIVATION_FIELDS})
    return spec.Architecture(**options)

  @classmethod
  def from_architecture(cls, architecture: spec.Architecture):
    """The config of `architecture`'s backbone fields (see `norm_activation`)."""
    return cls(**{name: _config_value(getattr(architecture, name))
                  for name in BACKBONE_FIELDS})

  def validate(self):
    """Checks every field (ValueError naming it), then the restrictions."""
    self.architecture()
    super().validate()


def _config_value(value):
  return list(value) if isinstance(value, tuple) else value


def _config_type(annotation):
  """An option's type in a config: tuples are lists."""
  if typing.get_origin(annotation) is tuple:
    return List[typing.get_args(annotation)[0]]
  return annotation


def _config_field(name: str) -> dataclasses.Field:
  value = _config_value(spec.default(name))
  metadata = {"doc": spec.OPTION_DOCS[name]}
  if isinstance(value, list):
    return dataclasses.field(default_factory=lambda: list(value), metadata=metadata)
  return dataclasses.field(default=value, metadata=metadata)


def norm_activation(architecture: spec.Architecture) -> common.NormActivation:
  """The Model Garden's `norm_activation` config of `architecture`."""
  return common.NormActivation(**{name: getattr(architecture, name)
                                  for name in NORM_ACTIVATION_FIELDS})


GSAResNet = dataclasses.make_dataclass(
    "GSAResNet",
    [(name, _config_type(spec.OPTION_TYPES[name]), _config_field(name))
     for name in BACKBONE_FIELDS],
    bases=(_GSAResNetBase,),
    namespace={"__module__": __name__, "__qualname__": "GSAResNet", "__doc__": (
        "GSA-ResNet (Sections 3.2 and 4): ResNet with GSA modules for 3x3 "
        "convolutions.\n\n  The fields are `gsa_keras.spec.Architecture`'s but for "
        f"{', '.join(NORM_ACTIVATION_FIELDS)}, which come from the task's "
        "`model.norm_activation`.\n\n  Attributes:\n" +
        spec.options_doc(BACKBONE_FIELDS) + "\n  ")})


@dataclasses.dataclass
class SAN(hyperparams.Config):
  """SAN (Zhao, Jia, Koltun 2020; `gsa_keras.san_network`), `backbone.type: san`.

  Attributes:
    depth: 10, 15 or 19 (SAN10, SAN15, SAN19).
    operator: 'pairwise' or 'patchwise' self-attention.
    narrow_footprints: on inputs under 128x128, narrow the footprints of the stages
      whose maps are too small for them instead of failing
      (`gsa_keras.san_network.build_san`); no longer SAN's published network.

  Batch norm momentum and epsilon come from the task's `model.norm_activation`.
  """
  depth: int = 10
  operator: str = "pairwise"
  narrow_footprints: bool = False


@dataclasses.dataclass
class Backbone(vision_backbones.Backbone):
  """Model Garden's backbone one-of plus `gsa_resnet` and `san`."""
  gsa_resnet: GSAResNet = dataclasses.field(default_factory=GSAResNet)
  san: SAN = dataclasses.field(default_factory=SAN)
