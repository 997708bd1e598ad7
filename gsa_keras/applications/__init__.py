"""GSA-ResNet models for Keras users, in the way of `keras.applications`.

  from gsa_keras.applications import GSAResNet50, preprocess_input
  model = GSAResNet50(input_shape=(224, 224, 3), classes=1000)

The constructors (`GSAResNet26`, `GSAResNet38`, `GSAResNet50`, `GSAResNet101`,
`GSAResNet152`, `GSAMResNet50`) take `keras.applications`' arguments plus every option
of the network (`gsa_keras.spec.Architecture`) by name, and `weights=` a training run
of `gsa_keras.train` or of the TPU scripts; `from_architecture` takes an
`Architecture` whole. `help(GSAResNet50)` documents every argument. `SAN10`, `SAN15`
and `SAN19` are SAN's networks (Zhao et al. 2020), pairwise or patchwise. This module
follows TensorFlow's rule for what `tf.keras` means, as
`gsa_keras.layers` does: Keras 3, or tf_keras with `TF_USE_LEGACY_KERAS=1`. Either
flavour can be imported explicitly: `gsa_keras.applications.keras3` or
`gsa_keras.applications.tf_keras`. `load_digits` gives the built-in digits as arrays
for `model.fit`.
"""

import typing

from gsa_keras.applications.models import VARIANTS
from gsa_keras.applications.models import preprocess_input
from gsa_keras.layers import flavour_attribute

# What `__getattr__` returns, for type checkers and IDEs (`import X as X`: a re-export).
if typing.TYPE_CHECKING:
  from gsa_keras.applications.keras3 import GSAMResNet50 as GSAMResNet50
  from gsa_keras.applications.keras3 import GSAResNet26 as GSAResNet26
  from gsa_keras.applications.keras3 import GSAResNet38 as GSAResNet38
  from gsa_keras.applications.keras3 import GSAResNet50 as GSAResNet50
  from gsa_keras.applications.keras3 import GSAResNet101 as GSAResNet101
  from gsa_keras.applications.keras3 import GSAResNet152 as GSAResNet152
  from gsa_keras.applications.keras3 import SAN10 as SAN10
  from gsa_keras.applications.keras3 import SAN15 as SAN15
  from gsa_keras.applications.keras3 import SAN19 as SAN19
  from gsa_keras.applications.keras3 import from_architecture as from_architecture

_FLAVOUR_EXPORTS = tuple(VARIANTS) + ("from_architecture", "SAN10", "SAN15", "SAN19")
__all__ = list(_FLAVOUR_EXPORTS) + ["preprocess_input", "load_digits"]


def load_digits():
  """The built-in digits (scikit-learn's, upsampled to 32x32 RGB) for `model.fit`.

  Returns:
    `((x_train, y_train), (x_validation, y_validation))`: 1,437 and 360 images,
    float32 `(n, 32, 32, 3)` already normalised by `preprocess_input`, and int64
    labels 0-9. The same split as the `gsa_resnet_digits` experiment's.
  """
  from gsa_keras.data import digits
  splits = digits.load_splits()
  return tuple((preprocess_input(images), labels.astype("int64"))
               for images, labels in (splits["train"], splits["validation"]))


def __getattr__(name):
  return flavour_attribute(__name__, name, _FLAVOUR_EXPORTS)


def __dir__():
  return sorted(set(globals()) | set(__all__))
