"""GSA-ResNet models for Keras 3 (`keras`, what `tf.keras` means in TF 2.16+).

Each constructor is `gsa_keras.applications.models.build` for this Keras; its
signature and docstring (`help(GSAResNet50)`) name Keras's arguments and every option
of `gsa_keras.spec.Architecture` (`models.constructor`).
"""

import keras

from gsa_keras.applications import models
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


__all__ = list(models.VARIANTS) + ["from_architecture", "preprocess_input"]
