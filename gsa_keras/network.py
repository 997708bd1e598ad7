"""GSA-ResNet's layer graph, built from `gsa_keras.spec` with either Keras.

One builder makes the network for the Model Garden backbone (tf_keras,
`gsa_keras.backbones.GSAResNet`) and for the Keras models (Keras 3,
`gsa_keras.applications`): both get the same layers under the same names, so their
parameter counts are equal and weights carry over layer by layer.

Section 4 ("Model") of the paper: a convolutional stem, then bottleneck blocks whose 3x3
convolution is an attention module in the attention groups; 2x2 average pooling at
stride 2 right after the first attention module of groups 2-4; batch normalisation after
every 1x1 convolution and every attention module.
"""

import dataclasses
import importlib
import types
from typing import Any, Dict, Optional, Sequence

from gsa_keras import spec


def attention_layers(keras_module):
  """The module of GSA layers bound to `keras_module` (Keras 3 or tf_keras)."""
  flavour = "tf_keras" if keras_module.__name__ == "tf_keras" else "keras3"
  return importlib.import_module(f"gsa_keras.layers.{flavour}")


@dataclasses.dataclass
class ResNetBuilder:
  """Builds the endpoints `'2'..'5'` (strides 4 to 32) of a GSA-ResNet.

  Arguments are checked by `spec.check_arguments` before the builder is made. A
  subclass may replace `activation_layer` and `stochastic_depth` with its Keras's layers
  (the Model Garden backbone does); neither holds weights.

  Attributes:
    keras: `keras` (Keras 3) or `tf_keras`.
    model_id, width_variant, attention_groups, attention_variant, num_heads,
      max_relative_shift, stem_type, stochastic_depth_drop_rate, zero_init_residual:
      as `gsa_keras.backbones.GSAResNet`.
    activation: activation name after normalisation.
    use_sync_bn, norm_momentum, norm_epsilon: every batch normalisation, including
      the one inside each attention module.
    kernel_initializer: initializer of every convolution and attention weight.
    kernel_regularizer: regularizer of every convolution kernel, attention
      projection and relative embedding, or None.
  """

  keras: types.ModuleType
  _: dataclasses.KW_ONLY
  model_id: int
  width_variant: str = spec.DEFAULT_WIDTH_VARIANT
  attention_groups: Sequence[int] = spec.RESIDUAL_GROUPS
  attention_variant: str = spec.DEFAULT_ATTENTION_VARIANT
  num_heads: int = spec.DEFAULT_NUM_HEADS
  max_relative_shift: Optional[int] = None
  stem_type: str = spec.DEFAULT_STEM_TYPE
  stochastic_depth_drop_rate: float = 0.0
  zero_init_residual: bool = spec.DEFAULT_ZERO_INIT_RESIDUAL
  activation: str = "relu"
  use_sync_bn: bool = False
  norm_momentum: float = 0.99
  norm_epsilon: float = 0.001
  kernel_initializer: Any = "VarianceScaling"
  kernel_regularizer: Any = None

  def __post_init__(self):
    self.attention_groups = tuple(self.attention_groups)

  @property
  def layers(self):
    return self.keras.layers

  # -- Layers without weights: replaceable. ---------------------------------------------

  def activation_layer(self):
    return self.layers.Activation(self.activation)

  def stochastic_depth(self, rate: float, name: str):
    """Drops a whole residual branch per example with probability `rate` in training."""
    return self.layers.Dropout(rate, noise_shape=(None, 1, 1, 1), name=name)

  # -- The network. ----------------------------------------------------------------------

  def endpoints(self, inputs) -> Dict[str, object]:
    """{level: feature map} for the levels '2'..'5' of `inputs` (images)."""
    x = self._stem(inputs)
    endpoints = {}
    groups = spec.residual_groups(self.model_id, self.width_variant,
                                  self.attention_groups)
    for group in groups:
      # The Model Garden's schedule: the rate grows linearly to the last group's.
      drop_rate = (self.stochastic_depth_drop_rate * (group.number + 1) /
                   (len(groups) + 1))
      for block in range(group.repeats):
        x = self._bottleneck_block(x, group, block, drop_rate)
      endpoints[str(group.number + 1)] = x
    return endpoints

  def _norm_activation(self, x, name, activation=True, gamma_initializer="ones"):
    """Batch normalization, then the activation unless `activation` is False."""
    x = self.layers.BatchNormalization(
        momentum=self.norm_momentum, epsilon=self.norm_epsilon,
        gamma_initializer=gamma_initializer, synchronized=self.use_sync_bn,
        name=f"{name}_bn")(x)
    return self.activation_layer()(x) if activation else x

  def _conv(self, x, filters, kernel_size, name, strides=1):
    return self.layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=False,
        kernel_initializer=self.kernel_initializer,
        kernel_regularizer=self.kernel_regularizer, name=name)(x)

  def _attention(self, x, filters, name):
    """The spatial operator of an attention group: a GSA module, a Table 2/4 variant or
    Table 3's local self-attention (7x7, `spec.LOCAL_KERNEL_SIZE`)."""
    gsa_layers = attention_layers(self.keras)
    if self.attention_variant == spec.LOCAL_BASELINE:
      return gsa_layers.LocalSelfAttention(
          filters, num_heads=self.num_heads, kernel_size=spec.LOCAL_KERNEL_SIZE,
          kernel_initializer=self.kernel_initializer,
          kernel_regularizer=self.kernel_regularizer, name=name)(x)
    arguments = dict(
        filters=filters, num_heads=self.num_heads,
        max_relative_shift=self.max_relative_shift,
        kernel_initializer=self.kernel_initializer,
        kernel_regularizer=self.kernel_regularizer,
        norm_momentum=self.norm_momentum, norm_epsilon=self.norm_epsilon,
        use_sync_bn=self.use_sync_bn, name=name)
    if self.attention_variant == spec.AXIAL_BASELINE:
      return gsa_layers.AxialContentPositionalAttention(**arguments)(x)
    return gsa_layers.GlobalSelfAttention(
        **arguments, **spec.GSA_VARIANTS[self.attention_variant])(x)

  def _stem(self, inputs):
    """Convolutional stem at stride 4 (`spec.stem_convs`), then a 3x3 max pool."""
    x = inputs
    for index, conv in enumerate(spec.stem_convs(self.stem_type, self.width_variant),
                                 start=1):
      name = f"stem_conv{index}"
      x = self._conv(x, conv.filters, conv.kernel_size, name, strides=conv.strides)
      x = self._norm_activation(x, name)
    return self.layers.MaxPool2D(pool_size=3, strides=2, padding="same",
                                 name="stem_pool")(x)

  def _bottleneck_block(self, inputs, group, block, drop_rate):
    """1x1 conv, spatial operator (3x3 conv or attention), 1x1 conv, plus shortcut.

    The first block of a group projects the shortcut with a 1x1 convolution (strided
    when the group downsamples). A convolutional block downsamples in its 3x3
    convolution (ResNet v1.5); an attention block pools 2x2 right after attention.
    """
    name = f"group{group.number}_block{block + 1}"
    strides = 2 if group.downsample and block == 0 else 1
    shortcut = inputs
    if block == 0:
      shortcut = self._conv(inputs, group.output_filters, 1, f"{name}_shortcut",
                            strides=strides)
      shortcut = self._norm_activation(shortcut, f"{name}_shortcut", activation=False)

    x = self._conv(inputs, group.filters, 1, f"{name}_conv1")
    x = self._norm_activation(x, f"{name}_conv1")
    if group.use_attention:
      x = self._attention(x, group.filters, f"{name}_attention")
      if strides > 1:
        x = self.layers.AveragePooling2D(pool_size=2, strides=2, name=f"{name}_pool")(x)
      x = self._norm_activation(x, f"{name}_attention")
    else:
      x = self._conv(x, group.filters, 3, f"{name}_conv2", strides=strides)
      x = self._norm_activation(x, f"{name}_conv2")
    x = self._conv(x, group.output_filters, 1, f"{name}_conv3")
    x = self._norm_activation(
        x, f"{name}_conv3", activation=False,
        gamma_initializer="zeros" if self.zero_init_residual else "ones")
    if drop_rate:
      x = self.stochastic_depth(drop_rate, f"{name}_drop")(x)
    x = self.layers.Add(name=f"{name}_add")([shortcut, x])
    return self.activation_layer()(x)
