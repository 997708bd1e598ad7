"""GSA layers for tf_keras (Keras 2: `TF_USE_LEGACY_KERAS=1`, the Model Garden's Keras)."""

import tf_keras

from gsa_keras.layers import binding
from gsa_keras.layers.weights import transfer_weights

_layers = binding.bind_layers(tf_keras, __name__)
GlobalSelfAttention = _layers.GlobalSelfAttention
AxialContentPositionalAttention = _layers.AxialContentPositionalAttention
LocalSelfAttention = _layers.LocalSelfAttention

__all__ = ["GlobalSelfAttention", "AxialContentPositionalAttention", "LocalSelfAttention",
           "transfer_weights"]
