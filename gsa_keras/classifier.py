"""Image classifiers on a backbone config: the Model Garden's `ClassificationModel`.

`build_classifier` turns an architecture (`gsa_keras.spec.Architecture`) or a backbone
config (our `GSAResNet`, or any `Backbone` one-of, the Model Garden's own `resnet`
included) into a tf_keras classifier for square images, without an experiment config:
the FLOP counter (`gsa_keras.flops`), the
benchmarks and the tests build their networks with it. Training builds its models
through the registered experiments instead (`gsa_keras.configs.experiments`).
"""

from typing import Union

import tf_keras

from official.vision.configs import common
from official.vision.modeling import classification_model
from official.vision.modeling.backbones import factory

from gsa_keras import registry_imports
from gsa_keras import spec
from gsa_keras.configs import backbones as backbone_configs


def build_classifier(config: Union[spec.Architecture, backbone_configs.GSAResNet,
                                   backbone_configs.Backbone],
                     input_size: int = 224,
                     num_classes: int = 1000) -> tf_keras.Model:
  """A Model Garden `ClassificationModel` on the configured backbone.

  Args:
    config: an `Architecture` (its batch norm and activation options included), a
      `GSAResNet` config, or a `Backbone` one-of naming any registered backbone type.
    input_size: image height and width.
    num_classes: classifier outputs (the paper's ImageNet networks: 1000).

  Returns:
    The classifier, for `[batch, input_size, input_size, 3]` images, with no weight
    decay; a config's network has non-synchronized batch normalization with the Model
    Garden's default momentum and epsilon.
  """
  norm_activation = common.NormActivation(use_sync_bn=False)
  if isinstance(config, spec.Architecture):
    norm_activation = backbone_configs.norm_activation(config)
    config = backbone_configs.GSAResNet.from_architecture(config)
  if isinstance(config, backbone_configs.GSAResNet):
    config = backbone_configs.Backbone(type="gsa_resnet", gsa_resnet=config)
  input_specs = tf_keras.layers.InputSpec(shape=[None, input_size, input_size, 3])
  backbone = factory.build_backbone(
      input_specs=input_specs, backbone_config=config,
      norm_activation_config=norm_activation)
  return classification_model.ClassificationModel(
      backbone=backbone, num_classes=num_classes, input_specs=input_specs)
