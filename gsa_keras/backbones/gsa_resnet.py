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

from gsa_keras import network
from gsa_keras import spec

layers = tf_keras.layers


class _GardenBuilder(network.ResNetBuilder):
  """The network with the Model Garden's activation and stochastic depth layers."""

  def activation_layer(self):
    return tf_utils.get_activation(self.activation, use_keras_layer=True)

  def stochastic_depth(self, rate, name):
    return nn_layers.StochasticDepth(rate, name=name)


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
      width_variant: str = spec.DEFAULT_WIDTH_VARIANT,
      attention_groups: Sequence[int] = spec.RESIDUAL_GROUPS,
      attention_variant: str = spec.DEFAULT_ATTENTION_VARIANT,
      num_heads: int = spec.DEFAULT_NUM_HEADS,
      max_relative_shift: Optional[int] = None,
      stem_type: str = spec.DEFAULT_STEM_TYPE,
      stochastic_depth_drop_rate: float = 0.0,
      zero_init_residual: bool = spec.DEFAULT_ZERO_INIT_RESIDUAL,
      activation: str = "relu",
      use_sync_bn: bool = False,
      norm_momentum: float = 0.99,
      norm_epsilon: float = 0.001,
      kernel_initializer: str = "VarianceScaling",
      kernel_regularizer: Optional[tf_keras.regularizers.Regularizer] = None,
      **kwargs):
    """Initializes a GSA-ResNet.

    Args:
      model_id: `int` depth, one of `spec.BLOCK_REPEATS` (26, 38, 50, 101, 152).
      input_specs: `tf_keras.layers.InputSpec` of the images; height and width must
        be multiples of 32, and known unless `max_relative_shift` is set (global
        attention sizes its relative embeddings by the feature size).
      width_variant: `str`, 'standard' or 'm_resnet' (Table 3's M-ResNet).
      attention_groups: `Sequence[int]` of residual groups (1..4) whose 3x3
        convolutions are attention modules (Table 5); empty for the plain ResNet.
      attention_variant: `str`, one of `gsa_keras.spec.ATTENTION_VARIANTS`:
        'gsa', a Table 4 ablation, Table 2's 'axial' or Table 3's 'local' baseline.
      num_heads: `int` heads per attention module.
      max_relative_shift: `int` or None, `L` of Appendix B eq. 5; None is global.
      stem_type: `str`, 'v0' (7x7 conv and max pool) or 'v1' (three 3x3 convs and
        max pool, ResNet-D).
      stochastic_depth_drop_rate: `float` drop rate of the last residual group,
        scaled linearly down for earlier groups as in the Model Garden.
      zero_init_residual: `bool`, start the last batch normalization of every
        residual branch with gamma = 0, so each block starts as its shortcut
        (Goyal et al. 2017, the TPU ResNet recipe). Without it the GSA modules'
        products of projections (eqs. 1, 7) make the initial gradients 30-150x
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
    spec.check_arguments(
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
    builder_arguments = dict(self._config_dict)
    del builder_arguments["input_specs"]
    endpoints = _GardenBuilder(tf_keras, **builder_arguments).endpoints(inputs)
    self._output_specs = {level: x.get_shape() for level, x in endpoints.items()}
    super().__init__(inputs=inputs, outputs=endpoints, **kwargs)

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
