"""GSA-ResNet's layer graph, built from a `gsa_keras.spec.Architecture` with either Keras.

One builder makes the network for the Model Garden backbone (tf_keras,
`gsa_keras.backbones.GSAResNet`) and for the Keras models (Keras 3,
`gsa_keras.applications`): both get the same layers under the same names, so their
parameter counts are equal and weights carry over layer by layer.

Section 4 ("Model") of the paper: a convolutional stem, then bottleneck blocks whose 3x3
convolution is an attention module in the attention groups; 2x2 average pooling at
stride 2 right after the first attention module of groups 2-4; batch normalisation after
every 1x1 convolution and every attention module. Each block's spatial operator comes
from the registry (`gsa_keras.operators`).
"""

import dataclasses
import types
from typing import Any, Dict

from gsa_keras import operators
from gsa_keras import spec


@dataclasses.dataclass
class ResNetBuilder:
  """Builds the endpoints `'2'..'5'` (strides 4 to 32) of a GSA-ResNet.

  The architecture checked itself when it was made. A subclass may replace
  `activation_layer` and `stochastic_depth` with its Keras's layers (the Model Garden
  backbone does); neither holds weights.

  Attributes:
    keras: `keras` (Keras 3) or `tf_keras`.
    architecture: every option of the network (`spec.Architecture`).
    kernel_regularizer: regularizer of every convolution kernel, attention
      projection and relative embedding, or None (the training recipe's weight decay,
      not an option of the network).
  """

  keras: types.ModuleType
  architecture: spec.Architecture = dataclasses.field(default_factory=spec.Architecture)
  kernel_regularizer: Any = None

  @property
  def layers(self):
    return self.keras.layers

  # -- Layers without weights: replaceable. ---------------------------------------------

  def activation_layer(self):
    return self.layers.Activation(self.architecture.activation)

  def stochastic_depth(self, rate: float, name: str):
    """Drops a whole residual branch per example with probability `rate` in training."""
    return self.layers.Dropout(rate, noise_shape=(None, 1, 1, 1), name=name)

  # -- The network. ----------------------------------------------------------------------

  def endpoints(self, inputs) -> Dict[str, object]:
    """{level: feature map} for the levels '2'..'5' of `inputs` (images)."""
    x = self._stem(inputs)
    endpoints = {}
    groups = self.architecture.residual_groups()
    for group in groups:
      # The Model Garden's schedule: the rate grows linearly to the last group's.
      drop_rate = (self.architecture.stochastic_depth_drop_rate * (group.number + 1) /
                   (len(groups) + 1))
      for block in range(group.repeats):
        x = self._bottleneck_block(x, group, block, drop_rate)
      endpoints[str(group.number + 1)] = x
    return endpoints

  def _norm_activation(self, x, name, activation=True, gamma_initializer="ones"):
    """Batch normalization, then the activation unless `activation` is False."""
    x = self.layers.BatchNormalization(
        momentum=self.architecture.norm_momentum,
        epsilon=self.architecture.norm_epsilon,
        gamma_initializer=gamma_initializer, synchronized=self.architecture.use_sync_bn,
        name=f"{name}_bn")(x)
    return self.activation_layer()(x) if activation else x

  def _conv(self, x, filters, kernel_size, name, strides=1):
    return self.layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=False,
        kernel_initializer=self.architecture.kernel_initializer,
        kernel_regularizer=self.kernel_regularizer, name=name)(x)

  def spatial_operator(self, group: spec.GroupSpec) -> operators.Operator:
    """The registered operator of `group`'s blocks: the architecture's attention
    operator in an attention group, the 3x3 convolution elsewhere."""
    if group.use_attention:
      return self.architecture.operator
    return operators.convolution()

  def _stem(self, inputs):
    """Convolutional stem at stride 4 (`spec.stem_convs`), then a 3x3 max pool."""
    x = inputs
    for index, conv in enumerate(self.architecture.stem_convs(), start=1):
      name = f"stem_conv{index}"
      x = self._conv(x, conv.filters, conv.kernel_size, name, strides=conv.strides)
      x = self._norm_activation(x, name)
    return self.layers.MaxPool2D(pool_size=3, strides=2, padding="same",
                                 name="stem_pool")(x)

  def _bottleneck_block(self, inputs, group, block, drop_rate):
    """1x1 conv, spatial operator (3x3 conv or attention), 1x1 conv, plus shortcut.

    The first block of a group projects the shortcut with a 1x1 convolution (strided
    when the group downsamples). An operator that downsamples itself (the convolution:
    ResNet v1.5) takes the stride; after any other (attention), 2x2 average pooling
    follows it (Section 4).
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
    operator = self.spatial_operator(group)
    spatial = f"{name}_{operator.layer_suffix}"
    x = operator.layer(operators.Site(
        keras=self.keras, filters=group.filters, architecture=self.architecture,
        name=spatial, strides=strides if operator.downsamples else 1,
        kernel_regularizer=self.kernel_regularizer, feature_size=tuple(x.shape[1:3])))(x)
    if strides > 1 and not operator.downsamples:
      x = self.layers.AveragePooling2D(pool_size=2, strides=2, name=f"{name}_pool")(x)
    x = self._norm_activation(x, spatial)
    x = self._conv(x, group.output_filters, 1, f"{name}_conv3")
    x = self._norm_activation(
        x, f"{name}_conv3", activation=False,
        gamma_initializer="zeros" if self.architecture.zero_init_residual else "ones")
    if drop_rate:
      x = self.stochastic_depth(drop_rate, f"{name}_drop")(x)
    x = self.layers.Add(name=f"{name}_add")([shortcut, x])
    return self.activation_layer()(x)
