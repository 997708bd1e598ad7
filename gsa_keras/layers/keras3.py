"""GSA layers for Keras 3 (`keras`, what `tf.keras` means in TF 2.16+ by default)."""

import keras

from gsa_keras.layers import binding
from gsa_keras.layers.weights import transfer_weights

binding.require_tensorflow_backend(keras)
_layers = binding.bind_layers(keras, __name__)
GlobalSelfAttention = _layers.GlobalSelfAttention
AxialContentPositionalAttention = _layers.AxialContentPositionalAttention
LocalSelfAttention = _layers.LocalSelfAttention

__all__ = ["GlobalSelfAttention", "AxialContentPositionalAttention", "LocalSelfAttention",
           "transfer_weights"]
