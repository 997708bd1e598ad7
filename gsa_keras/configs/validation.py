"""Config checks the Model Garden leaves out: value types, a data source per split,
and no data field that nothing reads.

`hyperparams.Config.override(..., is_strict=True)` rejects unknown keys but stores any
value, so `train_steps: many` would only fail deep inside training. These checks run
on the finished config (`ExperimentConfig.validate`) and name the offending field.
"""

import collections.abc
import dataclasses
import types
import typing
from typing import Any, Union

from official.modeling.hyperparams import base_config

_SEQUENCES = (list, tuple, collections.abc.Sequence)
_DATA_SPLITS = ("train_data", "validation_data")
# Image classification data fields that no code of the task reads
# (`gsa_keras.tasks.image_classification`): the pre-`aug_type` spellings of the
# augmentation policy, and a decoder choice the classification task does not offer.
UNREAD_DATA_FIELDS = ("aug_policy", "randaug_magnitude", "decoder")


def _describe(annotation) -> str:
  if isinstance(annotation, type):
    return annotation.__name__
  return str(annotation).replace("typing.", "")


def _matches(value: Any, annotation) -> bool:
  """Whether `value` fits `annotation`; unknown annotations accept anything."""
  origin = typing.get_origin(annotation)
  args = typing.get_args(annotation)
  if annotation is Any:
    return True
  if origin in (Union, types.UnionType):
    return any(_matches(value, arg) for arg in args)
  if annotation is type(None):
    return value is None
  if origin in _SEQUENCES:
    if not isinstance(value, (list, tuple)):
      return False
    if not args:
      return True
    if origin is tuple and len(args) == len(value) and Ellipsis not in args:
      return all(_matches(v, arg) for v, arg in zip(value, args))
    return all(_matches(v, args[0]) for v in value)
  if not isinstance(annotation, type):
    return True
  if annotation is bool:
    return isinstance(value, bool)
  if annotation is int:
    return isinstance(value, int) and not isinstance(value, bool)
  if annotation is float:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
  if annotation in (list, tuple):
    return isinstance(value, (list, tuple))
  if annotation in (str, bytes) or issubclass(annotation, base_config.Config):
    return isinstance(value, annotation)
  return True


def check_types(config: base_config.Config, path: str = "") -> None:
  """Raises TypeError naming the first field whose value does not fit its type.

  A field whose default is None also accepts None (the Model Garden often leaves
  such fields un-annotated as Optional).
  """
  hints = typing.get_type_hints(type(config))
  for field in dataclasses.fields(config):
    annotation = hints[field.name]
    value = getattr(config, field.name)
    field_path = f"{path}{field.name}"
    default_is_none = field.default is None
    if value is None and default_is_none:
      continue
    if not _matches(value, annotation):
      raise TypeError(f"`{field_path}` must be {_describe(annotation)}, got "
                      f"{value!r} ({type(value).__name__}).")
    if isinstance(value, base_config.Config):
      check_types(value, f"{field_path}.")
    elif isinstance(value, (list, tuple)):
      for index, item in enumerate(value):
        if isinstance(item, base_config.Config):
          check_types(item, f"{field_path}[{index}].")


def check_data_sources(task: base_config.Config, prefix: str = "task.") -> None:
  """Raises ValueError unless each split reads exactly one of files or TFDS."""
  for split in _DATA_SPLITS:
    data = getattr(task, split)
    name = f"{prefix}{split}"
    if not data.input_path and not data.tfds_name:
      raise ValueError(
          f"`{name}` has no data: set `{name}.input_path` (TFRecord files, e.g. "
          f"gs://bucket/imagenet/train-*) or `{name}.tfds_name` (e.g. imagenet2012).")
    if data.input_path and data.tfds_name:
      raise ValueError(
          f"`{name}` sets both `input_path` ({data.input_path!r}) and `tfds_name` "
          f"({data.tfds_name!r}); keep one (set the other to '').")
    if data.tfds_name and not data.tfds_split:
      raise ValueError(f"`{name}.tfds_split` is empty; TFDS dataset "
                       f"{data.tfds_name!r} needs a split (e.g. train).")
    if data.global_batch_size <= 0:
      raise ValueError(f"`{name}.global_batch_size` must be positive, got "
                       f"{data.global_batch_size}.")


def _plain(value: Any) -> Any:
  return value.as_dict() if isinstance(value, base_config.Config) else value


def check_read_fields(task: base_config.Config, prefix: str = "task.") -> None:
  """Raises ValueError if a split's data config sets a field that nothing reads
  (`UNREAD_DATA_FIELDS`): a setting that would silently have no effect."""
  for split in _DATA_SPLITS:
    data = getattr(task, split)
    defaults = type(data)()
    for name in UNREAD_DATA_FIELDS:
      if not hasattr(data, name):
        continue
      if _plain(getattr(data, name)) != _plain(getattr(defaults, name)):
        raise ValueError(
            f"`{prefix}{split}.{name}` is set to {_plain(getattr(data, name))!r}, but "
            "the image classification task reads none of "
            f"{', '.join(UNREAD_DATA_FIELDS)}: use `aug_type` for augmentation "
            "policies, or remove the field.")
