"""GSA-ResNet models for tf_keras (Keras 2: `TF_USE_LEGACY_KERAS=1`)."""

import tf_keras

from gsa_keras.applications import models
from gsa_keras.layers import tf_keras as _layers  # pylint: disable=unused-import

globals().update(models.constructors(tf_keras, __name__))
preprocess_input = models.preprocess_input

__all__ = list(models.VARIANTS) + ["preprocess_input"]
