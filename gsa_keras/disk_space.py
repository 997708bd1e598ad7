"""Disk space for a training run: checking it before training, naming a full disk after.

A checkpoint (or summary) write that runs out of space fails deep inside TensorFlow
with `ResourceExhaustedError: ...; No space left on device`. `gsa_keras.train` turns
that into `DiskFullError`, one line that names the model_dir, what was being written,
how much it needed and how much is free (`describe_full_disk`), after removing what the
failed write left behind (`checkpoints.remove_unfinished_writes`). The last whole
checkpoint stays the latest, so the same command resumes once space is freed.

Before training, `space_warning` compares the free space with what the run's
checkpoints will take (`max_to_keep` of them, plus the one being written).
"""

import errno
import math
import os
import re
import shutil
from typing import Iterable, Optional

import tensorflow as tf

# What the C library says for a full disk (ENOSPC) or an exhausted quota (EDQUOT);
# TensorFlow reports both as ResourceExhaustedError with the same text.
_FULL_DISK_TEXT = ("No space left on device", "Disk quota exceeded")
_FULL_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT)

# Slot variables per trainable weight of each Model Garden optimizer type (momentum,
# second moments, ...). Types not listed are counted with 2, as Adam.
_OPTIMIZER_SLOTS = {"sgd": 1, "sgd_experimental": 1, "lars": 1, "adagrad": 1,
                    "rmsprop": 2}


class DiskFullError(RuntimeError):
  """A write into the model_dir failed for lack of space (or quota); the message is
  one line for the user."""


def is_local(path: str) -> bool:
  """Whether `path` is on a local file system (not gs://, s3://, ...)."""
  return "://" not in path


def free_bytes(directory: str) -> Optional[int]:
  """Bytes free for this user at `directory` (or its nearest existing parent); None
  for a remote path or when the file system does not say."""
  if not is_local(directory):
    return None
  path = os.path.abspath(directory)
  while not os.path.exists(path) and os.path.dirname(path) != path:
    path = os.path.dirname(path)
  try:
    return shutil.disk_usage(path).free
  except OSError:
    return None


def format_bytes(size: Optional[float]) -> str:
  """`size` in a unit that suits it: '512 B', '3.4 kB', '67.1 MB', '1.20 GB'."""
  if size is None:
    return "an unknown amount"
  for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
    if size >= scale:
      digits = 2 if unit == "GB" else 1
      return f"{size / scale:.{digits}f} {unit}"
  return f"{int(size)} B"


def is_disk_full(error: BaseException) -> bool:
  """Whether `error` is a write that failed for lack of space or quota."""
  if isinstance(error, OSError) and error.errno in _FULL_DISK_ERRNOS:
    return True
  if isinstance(error, tf.errors.ResourceExhaustedError):
    return any(text in (error.message or "") for text in _FULL_DISK_TEXT)
  return False


def checkpoint_size(prefix: str) -> int:
  """Bytes of the checkpoint `prefix` on disk (its index and data files)."""
  return sum(tf.io.gfile.stat(path).length for path in
             tf.io.gfile.glob(f"{prefix}.index") + tf.io.gfile.glob(f"{prefix}.data-*"))


def _variables_bytes(variables: Iterable[tf.Variable]) -> int:
  return sum(v.shape.num_elements() * v.dtype.size for v in variables)


def optimizer_slots(optimizer_config) -> int:
  """Slot variables per trainable weight that `trainer.optimizer_config` will make."""
  optimizer = optimizer_config.optimizer
  kind = optimizer.type
  slots = _OPTIMIZER_SLOTS.get(kind, 2)
  settings = getattr(optimizer, kind, None)
  if kind in ("sgd", "sgd_experimental") and not getattr(settings, "momentum", 0.0):
    slots = 0
  return slots


def estimated_checkpoint_size(model, optimizer_config) -> int:
  """Bytes of a training checkpoint of `model`: its weights, and the optimizer's slot
  variables for each trainable weight (`optimizer_slots`), before the optimizer has
  made them."""
  slots = optimizer_slots(optimizer_config)
  return (_variables_bytes(model.weights)
          + slots * _variables_bytes(model.trainable_weights))


