"""GSA layers for the Keras that `tf.keras` means in this process.

`tf.keras` is Keras 3 unless `TF_USE_LEGACY_KERAS` is set to 1/true/True before it is
first used, in which case it is tf_keras (Keras 2). This module follows the same rule, so
its layers fit the user's `tf.keras` models (a Keras 3 layer in a tf_keras model would
lose its weights). Either flavour can be imported explicitly:
`gsa_keras.layers.keras3` or `gsa_keras.layers.tf_keras`. The flavour is imported on
first use of a layer, so importing this package imports no Keras.
"""

import importlib
import os

from gsa_keras.spec import ATTENTION_VARIANTS
from gsa_keras.spec import AXIAL_BASELINE
from gsa_keras.spec import GSA_VARIANTS
from gsa_keras.spec import LOCAL_BASELINE
from gsa_keras.layers.statistics import recalibrate_batch_norm

_FLAVOUR_EXPORTS = ("GlobalSelfAttention", "AxialContentPositionalAttention",
                    "LocalSelfAttention", "PairwiseSelfAttention", "PatchwiseSelfAttention",
                    "transfer_weights")
__all__ = list(_FLAVOUR_EXPORTS) + ["ATTENTION_VARIANTS", "AXIAL_BASELINE", "GSA_VARIANTS",
                                    "LOCAL_BASELINE", "recalibrate_batch_norm",
                                    "tf_keras_is_legacy"]


def tf_keras_is_legacy():
  """Whether `tf.keras` is tf_keras (Keras 2) in this process: TensorFlow's own rule."""
  return os.environ.get("TF_USE_LEGACY_KERAS", None) in ("true", "True", "1")


def flavour_attribute(package: str, name: str, exports):
  """`name` from `package.keras3` or `package.tf_keras`, by `tf_keras_is_legacy`: the
  module `__getattr__` of packages with a module per Keras flavour."""
  if name not in exports:
    raise AttributeError(f"module {package!r} has no attribute {name!r}")
  flavour = "tf_keras" if tf_keras_is_legacy() else "keras3"
  return getattr(importlib.import_module(f"{package}.{flavour}"), name)


def __getattr__(name):
  return flavour_attribute(__name__, name, _FLAVOUR_EXPORTS)


def __dir__():
  return sorted(set(globals()) | set(__all__))
