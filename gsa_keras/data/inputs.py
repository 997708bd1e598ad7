"""Pre-flight for a run's input files: write the built-in digits, then check paths.

Runs before any model or strategy is built, so a wrong path fails in seconds with the
config field and the path in the message, instead of deep inside `tf.data`.
"""

import os
from typing import List, Sequence

import tensorflow as tf

from gsa_keras.data import digits

# Which data splits each Model Garden `--mode` reads.
_SPLITS_BY_MODE = {
    "train": ("train_data",),
    "eval": ("validation_data",),
    "continuous_eval": ("validation_data",),
    "train_and_eval": ("train_data", "validation_data"),
    "train_and_post_eval": ("train_data", "validation_data"),
}


def splits_for_mode(mode: str) -> Sequence[str]:
  if mode not in _SPLITS_BY_MODE:
    raise ValueError(f"`--mode` must be one of {sorted(_SPLITS_BY_MODE)}, got "
                     f"{mode!r}.")
  return _SPLITS_BY_MODE[mode]


def file_patterns(input_path) -> List[str]:
  """The file patterns of a `DataConfig.input_path` (comma-separated or a list)."""
  if isinstance(input_path, str):
    return [p.strip() for p in input_path.split(",") if p.strip()]
  if isinstance(input_path, (list, tuple)):
    return [p for item in input_path for p in file_patterns(item)]
  return []  # A dict of named inputs (`combine_fn`): left to the reader.


def _is_builtin_digits(pattern: str) -> bool:
  data_dir = digits.default_dir()
  return any(os.path.normpath(pattern) == digits.file_path(data_dir, split)
             for split in digits.SPLITS)


def prepare(task, mode: str) -> None:
  """Writes the digits TFRecords if `task` reads their default location, then raises
  FileNotFoundError naming the field if any input pattern matches no file."""
  for split in splits_for_mode(mode):
    data = getattr(task, split)
    for pattern in file_patterns(data.input_path):
      if _is_builtin_digits(pattern):
        digits.write_tfrecords(digits.default_dir())
      if not tf.io.gfile.glob(pattern):
        raise FileNotFoundError(
            f"`task.{split}.input_path`: no file matches {pattern!r}.")
