"""Finding a training checkpoint from what a user passed: a run's directory or a prefix.

Shared by the entry points that read checkpoints (`train`, `export`, `visualize`), so
they accept the same paths and fail with the same message, naming their own setting.
"""

import tensorflow as tf


def find_checkpoint(path: str, setting: str) -> str:
  """The checkpoint prefix `path` names: itself, or a directory's latest checkpoint.

  Args:
    path: A directory written by training (its `checkpoint` state file names the
      latest checkpoint) or a checkpoint prefix such as `<model_dir>/ckpt-600`.
    setting: The flag or config field `path` came from, named in the error.

  Raises:
    FileNotFoundError: No checkpoint there.
  """
  if tf.io.gfile.isdir(path):
    latest = tf.train.latest_checkpoint(path)
    if latest is None:
      raise FileNotFoundError(
          f"{setting}: directory {path!r} holds no checkpoint (no `checkpoint` state "
          "file); pass a training model_dir or a prefix such as <model_dir>/ckpt-600.")
    return latest
  if not tf.io.gfile.exists(f"{path}.index"):
    raise FileNotFoundError(f"{setting}: no checkpoint {path!r} (no file {path}.index).")
  return path
