"""GSA-ResNet models for Keras users, in the way of `keras.applications`.

  from gsa_keras.applications import GSAResNet50, preprocess_input
  model = GSAResNet50(input_shape=(224, 224, 3), classes=1000)

The constructors (`GSAResNet26`, `GSAResNet38`, `GSAResNet50`, `GSAResNet101`,
`GSAResNet152`, `GSAMResNet50`) take `keras.applications`' arguments plus the
backbone's options, and `weights=` a training run of `gsa_keras.train` or of the TPU
scripts. This module follows TensorFlow's rule for what `tf.keras` means, as
`gsa_keras.layers` does: Keras 3, or tf_keras with `TF_USE_LEGACY_KERAS=1`. Either
flavour can be imported explicitly: `gsa_keras.applications.keras3` or
`gsa_keras.applications.tf_keras`. `load_digits` gives the built-in digits as arrays
for `model.fit`.
"""

from gsa_keras.applications.models import VARIANTS
from gsa_keras.applications.models import preprocess_input
from gsa_keras.layers import flavour_attribute

__all__ = list(VARIANTS) + ["preprocess_input", "load_digits"]


def load_digits():
  """The built-in digits (scikit-learn's, upsampled to 32x32 RGB) for `model.fit`.

  Returns:
    `((x_train, y_train), (x_validation, y_validation))`: 1,437 and 360 images,
    float32 `(n, 32, 32, 3)` already normalised by `preprocess_input`, and int64
    labels 0-9. The same split as the `gsa_resnet_digits` experiment's.
  """
  from gsa_keras.data import digits  # pylint: disable=g-import-not-at-top
  splits = digits.load_splits()
  return tuple((preprocess_input(images), labels.astype("int64"))
               for images, labels in (splits["train"], splits["validation"]))


def __getattr__(name):
  return flavour_attribute(__name__, name, VARIANTS)


def __dir__():
  return sorted(set(globals()) | set(__all__))
