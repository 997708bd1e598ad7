"""SAN10, SAN15 and SAN19 (Zhao, Jia, Koltun 2020) in the way of `keras.applications`.

`build(keras, depth, ...)` is every constructor: `gsa_keras.san_network.build_san` with
`keras.applications`' arguments (`include_top`, `weights`, `input_tensor`,
`input_shape`, `pooling`, `classes`, `classifier_activation`). The flavour modules
(`gsa_keras.applications.keras3`, `.tf_keras`) bind it to their Keras as `SAN10`,
`SAN15` and `SAN19`.
"""

import inspect
from typing import Any, Optional, Sequence

from gsa_keras import san_network
from gsa_keras import spec

POOLINGS = (None, "avg", "max")


def build(keras,
          depth: int,
          operator: str = "pairwise",
          *,
          include_top: bool = True,
          weights: Optional[str] = None,
          input_tensor=None,
          input_shape: Optional[Sequence[Optional[int]]] = None,
          pooling: Optional[str] = None,
          classes: int = 1000,
          classifier_activation: Any = "softmax",
          kernel_regularizer: Any = None,
          norm_momentum: float = spec.default("norm_momentum"),
          norm_epsilon: float = spec.default("norm_epsilon"),
          narrow_footprints: bool = False):
  """SAN`depth` with pairwise or patchwise self-attention (SAN's Table 2 networks).

  Args:
    keras: `keras` (Keras 3) or `tf_keras`.
    depth: 10, 15 or 19.
    operator: 'pairwise' (SAN's eq. 2) or 'patchwise' (eq. 4).
    include_top: with the classifier (global average pooling, dense, activation).
    weights: None (random initialisation, SAN's), or the path of a weights file this
      network saved (`model.save_weights`).
    input_tensor: a Keras tensor to build on instead of a new `Input`.
    input_shape: `(height, width, channels)`, default `(224, 224, 3)`; height and width
      at least 128 (`san_network.minimum_input_size`: reflection padding of the 7x7
      footprints in the last stage needs 4x4 maps), or 32 with `narrow_footprints`.
    pooling: without the top, None (the last stage's feature map), 'avg' or 'max'.
    classes: the classifier's outputs, with the top.
    classifier_activation: the classifier's activation (None: logits).
    kernel_regularizer: regularizer of every kernel, or None.
    norm_momentum: every batch norm's momentum (default 0.9: SAN's PyTorch 0.1).
    norm_epsilon: every batch norm's epsilon (default 1e-5).
    narrow_footprints: on inputs under 128x128, give the stages whose maps are too
      small for their footprints the widest that fits (5x5 on 3x3 maps, 3x3 on 2x2,
      1x1 on 1x1) instead of raising: SAN's structure for small images, no longer its
      published network.

  Returns:
    A functional model named e.g. 'san19_patchwise'.

  Raises:
    ValueError: a bad argument (named, with what is allowed), before anything is built.
  """
  if pooling not in POOLINGS:
    raise ValueError(f"`pooling` must be one of {list(POOLINGS)}, got {pooling!r}.")
  if weights is not None and not isinstance(weights, str):
    raise ValueError(f"`weights` must be None or the path of a weights file, got "
                     f"{weights!r}.")
  model = san_network.build_san(
      keras, depth, operator, num_classes=classes, input_shape=input_shape,
      input_tensor=input_tensor, include_top=include_top,
      kernel_regularizer=kernel_regularizer, norm_momentum=norm_momentum,
      norm_epsilon=norm_epsilon, narrow_footprints=narrow_footprints)
  outputs = model.outputs[0]
  if include_top and classifier_activation is not None:
    outputs = keras.layers.Activation(classifier_activation, name="predictions")(outputs)
  elif not include_top and pooling is not None:
    pool = {"avg": keras.layers.GlobalAveragePooling2D,
            "max": keras.layers.GlobalMaxPooling2D}[pooling]
    outputs = pool(name=f"{pooling}_pool")(outputs)
  if outputs is not model.outputs[0]:
    model = keras.Model(model.inputs, outputs, name=model.name)
  if weights is not None:
    model.load_weights(weights)
  return model


# The constructors' signature: `build`'s after `keras` and `depth` (`help(SAN10)`).
SIGNATURE = inspect.signature(build).replace(
    parameters=list(inspect.signature(build).parameters.values())[2:])
