"""The GSA-ResNet backbone in the Model Garden's detection and segmentation models.

What works today, as docs/model_garden.md says: the Model Garden's model factories
(`official.vision.modeling.factory.build_retinanet`, `build_maskrcnn`,
`build_segmentation_model`) build their models on `backbone.type: gsa_resnet` when the
task's model config holds our `gsa_keras.configs.backbones.Backbone` one-of. The stock
registered experiments do not: their `Backbone` one-of has no `gsa_resnet` field, so a
YAML override fails.

Each model is built at a small size (GSA-ResNet-26 with attention in groups 3-4, 64x64
images) and run once; its backbone's endpoints must equal those of a standalone
`GSAResNet` with the same weights, and the RetinaNet's and the segmentation model's
outputs must be their decoder and head applied to those endpoints.
"""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official.core import exp_factory
from official.modeling import hyperparams
from official.vision.configs import common
from official.vision.configs import decoders
from official.vision.configs import maskrcnn as maskrcnn_config
from official.vision.configs import retinanet as retinanet_config
from official.vision.configs import semantic_segmentation as segmentation_config
from official.vision.modeling import factory
from official.vision.ops import anchor

from gsa_keras import registry_imports
from gsa_keras.backbones import gsa_resnet
from gsa_keras.configs import backbones as configs

SIZE = 64
BACKBONE_FIELDS = dict(model_id=26, attention_groups=[3, 4])
NORM = common.NormActivation(use_sync_bn=False)


def _input_specs():
  return tf_keras.layers.InputSpec(shape=[None, SIZE, SIZE, 3])


def _backbone_config():
  return configs.Backbone(type="gsa_resnet",
                          gsa_resnet=configs.GSAResNet(**BACKBONE_FIELDS))


def _model_fields(num_classes, min_level=3):
  """What the three task configs share: size, levels, backbone, FPN decoder, norm."""
  return dict(num_classes=num_classes, input_size=[SIZE, SIZE, 3], min_level=min_level,
              max_level=5, backbone=_backbone_config(),
              decoder=decoders.Decoder(type="fpn", fpn=decoders.FPN(num_filters=32)),
              norm_activation=NORM)


def _images():
  return tf.random.stateless_uniform((2, SIZE, SIZE, 3), seed=(7, 8))


def _standalone_endpoints(model_backbone, images):
  """A separately built `GSAResNet` with the task model's backbone weights."""
  standalone = gsa_resnet.GSAResNet(
      configs.GSAResNet(**BACKBONE_FIELDS).architecture(NORM), input_specs=_input_specs())
  assert len(standalone.weights) == len(model_backbone.weights)
  standalone.set_weights(model_backbone.get_weights())
  return standalone(images, training=False)


def _assert_close(actual, expected):
  np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_retinanet_on_the_gsa_backbone():
  model_config = retinanet_config.RetinaNet(
      head=retinanet_config.RetinaNetHead(num_convs=1, num_filters=32),
      **_model_fields(num_classes=3))
  model = factory.build_retinanet(_input_specs(), model_config)
  assert isinstance(model.backbone, gsa_resnet.GSAResNet)

  images = _images()
  # Inference: the model makes its anchors and runs its detection generator.
  outputs = model(images, image_shape=tf.constant([[SIZE, SIZE]] * 2),
                  output_intermediate_features=True, training=False)
  anchors = len(model_config.anchor.aspect_ratios) * model_config.anchor.num_scales
  for level in ("3", "4", "5"):
    stride = 2**int(level)
    assert outputs["cls_outputs"][level].shape == (2, SIZE // stride, SIZE // stride,
                                                   3 * anchors)
    assert outputs["box_outputs"][level].shape == (2, SIZE // stride, SIZE // stride,
                                                   4 * anchors)
  assert outputs["detection_boxes"].shape[:2] == (2, 100)

  endpoints = _standalone_endpoints(model.backbone, images)
  assert sorted(endpoints) == ["2", "3", "4", "5"]
  for level, features in endpoints.items():
    _assert_close(outputs[f"backbone_{level}"], features)
  scores, boxes, _ = model.head(model.decoder(endpoints))
  for level in ("3", "4", "5"):
    _assert_close(outputs["cls_outputs"][level], scores[level])
    _assert_close(outputs["box_outputs"][level], boxes[level])


def test_segmentation_model_on_the_gsa_backbone():
  model_config = segmentation_config.SemanticSegmentationModel(
      head=segmentation_config.SegmentationHead(level=3, num_convs=1, num_filters=32,
                                                 feature_fusion=None),
      **_model_fields(num_classes=5))
  model = factory.build_segmentation_model(_input_specs(), model_config)
  assert isinstance(model.backbone, gsa_resnet.GSAResNet)

  images = _images()
  logits = model(images, training=False)["logits"]
  assert logits.shape == (2, SIZE // 8, SIZE // 8, 5)  # The head's level 3.

  endpoints = _standalone_endpoints(model.backbone, images)
  _assert_close(logits, model.head((endpoints, model.decoder(endpoints))))


def test_mask_rcnn_on_the_gsa_backbone():
  model_config = maskrcnn_config.MaskRCNN(
      rpn_head=maskrcnn_config.RPNHead(num_convs=1, num_filters=32),
      detection_head=maskrcnn_config.DetectionHead(num_convs=0, num_fcs=1,
                                                   fc_dims=32),
      mask_head=maskrcnn_config.MaskHead(num_convs=1, num_filters=32),
      **_model_fields(num_classes=3, min_level=2))
  model = factory.build_maskrcnn(_input_specs(), model_config)
  assert isinstance(model.backbone, gsa_resnet.GSAResNet)

  images = _images()
  anchors = anchor.Anchor(
      min_level=2, max_level=5, num_scales=model_config.anchor.num_scales,
      aspect_ratios=model_config.anchor.aspect_ratios,
      anchor_size=model_config.anchor.anchor_size,
      image_size=(SIZE, SIZE)).multilevel_boxes
  outputs = model(images, image_shape=tf.constant([[SIZE, SIZE]] * 2),
                  anchor_boxes={k: tf.tile(v[None], [2, 1, 1, 1])
                                for k, v in anchors.items()}, training=False)
  detections = model_config.detection_generator.max_num_detections
  assert outputs["detection_boxes"].shape == (2, detections, 4)
  assert outputs["detection_masks"].shape[:2] == (2, detections)

  endpoints = _standalone_endpoints(model.backbone, images)
  for level, features in endpoints.items():
    _assert_close(outputs["backbone_features"][level], features)


@pytest.mark.parametrize("experiment", ["retinanet_resnetfpn_coco",
                                        "maskrcnn_resnetfpn_coco",
                                        "seg_deeplabv3_pascal"])
def test_stock_experiments_reject_the_gsa_backbone_from_yaml(experiment):
  """As docs/model_garden.md says: use the factories in Python, not these
  experiments' YAML."""
  params = exp_factory.get_exp_config(experiment)
  with pytest.raises(KeyError, match="gsa_resnet"):
    hyperparams.override_params_dict(
        params, {"task": {"model": {"backbone": {
            "type": "gsa_resnet", "gsa_resnet": {"model_id": 26}}}}}, is_strict=True)
