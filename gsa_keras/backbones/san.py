"""SAN as a Model Garden backbone (`backbone.type: san`; Zhao, Jia, Koltun 2020).

The network is `gsa_keras.san_network`'s, the same layers under the same names as the
Keras models `gsa_keras.applications.SAN10` etc.; as a backbone it maps images to the
endpoints `'1'..'5'` (strides 2 to 32), the outputs of SAN's five stages.
"""

from typing import Optional

import tf_keras

from official.modeling import hyperparams
from official.vision.modeling.backbones import factory

from gsa_keras import san_network
from gsa_keras.backbones import gsa_resnet

layers = tf_keras.layers


@tf_keras.utils.register_keras_serializable(package="gsa_keras")
class SAN(tf_keras.Model):
  """SAN10, SAN15 or SAN19 with pairwise or patchwise self-attention: a functional
  model from images to the endpoints `'1'..'5'`."""

  def __init__(
      self,
      depth: int = 10,
      operator: str = "pairwise",
      # One object for every instance, as in the Model Garden's backbones: it is only read.
      input_specs: layers.InputSpec = layers.InputSpec(shape=[None, 224, 224, 3]),  # noqa: B008
      kernel_regularizer: Optional[tf_keras.regularizers.Regularizer] = None,
      norm_momentum: float = 0.9,
      norm_epsilon: float = 1e-5,
      narrow_footprints: bool = False,
      **kwargs):
    """Initializes a SAN backbone.

    Args:
      depth: 10, 15 or 19.
      operator: 'pairwise' or 'patchwise'.
      input_specs: `tf_keras.layers.InputSpec` of the images; height and width at
        least 128 (`san_network.minimum_input_size`), or 32 with `narrow_footprints`.
      kernel_regularizer: regularizer of every convolution and attention kernel.
      norm_momentum: every batch norm's momentum.
      norm_epsilon: every batch norm's epsilon.
      narrow_footprints: on inputs under 128x128, narrow the footprints of the stages
        whose maps are too small for them (`san_network.build_san`) instead of raising.
      **kwargs: `tf_keras.Model` keyword arguments.
    """
    builder = san_network.SANBuilder(
        tf_keras, depth, operator, kernel_regularizer=kernel_regularizer,
        norm_momentum=norm_momentum, norm_epsilon=norm_epsilon,
        narrow_footprints=narrow_footprints)
    san_network.check_input_size(input_specs.shape[1], input_specs.shape[2], depth,
                                 narrow_footprints)
    self._config = dict(depth=depth, operator=operator, norm_momentum=norm_momentum,
                        norm_epsilon=norm_epsilon,
                        narrow_footprints=narrow_footprints)
    self._input_specs = input_specs
    self._kernel_regularizer = kernel_regularizer
    inputs = tf_keras.Input(shape=input_specs.shape[1:], name="images")
    endpoints = builder.endpoints(inputs)
    self._output_specs = {level: x.get_shape() for level, x in endpoints.items()}
    super().__init__(inputs=inputs, outputs=endpoints, **kwargs)

  def get_config(self):
    """The constructor arguments, JSON-serializable."""
    return dict(self._config, **gsa_resnet.serialize_inputs_and_regularizer(
        self._input_specs, self._kernel_regularizer))

  @classmethod
  def from_config(cls, config, custom_objects=None):
    return cls(**gsa_resnet.deserialize_inputs_and_regularizer(config))

  @property
  def output_specs(self):
    """A dict of {level: TensorShape} for the endpoints '1'..'5'."""
    return self._output_specs


@factory.register_backbone_builder("san")
def build_san(
    input_specs: tf_keras.layers.InputSpec,
    backbone_config: hyperparams.Config,
    norm_activation_config: hyperparams.Config,
    l2_regularizer: Optional[tf_keras.regularizers.Regularizer] = None,
) -> tf_keras.Model:
  """Builds a `SAN` from a `gsa_keras.configs.backbones.Backbone` config: the `san`
  fields, and batch norm momentum and epsilon from the task's `norm_activation`."""
  if backbone_config.type != "san":
    raise ValueError(f"`backbone.type` must be 'san' for this builder, got "
                     f"{backbone_config.type!r}.")
  config = backbone_config.get()
  return SAN(config.depth, config.operator, input_specs=input_specs,
             kernel_regularizer=l2_regularizer,
             norm_momentum=norm_activation_config.norm_momentum,
             norm_epsilon=norm_activation_config.norm_epsilon,
             narrow_footprints=config.narrow_footprints)
