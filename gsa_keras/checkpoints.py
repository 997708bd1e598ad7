"""Training checkpoints: finding one from what a user passed, checking a run's are whole.

Shared by the entry points that read checkpoints (`train`, `export`, `visualize`, the
Keras models' `weights=`), so they accept the same paths and fail with the same
message, naming their own setting. `drop_corrupt_checkpoints` lets a run whose latest
checkpoint was cut short (a preemption while writing) resume from the one before.
"""

import os
import re
import time
from typing import List, Tuple

from absl import logging
import tensorflow as tf

CORRUPT_DIR = "corrupt_checkpoints"  # Where unreadable checkpoints are moved aside.


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


def check_writable(directory: str, setting: str) -> None:
  """Creates `directory` if needed and writes a probe file in it.

  Raises:
    ValueError: naming `setting`, when it is a file, cannot be created or is not
      writable (no permission, a read-only file system or bucket).
  """
  if tf.io.gfile.exists(directory) and not tf.io.gfile.isdir(directory):
    raise ValueError(f"{setting}: {directory!r} is a file, not a directory.")
  probe = os.path.join(directory, f".gsa_keras_write_probe_{os.getpid()}")
  try:
    tf.io.gfile.makedirs(directory)
    with tf.io.gfile.GFile(probe, "w") as f:
      f.write("probe")
    tf.io.gfile.remove(probe)
  except (tf.errors.OpError, OSError) as e:
    reason = getattr(e, "message", None) or str(e)
    raise ValueError(f"{setting}: cannot write to {directory!r}: "
                     f"{reason.splitlines()[0]}") from None


def unreadable_reason(prefix: str):
  """Why the checkpoint `prefix` cannot be read in full, or None if it can.

  Reads every tensor once: a truncated or overwritten data file fails here, where
  restoring would fail in the middle of a run.
  """
  try:
    reader = tf.train.load_checkpoint(prefix)
    for key in reader.get_variable_to_shape_map():
      reader.get_tensor(key)
  except Exception as e:  # noqa: BLE001
    # A damaged file fails in many ways (DataLossError, OutOfRangeError, IndexError
    # from the reader, ...): any of them means it cannot be restored.
    message = getattr(e, "message", None) or str(e) or type(e).__name__
    return f"{type(e).__name__}: {message.splitlines()[0][:300]}"
  return None


def _checkpoint_files(prefix: str) -> List[str]:
  return tf.io.gfile.glob(f"{prefix}.index") + tf.io.gfile.glob(f"{prefix}.data-*")


def drop_corrupt_checkpoints(model_dir: str) -> List[Tuple[str, str]]:
  """Moves the run's newest unreadable checkpoints aside, so training resumes from the
  newest whole one; the `checkpoint` state file then names that one (or none).

  Each moved checkpoint's files go to `<model_dir>/corrupt_checkpoints/`, and a warning
  names them and the reason. Checkpoints older than the newest whole one are not read.

  Returns:
    [(checkpoint prefix, reason)] of the checkpoints moved aside, newest first.
  """
  state = tf.train.get_checkpoint_state(model_dir)
  if state is None:
    return []
  prefixes = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
  prefixes = [p if os.path.isabs(p) or "://" in p else os.path.join(model_dir, p)
              for p in prefixes]
  dropped = []
  while prefixes:
    reason = unreadable_reason(prefixes[-1])
    if reason is None:
      break
    prefix = prefixes.pop()
    aside = os.path.join(model_dir, CORRUPT_DIR)
    tf.io.gfile.makedirs(aside)
    for path in _checkpoint_files(prefix):
      tf.io.gfile.rename(path, os.path.join(aside, os.path.basename(path)),
                         overwrite=True)
    logging.warning("Checkpoint %s is corrupt (%s); moved its files to %s and "
                    "resuming from %s.", prefix, reason, aside,
                    prefixes[-1] if prefixes else "the start")
    dropped.append((prefix, reason))
  if dropped and prefixes:
    tf.compat.v1.train.update_checkpoint_state(
        model_dir, model_checkpoint_path=prefixes[-1],
        all_model_checkpoint_paths=prefixes,
        all_model_checkpoint_timestamps=[time.time()] * len(prefixes))
  elif dropped:  # None is whole: the run starts over.
    tf.io.gfile.remove(os.path.join(model_dir, "checkpoint"))
  return dropped


def _checkpoint_number(prefix: str):
  match = re.search(r"-(\d+)$", prefix)
  return int(match.group(1)) if match else None


def remove_unfinished_writes(model_dir: str) -> List[str]:
  """Removes what checkpoint writes that did not finish left in `model_dir`.

  A write that failed (a full disk) or was killed leaves its shards' temporary
  directory (`ckpt-6_temp/`), temporary files (`*.tempstate*`, `checkpoint.tmp*`),
  or whole files of a checkpoint the `checkpoint` state file never named: files of a
  checkpoint of the same name numbered above the latest one there (`ckpt-6.*` when
  the latest is `ckpt-4`). None of them is ever read, and they take space a full
  disk needs. Checkpoints that the state file names, older ones and other files are
  left alone.

  Returns:
    The paths removed.
  """
  if not tf.io.gfile.isdir(model_dir):
    return []
  state = tf.train.get_checkpoint_state(model_dir)
  latest_name = os.path.basename(state.model_checkpoint_path) if state else ""
  latest = _checkpoint_number(latest_name)
  base = re.sub(r"-\d+$", "", latest_name)
  named = {os.path.basename(p) for p in (state.all_model_checkpoint_paths if state
                                         else [])}
  removed = []
  for name in tf.io.gfile.listdir(model_dir):
    name = name.rstrip("/")
    path = os.path.join(model_dir, name)
    prefix = re.sub(r"(\.index|\.data-\d+-of-\d+)$", "", name)
    unfinished = (
        (re.fullmatch(r".+-\d+_temp", name) and tf.io.gfile.isdir(path))
        or ".tempstate" in name or name.startswith("checkpoint.tmp")
        or (latest is not None and prefix != name and prefix not in named
            and re.sub(r"-\d+$", "", prefix) == base
            and (_checkpoint_number(prefix) or 0) > latest))
    if not unfinished:
      continue
    if tf.io.gfile.isdir(path):
      tf.io.gfile.rmtree(path)
    else:
      tf.io.gfile.remove(path)
    removed.append(path)
  if removed:
    logging.warning("Removed what unfinished checkpoint writes left in %s: %s",
                    model_dir, ", ".join(sorted(removed)))
  return sorted(removed)
