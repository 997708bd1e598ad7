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

from typing import Optional

import tf_keras

from official.modeling import hyperparams
from official.modeling import tf_utils
from official.vision.modeling.backbones import factory
from official.vision.modeling.layers import nn_layers

from gsa_keras import network
from gsa_keras import spec

layers = tf_keras.layers


def serialize_inputs_and_regularizer(input_specs, kernel_regularizer) -> dict:
  """A backbone's `input_specs` and `kernel_regularizer` arguments, JSON-serializable
  (for `get_config`)."""
  return dict(input_specs=input_specs.get_config(),
              kernel_regularizer=(tf_keras.regularizers.serialize(kernel_regularizer)
                                  if kernel_regularizer is not None else None))


def deserialize_inputs_and_regularizer(config) -> dict:
  """`config` (a backbone's `get_config`) with `input_specs` and `kernel_regularizer`
  as objects again (for `from_config`)."""
  config = dict(config)
  if isinstance(config.get("input_specs"), dict):
    config["input_specs"] = layers.InputSpec.from_config(config["input_specs"])
  if config.get("kernel_regularizer") is not None:
    config["kernel_regularizer"] = tf_keras.regularizers.get(config["kernel_regularizer"])
  return config


class _GardenBuilder(network.ResNetBuilder):
  """The network with the Model Garden's activation and stochastic depth layers."""

  def activation_layer(self):
    return tf_utils.get_activation(self.architecture.activation, use_keras_layer=True)

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
      architecture: Optional[spec.Architecture] = None,
      # One object for every instance, as in the Model Garden's backbones: it is only read.
      input_specs: layers.InputSpec = layers.InputSpec(shape=[None, 224, 224, 3]),  # noqa: B008
      kernel_regularizer: Optional[tf_keras.regularizers.Regularizer] = None,
      **kwargs):
    """Initializes a GSA-ResNet.

    Args:
      architecture: `gsa_keras.spec.Architecture`, every option of the network;
        default `Architecture()`, GSA-ResNet-50.
      input_specs: `tf_keras.layers.InputSpec` of the images; height and width must
        be multiples of 32, and known unless `max_relative_shift` is set (global
        attention sizes its relative embeddings by the feature size).
      kernel_regularizer: `tf_keras.regularizers.Regularizer` or None, applied to
        every convolution kernel, attention projection and relative embedding.
      **kwargs: options of `architecture` to replace, by name (`model_id=26`, ...;
        `spec.OPTION_NAMES`), then `tf_keras.Model` keyword arguments.
    """
    options = {name: kwargs.pop(name) for name in spec.OPTION_NAMES if name in kwargs}
    architecture = (architecture or spec.Architecture()).replace(**options)
    architecture.validate(input_size=input_specs.shape[1:3])
    self._architecture = architecture
    self._input_specs = input_specs
    self._kernel_regularizer = kernel_regularizer

    inputs = tf_keras.Input(shape=input_specs.shape[1:], name="images")
    endpoints = _GardenBuilder(tf_keras, architecture,
                               kernel_regularizer).endpoints(inputs)
    self._output_specs = {level: x.get_shape() for level, x in endpoints.items()}
    super().__init__(inputs=inputs, outputs=endpoints, **kwargs)

  @property
  def architecture(self) -> spec.Architecture:
    """The network's options."""
    return self._architecture

  # -- Serialization. -----------------------------------------------------------------

  def get_config(self):
    """The constructor arguments, JSON-serializable: every option by name."""
    config = self._architecture.options()
    config["attention_groups"] = list(config["attention_groups"])
    config.update(serialize_inputs_and_regularizer(self._input_specs,
                                                   self._kernel_regularizer))
    return config

  @classmethod
  def from_config(cls, config, custom_objects=None):
    return cls(**deserialize_inputs_and_regularizer(config))

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
  """Builds a `GSAResNet` from a `gsa_keras.configs.backbones.Backbone` config: the
  `gsa_resnet` fields and the task's `norm_activation` make its architecture."""
  if backbone_config.type != "gsa_resnet":
    raise ValueError(f"`backbone.type` must be 'gsa_resnet' for this builder, got "
                     f"{backbone_config.type!r}.")
  return GSAResNet(backbone_config.get().architecture(norm_activation_config),
                   input_specs=input_specs, kernel_regularizer=l2_regularizer)
