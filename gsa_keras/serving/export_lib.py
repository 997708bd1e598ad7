"""Exports a trained classifier: a SavedModel with every serving signature, and TFLite.

The steps of `python -m gsa_keras.export`, usable from Python:

  params = load_params("gsa_resnet_digits", ["/tmp/gsa_digits/params.yaml"])
  module = export_saved_model(params, runs.find_checkpoint("/tmp/gsa_digits"),
                              export_dir, precision="bfloat16")
  export_tflite(module, "/tmp/gsa_digits.tflite")  # Always float32.

Every check that can fail on the user's input (experiment name, files, checkpoint)
runs before the model is built and raises an error naming the flag and the path.
"""

import os
from typing import Optional, Sequence

import tensorflow as tf

from official.core import config_definitions as cfg
from official.vision.configs import image_classification as ic_config
from official.vision.serving import export_saved_model_lib
# tf_keras's switch for tracing every layer's call into the SavedModel (the public
# `model.save(save_traces=...)` sets it, but only for Keras models).
from tf_keras.src.saving.legacy.saved_model import utils as keras_saved_model_utils

from gsa_keras import runs
from gsa_keras.serving import module as serving_module


def load_params(experiment: str, config_files: Sequence[str] = (),
                params_override="") -> cfg.ExperimentConfig:
  """`gsa_keras.runs.load_params` for an image classification experiment, the kind
  of experiment this module exports."""
  return runs.load_params(experiment, config_files, params_override,
                          task_type=ic_config.ImageClassificationTask)


def _without_keras_layer_traces():
  """A scope in which saving a module that holds a tf_keras model saves the model's
  variables but no trace of every layer's call (which tf_keras adds for reloading the
  model as Keras). Exports are used through their signatures, and the traces cost time:
  on the digits model (one measurement) the SavedModel export took 20 s instead of 45,
  and the TFLite conversion 14 s instead of 47."""
  return keras_saved_model_utils.keras_option_scope(save_traces=False)


def export_saved_model(params, checkpoint_prefix: str, export_dir: str,
                       batch_size: Optional[int] = None,
                       max_image_pixels: int = serving_module.DEFAULT_MAX_IMAGE_PIXELS,
                       precision: str = serving_module.DEFAULT_PRECISION
                       ) -> serving_module.ClassifierModule:
  """Writes the SavedModel (every signature of `serving_module.SIGNATURES`).

  The model computes in `precision` from the float32 checkpoint as it is; the
  signatures' inputs and float32 outputs are the same for every precision.

  Args:
    params: The experiment config (`load_params`).
    checkpoint_prefix: A checkpoint file prefix (`find_checkpoint`).
    export_dir: The SavedModel directory; `params.yaml` is written next to
      `saved_model.pb`, its `runtime.mixed_precision_dtype` set to `precision`.
    batch_size: Batch size of every signature; None accepts any.
    max_image_pixels: The most pixels the encoded images of one request may decode
      to, each and all together (`image_bytes`, `tf_example`); larger ones are
      rejected before decoding (`--max_image_pixels`).
    precision: What the model computes in, one of `serving_module.PRECISIONS`
      (`--precision`): "float32", or "bfloat16" (bfloat16 activations and
      products, float32 variables and softmaxes). bfloat16 is faster only on
      CPUs with bfloat16 instructions (AVX512-BF16, AMX).

  Returns:
    The serving module, with the restored model (for `export_tflite`).

  Raises:
    ValueError: A bad `precision` or `max_image_pixels` (before the model is
      built), or a checkpoint that does not fit the model.
  """
  module = serving_module.ClassifierModule(params, batch_size=batch_size,
                                           max_image_pixels=max_image_pixels,
                                           precision=precision)
  runs.restore(module.model, checkpoint_prefix)
  # The export's params.yaml says what the SavedModel computes in.
  recorded = params.replace(runtime={"mixed_precision_dtype": module.precision})
  with _without_keras_layer_traces():
    export_saved_model_lib.export_inference_graph(
        input_type="image_tensor", batch_size=batch_size,
        input_image_size=list(params.task.model.input_size[:2]), params=recorded,
        checkpoint_path=None, export_dir=export_dir, export_module=module,
        function_keys=dict(serving_module.SIGNATURES))
  return module


def export_tflite(module: serving_module.ClassifierModule, tflite_path: str) -> None:
  """Writes a float32 TFLite flatbuffer of `serving_default` (builtin ops only).

  Its signature `serving_default` takes `inputs`, uint8 [batch, height, width, 3] at
  the model's input size (batch: the module's batch size, else 1), preprocesses them
  inside as the SavedModel does and returns `logits` and `probs`. TFLite's builtin
  kernels (XNNPACK) compute in float32, so a bfloat16 module is converted through a
  float32 copy of its model with the same weights.
  """
  module = module.with_precision("float32")
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [module.tflite_function()], module)
  with _without_keras_layer_traces():  # The converter saves `module` first.
    flatbuffer = converter.convert()
  if os.path.dirname(tflite_path):
    tf.io.gfile.makedirs(os.path.dirname(tflite_path))
  with tf.io.gfile.GFile(tflite_path, "wb") as f:
    f.write(flatbuffer)
