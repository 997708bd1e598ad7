"""Image classifiers on a backbone config: the Model Garden's `ClassificationModel`.

`build_classifier` turns a backbone config (our `GSAResNet`, or any `Backbone` one-of,
the Model Garden's own `resnet` included) into a tf_keras classifier for square
images, without an experiment config: the FLOP counter (`gsa_keras.flops`), the
benchmarks and the tests build their networks with it. Training builds its models
through the registered experiments instead (`gsa_keras.configs.experiments`).
"""

from typing import Union

import tf_keras

from official.vision.configs import common
from official.vision.modeling import classification_model
from official.vision.modeling.backbones import factory

from gsa_keras import registry_imports  # pylint: disable=unused-import
from gsa_keras.configs import backbones as backbone_configs


def build_classifier(config: Union[backbone_configs.GSAResNet,
                                   backbone_configs.Backbone],
                     input_size: int = 224,
                     num_classes: int = 1000) -> tf_keras.Model:
  """A Model Garden `ClassificationModel` on the configured backbone.

  Args:
    config: a `GSAResNet` config, or a `Backbone` one-of naming any registered
      backbone type.
    input_size: image height and width.
    num_classes: classifier outputs (the paper's ImageNet networks: 1000).

  Returns:
    The classifier, for `[batch, input_size, input_size, 3]` images, with
    non-synchronized batch normalization and no weight decay.
  """
  if isinstance(config, backbone_configs.GSAResNet):
    config = backbone_configs.Backbone(type="gsa_resnet", gsa_resnet=config)
  input_specs = tf_keras.layers.InputSpec(shape=[None, input_size, input_size, 3])
  backbone = factory.build_backbone(
      input_specs=input_specs, backbone_config=config,
      norm_activation_config=common.NormActivation(use_sync_bn=False))
  return classification_model.ClassificationModel(
      backbone=backbone, num_classes=num_classes, input_specs=input_specs)
