"""Model Garden backbones; importing this registers `backbone.type: gsa_resnet`."""

from gsa_keras.backbones.gsa_resnet import GSAResNet
from gsa_keras.backbones.gsa_resnet import build_gsa_resnet

__all__ = ["GSAResNet", "build_gsa_resnet"]
