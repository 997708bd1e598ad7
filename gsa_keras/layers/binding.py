"""Binds the layer definitions to one Keras flavour: Keras 3 or tf_keras (Keras 2)."""

import types

from gsa_keras.layers import definitions

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


def bind_layers(keras_module, module_name):
  """Creates and registers this flavour's layer classes.

  Args:
    keras_module: `keras` (Keras 3) or `tf_keras` (Keras 2).
    module_name: the public module the classes belong to (their `__module__`).

  Returns:
    A namespace with one `keras_module.layers.Layer` subclass per definition, each
    registered as serializable under `gsa_keras>ClassName` in that flavour.
  """
  register = keras_module.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
  classes = {}
  for definition in definitions.LAYER_DEFINITIONS:
    name = definition.__name__
    layer_class = type(name, (definition, keras_module.layers.Layer), {
        "__module__": module_name,
        "__qualname__": name,
        "__doc__": definition.__doc__,
        "_keras": keras_module,
    })
    classes[name] = register(layer_class)
  return types.SimpleNamespace(**classes)
