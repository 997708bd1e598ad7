"""GSA-ResNet models for Keras 3 (`keras`, what `tf.keras` means in TF 2.16+).

Each constructor is `gsa_keras.applications.models.build` for this Keras; its
signature and docstring (`help(GSAResNet50)`) name Keras's arguments and every option
of `gsa_keras.spec.Architecture` (`models.constructor`).
"""

import keras

from gsa_keras.applications import models
from gsa_keras.applications import san
from gsa_keras.layers import keras3 as _layers  # noqa: F401 registers the layers for load_model

preprocess_input = models.preprocess_input


@models.constructor
def GSAResNet26(*args, **kwargs):
  return models.build(keras, "GSAResNet26", *args, **kwargs)


@models.constructor
def GSAResNet38(*args, **kwargs):
  return models.build(keras, "GSAResNet38", *args, **kwargs)


@models.constructor
def GSAResNet50(*args, **kwargs):
  return models.build(keras, "GSAResNet50", *args, **kwargs)


@models.constructor
def GSAResNet101(*args, **kwargs):
  return models.build(keras, "GSAResNet101", *args, **kwargs)


@models.constructor
def GSAResNet152(*args, **kwargs):
  return models.build(keras, "GSAResNet152", *args, **kwargs)


@models.constructor
def GSAMResNet50(*args, **kwargs):
  return models.build(keras, "GSAMResNet50", *args, **kwargs)


@models.constructor
def from_architecture(*args, **kwargs):
  return models.build(keras, "from_architecture", *args, **kwargs)


def SAN10(operator="pairwise", **kwargs):
  """SAN10 (Zhao et al. 2020) with `operator` 'pairwise' or 'patchwise' self-attention;
  the arguments are `gsa_keras.applications.san.build`'s, documented there."""
  return san.build(keras, 10, operator, **kwargs)


def SAN15(operator="pairwise", **kwargs):
  """SAN15 (Zhao et al. 2020); the arguments are `SAN10`'s."""
  return san.build(keras, 15, operator, **kwargs)


def SAN19(operator="pairwise", **kwargs):
  """SAN19 (Zhao et al. 2020; Table 3's SAN19 patchwise: `SAN19("patchwise")`); the
  arguments are `SAN10`'s."""
  return san.build(keras, 19, operator, **kwargs)


for _constructor in (SAN10, SAN15, SAN19):
  _constructor.__signature__ = san.SIGNATURE

__all__ = list(models.VARIANTS) + ["from_architecture", "preprocess_input", "SAN10",
                                     "SAN15", "SAN19"]
