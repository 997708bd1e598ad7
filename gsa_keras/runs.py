"""Loading a run, one way for every command: its config, its checkpoint, its model.

The commands (`train`, `export`, `visualize`, `predict`) and the Keras models
(`gsa_keras.applications`) read an experiment config the same way (a registered
experiment, YAML files, then overrides), find checkpoints the same way (a training
model_dir or a checkpoint prefix, `gsa_keras.checkpoints`) and restore them the same
way. Every mistake a user can make raises an error that names the flag, before any
model is built; `gsa_keras.cli.command_line_errors` turns those into one line.

  params = load_params("gsa_resnet_digits", run_config_files("/tmp/gsa_digits"))
  model = load_model(params, "/tmp/gsa_digits")
"""

import os
import types
from typing import List, Optional, Sequence

import tensorflow as tf

from official.core import config_definitions as cfg
from official.core import task_factory
from official.core import train_utils

from gsa_keras import checkpoints
from gsa_keras import compat
from gsa_keras import registry_imports

CHECKPOINT_FLAG = "--checkpoint_path"
RUN_PARAMS_FILE = "params.yaml"  # What training writes to its model_dir.


class _ParserFlags(types.SimpleNamespace):
  """What the Model Garden's parser reads from its flags (it also asks `in`)."""

  def __contains__(self, name):
    return hasattr(self, name)


def registered_experiments() -> List[str]:
  """The names of gsa_keras's registered experiments."""
  return [name for name in compat.registered_experiments() if name.startswith("gsa_")]


def load_params(experiment: str, config_files: Sequence[str] = (),
                params_override="", *, tpu: Optional[str] = None,
                tf_data_service: Optional[str] = None,
                task_type: Optional[type] = None) -> cfg.ExperimentConfig:
  """The experiment config with the YAML files and overrides applied, validated.

  Args:
    experiment: A registered experiment name (`--experiment`).
    config_files: YAML files overriding it in order (`--config_file`), e.g. the
      `params.yaml` that training wrote to its model_dir.
    params_override: A YAML/JSON string or file, or a dict, applied last
      (`--params_override`).
    tpu: `--tpu`; None keeps `runtime.tpu` from the files.
    tf_data_service: `--tf_data_service`, or None.
    task_type: If given, the task config class the experiment must have (e.g. image
      classification, for the commands that serve a classifier).

  Returns:
    The locked `ExperimentConfig`.

  Raises:
    ValueError: Unknown experiment, an unknown key in an override, a task of another
      type, or a value the config's `validate` rejects.
    TypeError: A value of the wrong type (the config's `validate`).
    FileNotFoundError: A missing config file.
  """
  for path in config_files:
    if not tf.io.gfile.exists(path):
      raise FileNotFoundError(f"--config_file: no file {path!r}.")
  parser = train_utils.ExperimentParser(_ParserFlags(
      experiment=experiment, config_file=list(config_files),
      params_override=params_override, tpu=tpu, tf_data_service=tf_data_service))
  try:
    params = parser.base_experiment()
  except (LookupError, ValueError):
    raise ValueError(
        f"--experiment: unknown experiment {experiment!r}; the GSA experiments "
        f"are {', '.join(registered_experiments())}.") from None
  try:
    params = parser.parse_config_file(params)
    if tpu is not None:  # Else `runtime.tpu` from the files stays (not set to None).
      params = parser.parse_runtime(params)
    params = parser.parse_data_service(params)
    params = parser.parse_params_override(params)
  except KeyError as e:
    raise ValueError(f"--config_file/--params_override: {e.args[0] if e.args else e}"
                     ) from None
  if task_type is not None and not isinstance(params.task, task_type):
    raise ValueError(f"--experiment: {experiment!r} has a {type(params.task).__name__}, "
                     f"not a {task_type.__name__}.")
  params.validate()
  params.lock()
  return params


def run_directory(checkpoint_path: str) -> str:
  """The training model_dir of `checkpoint_path` (the directory or a prefix's folder)."""
  if tf.io.gfile.isdir(checkpoint_path):
    return checkpoint_path
  return os.path.dirname(checkpoint_path)


def run_config_files(checkpoint_path: str, config_files: Sequence[str] = ()) -> List[str]:
  """The given YAML files, or else the training run's own `params.yaml`.

  `checkpoint_path` may be the run's model_dir or one of its checkpoint prefixes
  (`<model_dir>/ckpt-600`): either way the run's `params.yaml` describes its model.
  """
  if config_files:
    return list(config_files)
  run_params = os.path.join(run_directory(checkpoint_path), RUN_PARAMS_FILE)
  return [run_params] if tf.io.gfile.exists(run_params) else []


def find_checkpoint(path: str, setting: str = CHECKPOINT_FLAG) -> str:
  """The checkpoint prefix that `path` names (see `gsa_keras.checkpoints`)."""
  return checkpoints.find_checkpoint(path, setting)


def restore(model, checkpoint_prefix: str, setting: str = CHECKPOINT_FLAG) -> None:
  """Reads the model's weights from a training checkpoint (optimizer state ignored).

  Raises:
    ValueError: The checkpoint does not fit the model (naming `setting`).
  """
  status = tf.train.Checkpoint(model=model).read(checkpoint_prefix).expect_partial()
  try:
    status.assert_existing_objects_matched()
  except (AssertionError, ValueError) as e:
    summary = str(e).splitlines()[0][:300]
    raise ValueError(
        f"{setting}: {checkpoint_prefix!r} does not match the model of the "
        f"experiment config (check --experiment, --config_file and "
        f"--params_override): {summary}") from e


def build_model(params):
  """The experiment's model (a `tf_keras.Model`), built by its task as training does."""
  return task_factory.get_task(params.task).build_model()


def load_model(params, checkpoint_path: str, setting: str = CHECKPOINT_FLAG):
  """The experiment's model with the weights of `checkpoint_path` (a model_dir or a
  checkpoint prefix), checked to fit."""
  prefix = find_checkpoint(checkpoint_path, setting)
  model = build_model(params)
  restore(model, prefix, setting)
  return model
