"""Model Garden backbones; importing this registers `backbone.type: gsa_resnet` and
`backbone.type: san`."""

from gsa_keras.backbones.gsa_resnet import GSAResNet
from gsa_keras.backbones.gsa_resnet import build_gsa_resnet
from gsa_keras.backbones.san import SAN
from gsa_keras.backbones.san import build_san

__all__ = ["GSAResNet", "build_gsa_resnet", "SAN", "build_san"]
