"""The two Kerases every layer test runs in: Keras 3 and tf_keras, each with its binding
of the GSA layers (the `flavour` fixture of `tests/conftest.py`)."""

import keras
import tf_keras

from gsa_keras.layers import keras3 as keras3_layers
from gsa_keras.layers import tf_keras as tf_keras_layers

# Name -> (keras module, gsa layers module).
FLAVOURS = {
    "keras3": (keras, keras3_layers),
    "tf_keras": (tf_keras, tf_keras_layers),
}
