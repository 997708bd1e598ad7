"""The image classification task of the GSA experiments.

The Model Garden's `ImageClassificationTask` (tf-models-official 2.20) builds its
`classification_input.Parser` without `crop_area_range`, so whatever a config sets
there, random crops cover the parser's ImageNet default of 8-100% of the image. This
task is the Model Garden's with its own `build_inputs`, which hands the parser every
parser field of the data config (`PARSER_FIELDS`). A config that sets a field no
code reads is refused when the experiment is validated
(`gsa_keras.configs.validation.UNREAD_DATA_FIELDS`).
"""

from typing import Dict, Optional

import tensorflow as tf

from official.common import dataset_fn
from official.core import task_factory
from official.vision.configs import image_classification as ic_config
from official.vision.dataloaders import classification_input
from official.vision.dataloaders import input_reader
from official.vision.dataloaders import input_reader_factory
from official.vision.dataloaders import tfds_factory
from official.vision.ops import augment
from official.vision.tasks import image_classification as ic_task

from gsa_keras.configs import experiments

# `ic_config.DataConfig` fields that `classification_input.Parser` takes, by the name
# of its argument (the same name in every case). The fields of the base
# `cfg.DataConfig` (paths, batch size, shuffling, TFDS, ...) go to the input reader,
# which receives the whole config.
PARSER_FIELDS = ("decode_jpeg_only", "aug_rand_hflip", "aug_crop", "crop_area_range",
                 "aug_type", "color_jitter", "random_erasing", "dtype",
                 "center_crop_fraction", "tf_resize_method", "three_augment")
# Fields the classification data path reads from `train_data` for both splits.
SHARED_FIELDS = ("image_field_key", "label_field_key", "is_multilabel")
# Fields the data path reads outside the parser.
READER_FIELDS = ("mixup_and_cutmix", "repeated_augment", "file_type", "weights")
def parser_arguments(params: ic_config.DataConfig,
                     task_config: ic_config.ImageClassificationTask) -> Dict:
  """The keyword arguments of `classification_input.Parser` for `params`."""
  model = task_config.model
  shared = task_config.train_data
  arguments = {name: getattr(params, name) for name in PARSER_FIELDS}
  arguments.update({name: getattr(shared, name) for name in SHARED_FIELDS})
  arguments.update(output_size=model.input_size[:2], num_classes=model.num_classes)
  if arguments["crop_area_range"] is not None:
    arguments["crop_area_range"] = tuple(arguments["crop_area_range"])
  return arguments


class ImageClassificationTask(ic_task.ImageClassificationTask):
  """The Model Garden's image classification task; its inputs honour every data field.

  Model, losses, metrics and the train and validation steps are the Model Garden's.
  """

  def build_inputs(self, params: ic_config.DataConfig,
                   input_context: Optional[tf.distribute.InputContext] = None
                   ) -> tf.data.Dataset:
    """The batched `(images, labels)` dataset of `params` (train or validation)."""
    shared = self.task_config.train_data
    if params.tfds_name:
      decoder = tfds_factory.get_classification_decoder(params.tfds_name)
    else:
      decoder = classification_input.Decoder(
          image_field_key=shared.image_field_key,
          label_field_key=shared.label_field_key, is_multilabel=shared.is_multilabel)
    parser = classification_input.Parser(
        **parser_arguments(params, self.task_config))
    postprocess_fn = None
    if params.mixup_and_cutmix:
      mixing = params.mixup_and_cutmix
      postprocess_fn = augment.MixupAndCutmix(
          mixup_alpha=mixing.mixup_alpha, cutmix_alpha=mixing.cutmix_alpha,
          prob=mixing.prob, label_smoothing=mixing.label_smoothing,
          num_classes=self.task_config.model.num_classes)
    sample_fn = None
    if params.is_training and params.repeated_augment is not None:
      copies = params.repeated_augment

      def sample_fn(dataset):
        return tf.data.Dataset.sample_from_datasets(
            [dataset] * copies, weights=[1 / copies] * copies,
            stop_on_empty_dataset=True)

    reader = input_reader_factory.input_reader_generator(
        params,
        dataset_fn=dataset_fn.pick_dataset_fn(params.file_type),
        decoder_fn=decoder.decode,
        combine_fn=input_reader.create_combine_fn(params),
        parser_fn=parser.parse_fn(params.is_training),
        postprocess_fn=postprocess_fn,
        sample_fn=sample_fn)
    return reader.read(input_context=input_context)


task_factory.register_task_cls(experiments.GSAImageClassificationTask)(
    ImageClassificationTask)
