"""GSA-ResNet models for Keras 3 (`keras`, what `tf.keras` means in TF 2.16+)."""

import keras

from gsa_keras.applications import models
from gsa_keras.layers import keras3 as _layers  # pylint: disable=unused-import

globals().update(models.constructors(keras, __name__))
preprocess_input = models.preprocess_input

__all__ = list(models.VARIANTS) + ["preprocess_input"]