def space_warning(model_dir: str, checkpoint_bytes: int, max_to_keep: int,
                  checkpoints_kept: int) -> Optional[str]:
  """One line if `model_dir` lacks room for the run's checkpoints, else None.

  The run holds up to `max_to_keep` checkpoints and writes the next one before it
  deletes the oldest: `max_to_keep + 1` of `checkpoint_bytes` each at the peak, of
  which `checkpoints_kept` (those already in `model_dir`) take no further space.

  A warning, not an error: the figure is a moment's reading and a ceiling. Other
  processes free and take space on a shared disk, a quota may not show in the free
  space, and a run shorter than `max_to_keep + 1` checkpoints never needs it all. And
  if the disk does fill up, training now stops cleanly (`DiskFullError`: the last
  whole checkpoint kept, the rerun resumes), so refusing to start would stop runs
  that fit without protecting anything more.
  """
  free = free_bytes(model_dir)
  if free is None:
    return None
  peak = max_to_keep + 1
  needed = max(1, peak - checkpoints_kept) * checkpoint_bytes
  if free >= needed:
    return None
  room = math.floor(free / checkpoint_bytes) if checkpoint_bytes else 0
  return (f"--model_dir={model_dir}: {format_bytes(free)} free, but the run's "
          f"checkpoints need {format_bytes(needed)} more (max_to_keep={max_to_keep} "
          f"+ 1 being written, {format_bytes(checkpoint_bytes)} each"
          + (f", {checkpoints_kept} already there" if checkpoints_kept else "")
          + f"); room for {room}. Training may stop when the disk is full: free "
          "space, lower trainer.max_to_keep or use another --model_dir.")


def _what_was_written(message: str, model_dir: str) -> str:
  """What a failed write's error message says was being written."""
  paths = re.findall(re.escape(model_dir.rstrip("/")) + r"[^\s;,'\"]*", message)
  path = paths[0] if paths else ""
  checkpoint = re.search(r"([^/\s]+-\d+)(?:_temp|\.index|\.data-)", path)
  if checkpoint or "SaveV2" in message or "MergeV2Checkpoints" in message:
    return f"checkpoint {checkpoint.group(1)}" if checkpoint else "a checkpoint"
  if os.path.basename(path).startswith("checkpoint"):
    return "the checkpoint state file (`checkpoint`)"
  if "tfevents" in path or "Summary" in message:
    relative = os.path.relpath(path, model_dir) if path else ""
    return "a summary" + (f" ({relative})" if relative else "")
  if path:
    return os.path.relpath(path, model_dir)
  return "a file"


def describe_full_disk(error: BaseException, model_dir: str,
                       checkpoint_bytes: Optional[int], max_to_keep: int,
                       latest: Optional[str]) -> str:
  """The one line for a write into `model_dir` that failed for lack of space.

  Args:
    error: The failed write's error (`is_disk_full`).
    model_dir: The run's directory.
    checkpoint_bytes: The size of one checkpoint (None if unknown).
    max_to_keep: `trainer.max_to_keep`.
    latest: The latest whole checkpoint after the failure, or None.
  """
  message = getattr(error, "message", None) or str(error)
  what = _what_was_written(message, model_dir)
  reason = next((text for text in _FULL_DISK_TEXT if text in message), "disk full")
  if what.startswith("checkpoint") or what == "a checkpoint":
    needed = f"it needed {format_bytes(checkpoint_bytes)}"
  else:
    needed = (f"the run needs about {format_bytes(checkpoint_bytes)} for each further "
              "checkpoint")
  where = (f"the latest checkpoint is still {os.path.basename(latest)}" if latest
           else "there is no checkpoint yet")
  total = (f" ({max_to_keep} kept + 1 being written: "
           f"{format_bytes((max_to_keep + 1) * checkpoint_bytes)})"
           if checkpoint_bytes else "")
  return (f"--model_dir={model_dir}: {reason} while writing {what}: {needed}, "
          f"{format_bytes(free_bytes(model_dir))} is free; {where} and the failed "
          f"write's temporary files are removed. Free space{total} and run the same "
          "command again to resume.")
