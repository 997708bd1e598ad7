"""Shared fixtures: every layer test runs in both Keras flavours."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # pylint: disable=g-import-not-at-top
import pytest
import tf_keras

from gsa_keras.layers import keras3 as keras3_layers
from gsa_keras.layers import tf_keras as tf_keras_layers

FLAVOURS = {
    "keras3": (keras, keras3_layers),
    "tf_keras": (tf_keras, tf_keras_layers),
}


@pytest.fixture(params=sorted(FLAVOURS))
def flavour(request):
  """(keras module, gsa layers module) for Keras 3 and for tf_keras."""
  return FLAVOURS[request.param]
