"""Exports a trained classifier: a SavedModel with every serving signature, and TFLite.

The steps of `python -m gsa_keras.export`, usable from Python:

  params = load_params("gsa_resnet_digits", ["/tmp/gsa_digits/params.yaml"])
  module = export_saved_model(params, runs.find_checkpoint("/tmp/gsa_digits"),
                              export_dir)
  export_tflite(module, "/tmp/gsa_digits.tflite")

Every check that can fail on the user's input (experiment name, files, checkpoint)
runs before the model is built and raises an error naming the flag and the path.
"""

import os
from typing import Optional, Sequence

import tensorflow as tf

from official.core import config_definitions as cfg
from official.vision.configs import image_classification as ic_config
from official.vision.serving import export_saved_model_lib

from gsa_keras import runs
from gsa_keras.serving import module as serving_module


def load_params(experiment: str, config_files: Sequence[str] = (),
                params_override="") -> cfg.ExperimentConfig:
  """`gsa_keras.runs.load_params` for an image classification experiment, the kind
  of experiment this module exports."""
  return runs.load_params(experiment, config_files, params_override,
                          task_type=ic_config.ImageClassificationTask)


def export_saved_model(params, checkpoint_prefix: str, export_dir: str,
                       batch_size: Optional[int] = None,
                       max_image_pixels: int = serving_module.DEFAULT_MAX_IMAGE_PIXELS
                       ) -> serving_module.ClassifierModule:
  """Writes the SavedModel (every signature of `serving_module.SIGNATURES`).

  Args:
    params: The experiment config (`load_params`).
    checkpoint_prefix: A checkpoint file prefix (`find_checkpoint`).
    export_dir: The SavedModel directory; `params.yaml` is written next to
      `saved_model.pb`.
    batch_size: Batch size of every signature; None accepts any.
    max_image_pixels: The most pixels the encoded images of one request may decode
      to, each and all together (`image_bytes`, `tf_example`); larger ones are
      rejected before decoding (`--max_image_pixels`).

  Returns:
    The serving module, with the restored model (for `export_tflite`).
  """
  module = serving_module.ClassifierModule(params, batch_size=batch_size,
                                           max_image_pixels=max_image_pixels)
  runs.restore(module.model, checkpoint_prefix)
  export_saved_model_lib.export_inference_graph(
      input_type="image_tensor", batch_size=batch_size,
      input_image_size=list(params.task.model.input_size[:2]), params=params,
      checkpoint_path=None, export_dir=export_dir, export_module=module,
      function_keys=dict(serving_module.SIGNATURES))
  return module


def export_tflite(module: serving_module.ClassifierModule, tflite_path: str) -> None:
  """Writes a float32 TFLite flatbuffer of `serving_default` (builtin ops only).

  Its signature `serving_default` takes `inputs`, uint8 [batch, height, width, 3] at
  the model's input size (batch: the module's batch size, else 1), preprocesses them
  inside as the SavedModel does and returns `logits` and `probs`.
  """
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [module.tflite_function()], module)
  flatbuffer = converter.convert()
  if os.path.dirname(tflite_path):
    tf.io.gfile.makedirs(os.path.dirname(tflite_path))
  with tf.io.gfile.GFile(tflite_path, "wb") as f:
    f.write(flatbuffer)
