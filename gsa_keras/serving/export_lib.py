"""Exports a trained classifier: a SavedModel with every serving signature, and TFLite.

The steps of `python -m gsa_keras.export`, usable from Python:

  params = load_params("gsa_resnet_digits", ["/tmp/gsa_digits/params.yaml"])
  module = export_saved_model(params, find_checkpoint("/tmp/gsa_digits"), export_dir)
  export_tflite(module, "/tmp/gsa_digits.tflite")

Every check that can fail on the user's input (experiment name, files, checkpoint)
runs before the model is built and raises an error naming the flag and the path.
"""

import os
import types
from typing import Optional, Sequence

import tensorflow as tf

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.core import train_utils
from official.vision.configs import image_classification as ic_config
from official.vision.serving import export_saved_model_lib

from gsa_keras import checkpoints
from gsa_keras import registry_imports  # pylint: disable=unused-import
from gsa_keras.serving import module as serving_module


def _registered_experiments():
  # pylint: disable-next=protected-access
  return sorted(name for name in exp_factory._REGISTERED_CONFIGS
                if name.startswith("gsa_"))


def load_params(experiment: str, config_files: Sequence[str] = (),
                params_override="") -> cfg.ExperimentConfig:
  """The experiment config with the YAML files and overrides applied, validated.

  Args:
    experiment: A registered experiment name (`--experiment`).
    config_files: YAML files overriding it in order (`--config_file`), e.g. the
      `params.yaml` that training wrote to its model_dir.
    params_override: A YAML/JSON string or file, or a dict, applied last
      (`--params_override`).

  Returns:
    The locked `ExperimentConfig`.

  Raises:
    ValueError: Unknown experiment, an unknown key in an override, not an image
      classification experiment, or a value the config's `validate` rejects.
    FileNotFoundError: A missing config file.
  """
  for path in config_files:
    if not tf.io.gfile.exists(path):
      raise FileNotFoundError(f"--config_file: no file {path!r}.")
  parser = train_utils.ExperimentParser(types.SimpleNamespace(
      experiment=experiment, config_file=list(config_files),
      params_override=params_override))
  try:
    params = parser.base_experiment()
  except LookupError:
    raise ValueError(
        f"--experiment: unknown experiment {experiment!r}; the GSA experiments "
        f"are {', '.join(_registered_experiments())}.") from None
  try:
    params = parser.parse_config_file(params)
    params = parser.parse_params_override(params)
  except KeyError as e:
    raise ValueError(f"--config_file/--params_override: {e}") from e
  if not isinstance(params.task, ic_config.ImageClassificationTask):
    raise ValueError(f"--experiment: {experiment!r} is not an image "
                     f"classification experiment ({type(params.task).__name__}).")
  params.validate()
  params.lock()
  return params


def find_checkpoint(path: str) -> str:
  """The checkpoint prefix `path` names: itself, or a directory's latest checkpoint.

  Raises:
    FileNotFoundError: No checkpoint there (the message names `--checkpoint_path`).
  """
  return checkpoints.find_checkpoint(path, "--checkpoint_path")


def restore(model, checkpoint_prefix: str) -> None:
  """Reads the model's weights from a training checkpoint (optimizer state ignored).

  Raises:
    ValueError: The checkpoint does not fit the model (naming `--checkpoint_path`).
  """
  status = tf.train.Checkpoint(model=model).read(checkpoint_prefix).expect_partial()
  try:
    status.assert_existing_objects_matched()
  except (AssertionError, ValueError) as e:
    summary = str(e).splitlines()[0][:300]
    raise ValueError(
        f"--checkpoint_path: {checkpoint_prefix!r} does not match the model of the "
        f"experiment config (check --experiment, --config_file and "
        f"--params_override): {summary}") from e


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
  restore(module.model, checkpoint_prefix)
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
