"""GSA-ResNet backbone for the Model Garden (`backbone.type: gsa_resnet`).

Section 4 ("Model") of the paper: ResNet with the 3x3 convolution of every bottleneck
block replaced by a GSA module, a convolutional stem (Table 3's note), 2x2 average
pooling with stride 2 right after the first GSA module of residual groups 2-4, keys,
queries and values as wide as the module's input, 8 heads, relative embeddings per
module, and batch normalization after every 1x1 convolution and every GSA module.

`attention_groups` chooses the residual groups that use attention (Table 5); the others
keep the strided 3x3 convolution, so `attention_groups=()` is the convolutional ResNet
(v1.5, as the Model Garden's `ResNet`) that the paper compares against (Table 6).
"""

from typing import Optional, Sequence

import tf_keras

from official.modeling import hyperparams
from official.modeling import tf_utils
from official.vision.modeling.backbones import factory
from official.vision.modeling.layers import nn_layers

from gsa_keras.backbones import architecture
from gsa_keras.layers import tf_keras as gsa_layers
from gsa_keras.layers import variants

layers = tf_keras.layers


@tf_keras.utils.register_keras_serializable(package="gsa_keras")
class GSAResNet(tf_keras.Model):
  """GSA-ResNet-{26, 38, 50, 101, 152}, also M-ResNet and the convolutional ResNet.

  A functional model mapping images to the endpoints `'2'..'5'` (strides 4 to 32),
  like `official.vision.modeling.backbones.ResNet`.
  """

  def __init__(
      self,
      model_id: int = 50,
      input_specs: layers.InputSpec = layers.InputSpec(shape=[None, 224, 224, 3]),
      width_variant: str = "standard",
      attention_groups: Sequence[int] = architecture.RESIDUAL_GROUPS,
      attention_variant: str = "gsa",
      num_heads: int = 8,
      max_relative_shift: Optional[int] = None,
      stem_type: str = "v0",
      stochastic_depth_drop_rate: float = 0.0,
      zero_init_residual: bool = True,
      activation: str = "relu",
      use_sync_bn: bool = False,
      norm_momentum: float = 0.99,
      norm_epsilon: float = 0.001,
      kernel_initializer: str = "VarianceScaling",
      kernel_regularizer: Optional[tf_keras.regularizers.Regularizer] = None,
      **kwargs):
    """Initializes a GSA-ResNet.

    Args:
      model_id: `int` depth, one of `architecture.BLOCK_REPEATS` (26, 38, 50, 101, 152).
      input_specs: `tf_keras.layers.InputSpec` of the images; height and width must
        be multiples of 32, and known unless `max_relative_shift` is set (global
        attention sizes its relative embeddings by the feature size).
      width_variant: `str`, 'standard' or 'm_resnet' (Table 3's M-ResNet).
      attention_groups: `Sequence[int]` of residual groups (1..4) whose 3x3
        convolutions are attention modules (Table 5); empty for the plain ResNet.
      attention_variant: `str`, one of `gsa_keras.layers.variants.ATTENTION_VARIANTS`:
        'gsa', a Table 4 ablation, or Table 2's 'axial' baseline.
      num_heads: `int` heads per attention module.
      max_relative_shift: `int` or None, `L` of Appendix B eq. 5; None is global.
      stem_type: `str`, 'v0' (7x7 conv and max pool) or 'v1' (three 3x3 convs and
        max pool, ResNet-D).
      stochastic_depth_drop_rate: `float` drop rate of the last residual group,
        scaled linearly down for earlier groups as in the Model Garden.
      zero_init_residual: `bool`, start the last batch normalization of every
        residual branch with gamma = 0, so each block starts as its shortcut
        (Goyal et al. 2017, the TPU ResNet recipe). Without it the GSA modules'
        products of projections (eqs. 1, 7) make the initial gradients about 50x
        those of the convolutional ResNet and SGD at the paper's rate diverges.
      activation: `str` activation after normalization.
      use_sync_bn: `bool`, synchronized batch normalization, including the one
        inside each attention module.
      norm_momentum: `float` batch normalization momentum.
      norm_epsilon: `float` batch normalization epsilon.
      kernel_initializer: `str` initializer of every convolution and attention
        weight.
      kernel_regularizer: `tf_keras.regularizers.Regularizer` or None, applied to
        every convolution kernel, attention projection and relative embedding.
      **kwargs: `tf_keras.Model` keyword arguments.
    """
    attention_groups = tuple(attention_groups)
    architecture.check_arguments(
        model_id=model_id, width_variant=width_variant,
        attention_groups=attention_groups, attention_variant=attention_variant,
        num_heads=num_heads, max_relative_shift=max_relative_shift,
        stem_type=stem_type, stochastic_depth_drop_rate=stochastic_depth_drop_rate,
        input_size=input_specs.shape[1:3])
    self._config_dict = dict(
        model_id=model_id, input_specs=input_specs, width_variant=width_variant,
        attention_groups=attention_groups, attention_variant=attention_variant,
        num_heads=num_heads, max_relative_shift=max_relative_shift,
        stem_type=stem_type, stochastic_depth_drop_rate=stochastic_depth_drop_rate,
        zero_init_residual=zero_init_residual, activation=activation,
        use_sync_bn=use_sync_bn, norm_momentum=norm_momentum, norm_epsilon=norm_epsilon,
        kernel_initializer=kernel_initializer, kernel_regularizer=kernel_regularizer)

    inputs = tf_keras.Input(shape=input_specs.shape[1:], name="images")
    x = self._stem(inputs)
    endpoints = {}
    groups = architecture.residual_groups(model_id, width_variant, attention_groups)
    for group in groups:
      drop_rate = nn_layers.get_stochastic_depth_rate(
          stochastic_depth_drop_rate, group.number + 1, len(groups) + 1)
      for block in range(group.repeats):
        x = self._bottleneck_block(x, group, block, drop_rate)
      endpoints[str(group.number + 1)] = x
    self._output_specs = {level: x.get_shape() for level, x in endpoints.items()}
    super().__init__(inputs=inputs, outputs=endpoints, **kwargs)

  # -- Building blocks. ---------------------------------------------------------------

  def _norm_activation(self, x, name, activation=True, gamma_initializer="ones"):
    """Batch normalization, then the activation unless `activation` is False."""
    x = layers.BatchNormalization(
        momentum=self._config_dict["norm_momentum"],
        epsilon=self._config_dict["norm_epsilon"],
        gamma_initializer=gamma_initializer,
        synchronized=self._config_dict["use_sync_bn"], name=f"{name}_bn")(x)
    if activation:
      x = tf_utils.get_activation(
          self._config_dict["activation"], use_keras_layer=True)(x)
    return x

  def _conv(self, x, filters, kernel_size, name, strides=1):
    return layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=False,
        kernel_initializer=self._config_dict["kernel_initializer"],
        kernel_regularizer=self._config_dict["kernel_regularizer"], name=name)(x)

  def _attention(self, x, filters, name):
    """The spatial operator of an attention group: a GSA module or a Table 2/4 variant."""
    variant = self._config_dict["attention_variant"]
    arguments = dict(
        filters=filters, num_heads=self._config_dict["num_heads"],
        max_relative_shift=self._config_dict["max_relative_shift"],
        kernel_initializer=self._config_dict["kernel_initializer"],
        kernel_regularizer=self._config_dict["kernel_regularizer"],
        norm_momentum=self._config_dict["norm_momentum"],
        norm_epsilon=self._config_dict["norm_epsilon"],
        use_sync_bn=self._config_dict["use_sync_bn"], name=name)
    if variant == variants.AXIAL_BASELINE:
      return gsa_layers.AxialContentPositionalAttention(**arguments)(x)
    return gsa_layers.GlobalSelfAttention(
        **arguments, **variants.GSA_VARIANTS[variant])(x)

  def _stem(self, inputs):
    """Convolutional stem at stride 4: He et al.'s (v0) or ResNet-D's (v1)."""
    width = architecture.stem_filters(self._config_dict["width_variant"])
    if self._config_dict["stem_type"] == "v0":
      convs = [(width, 7, 2)]
    else:
      convs = [(width // 2, 3, 2), (width // 2, 3, 1), (width, 3, 1)]
    x = inputs
    for index, (filters, kernel_size, strides) in enumerate(convs, start=1):
      name = f"stem_conv{index}"
      x = self._conv(x, filters, kernel_size, name, strides=strides)
      x = self._norm_activation(x, name)
    return layers.MaxPool2D(pool_size=3, strides=2, padding="same",
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
        x = layers.AveragePooling2D(pool_size=2, strides=2, name=f"{name}_pool")(x)
      x = self._norm_activation(x, f"{name}_attention")
    else:
      x = self._conv(x, group.filters, 3, f"{name}_conv2", strides=strides)
      x = self._norm_activation(x, f"{name}_conv2")
    x = self._conv(x, group.output_filters, 1, f"{name}_conv3")
    x = self._norm_activation(
        x, f"{name}_conv3", activation=False,
        gamma_initializer="zeros" if self._config_dict["zero_init_residual"] else "ones")
    if drop_rate:
      x = nn_layers.StochasticDepth(drop_rate, name=f"{name}_drop")(x)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return tf_utils.get_activation(
        self._config_dict["activation"], use_keras_layer=True)(x)

  # -- Serialization. -----------------------------------------------------------------

  def get_config(self):
    """The constructor arguments, JSON-serializable."""
    config = dict(self._config_dict)
    config["input_specs"] = config["input_specs"].get_config()
    config["attention_groups"] = list(config["attention_groups"])
    config["kernel_regularizer"] = (
        tf_keras.regularizers.serialize(config["kernel_regularizer"])
        if config["kernel_regularizer"] is not None else None)
    return config

  @classmethod
  def from_config(cls, config, custom_objects=None):
    config = dict(config)
    if isinstance(config.get("input_specs"), dict):
      config["input_specs"] = layers.InputSpec.from_config(config["input_specs"])
    if config.get("kernel_regularizer") is not None:
      config["kernel_regularizer"] = tf_keras.regularizers.get(
          config["kernel_regularizer"])
    return cls(**config)

  @property
  def output_specs(self):
    """A dict of {level: TensorShape} for the endpoints '2'..'5'."""
    return self._output_specs


@factory.register_backbone_builder("gsa_resnet")
def build_gsa_resnet(
    input_specs: tf_keras.layers.InputSpec,
    backbone_config: hyperparams.Config,
    norm_activation_config: hyperparams.Config,
    l2_regularizer: Optional[tf_keras.regularizers.Regularizer] = None,
) -> tf_keras.Model:
  """Builds a `GSAResNet` from a `gsa_keras.configs.backbones.Backbone` config."""
  if backbone_config.type != "gsa_resnet":
    raise ValueError(f"`backbone.type` must be 'gsa_resnet' for this builder, got "
                     f"{backbone_config.type!r}.")
  # Every field of the `GSAResNet` config is a constructor argument of the same name.
  return GSAResNet(
      input_specs=input_specs,
      **backbone_config.get().as_dict(),
      activation=norm_activation_config.activation,
      use_sync_bn=norm_activation_config.use_sync_bn,
      norm_momentum=norm_activation_config.norm_momentum,
      norm_epsilon=norm_activation_config.norm_epsilon,
      kernel_regularizer=l2_regularizer)
