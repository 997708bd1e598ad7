"""What the two public flavour modules (`keras3.py`, `tf_keras.py`) share.

Each of them declares its layers as `class Name(NameDefinition, <flavour>.layers.Layer)`
and registers them under `SERIALIZATION_PACKAGE`, so both flavours serialize every layer
as `gsa_keras>Name`.
"""

SERIALIZATION_PACKAGE = "gsa_keras"


def require_tensorflow_backend(keras_module):
  """Raises ImportError unless Keras 3 runs on TensorFlow: the layers' math is
  TensorFlow code (`gsa_keras.ops`)."""
  backend = keras_module.backend.backend()
  if backend != "tensorflow":
    raise ImportError(
        f"gsa_keras needs Keras 3's TensorFlow backend, but Keras runs on {backend!r}. "
        "Select TensorFlow before Keras is imported: set the environment variable "
        "KERAS_BACKEND=tensorflow (or \"backend\": \"tensorflow\" in "
        "~/.keras/keras.json), or use tf_keras with TF_USE_LEGACY_KERAS=1.")
