"""Exports a trained classifier: a SavedModel with every serving signature, and TFLite.

The steps of `python -m gsa_keras.export`, usable from Python:

  params = load_params("gsa_resnet_digits", ["/tmp/gsa_digits/params.yaml"])
  module = export_saved_model(params, runs.find_checkpoint("/tmp/gsa_digits"),
                              export_dir, precision="bfloat16")
  export_tflite(module, "/tmp/gsa_digits.tflite")  # Always float32.

Every check that can fail on the user's input (experiment name, files, checkpoint)
runs before the model is built and raises an error naming the flag and the path.

Both exports are all or nothing (`staged`): each is written under a temporary name
beside its target and moved there only once complete, so a failed export (a full
disk, an interrupt, a kill) never leaves a partial SavedModel or flatbuffer where a
server would load it, and an existing export is replaced only by a complete one.
"""

import contextlib
import ctypes
import errno
import os
import re
import shutil
import uuid
from typing import Iterator, Optional, Sequence

from absl import logging

import tensorflow as tf

from official.core import config_definitions as cfg
from official.vision.configs import image_classification as ic_config
from official.vision.serving import export_saved_model_lib

from gsa_keras import compat
from gsa_keras import runs
from gsa_keras.serving import module as serving_module


def load_params(experiment: str, config_files: Sequence[str] = (),
                params_override="") -> cfg.ExperimentConfig:
  """`gsa_keras.runs.load_params` for an image classification experiment, the kind
  of experiment this module exports."""
  return runs.load_params(experiment, config_files, params_override,
                          task_type=ic_config.ImageClassificationTask)


# A staged export's name beside its target `NAME`: `.NAME.tmp-export-<pid>-<random>`,
# and a replaced export's while it is swapped out, `.NAME.old-export-<pid>-<random>`.
# Hidden and not numeric, so TensorFlow Serving, which loads the numbered versions
# under a model's base path, never takes one for a version.
_STAGED = re.compile(r"\.(?P<name>.+)\.(?P<kind>tmp|old)-export-(?P<pid>\d+)-[0-9a-f]+")


def _sibling(target: str, kind: str) -> str:
  parent, name = os.path.split(os.path.normpath(target))
  return os.path.join(parent, f".{name}.{kind}-export-{os.getpid()}-"
                      f"{uuid.uuid4().hex[:8]}")


def _is_local(path: str) -> bool:
  return "://" not in path


def _remove(path: str) -> None:
  if tf.io.gfile.isdir(path):
    tf.io.gfile.rmtree(path)
  elif tf.io.gfile.exists(path):
    tf.io.gfile.remove(path)


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def remove_stale_staging(target: str) -> None:
  """Removes what exports to `target` killed mid-way left beside it (their process
  is gone), first moving back a replaced export that a kill left swapped out, if
  `target` itself is missing. Local paths only."""
  parent, name = os.path.split(os.path.normpath(target))
  parent = parent or "."
  if not _is_local(target) or not os.path.isdir(parent):
    return
  for entry in sorted(os.listdir(parent)):
    match = _STAGED.fullmatch(entry)
    if not match or match["name"] != name or _alive(int(match["pid"])):
      continue
    path = os.path.join(parent, entry)
    if match["kind"] == "old" and not os.path.lexists(target):
      os.rename(path, target)
      logging.warning("Restored %s from %s, where an interrupted export left it.",
                      target, path)
      continue
    logging.warning("Removing %s, left by an interrupted export to %s.", path, target)
    _remove(path)


def _exchange(first: str, second: str) -> bool:
  """Swaps two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where the
  system or file system cannot."""
  try:
    renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
  except (AttributeError, OSError):
    return False
  at_fdcwd, rename_exchange = -100, 2
  if renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second),
               rename_exchange) == 0:
    return True
  code = ctypes.get_errno()
  if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
    return False
  raise OSError(code, os.strerror(code), first, None, second)


def _move_into_place(staged_path: str, target: str) -> None:
  """Puts the complete `staged_path` at `target`, replacing what is there.

  Locally, a file replaces a file in one rename, and a directory takes the place of
  an existing one in one exchange (then the old one is deleted); where the system
  cannot exchange, the old one is renamed aside first, and put back by the next
  export (`remove_stale_staging`) if a kill comes between the two renames. On object
  stores (gs://, ...) renames copy, and the target is replaced object by object.
  """
  if not _is_local(target):
    _remove(target)
    tf.io.gfile.rename(staged_path, target)
    return
  if not os.path.lexists(target) or not os.path.isdir(staged_path):
    os.replace(staged_path, target)
    return
  if _exchange(staged_path, target):
    shutil.rmtree(staged_path)  # Now the old export.
    return
  old = _sibling(target, "old")
  os.rename(target, old)
  os.rename(staged_path, target)
  _remove(old)


def check_target(target: str, setting: str, directory: bool) -> None:
  """Checks that an export may be written to `target`, which it will replace.

  Args:
    target: The export's path.
    setting: The flag it came from, named in the error.
    directory: True for a SavedModel (a directory), False for a file.

  Raises:
    ValueError: `target` is a directory where a file is wanted or the reverse, or
      an existing directory that is neither empty nor a SavedModel (replacing it
      would delete what else it holds).
  """
  if not tf.io.gfile.exists(target):
    return
  is_dir = tf.io.gfile.isdir(target)
  if directory and not is_dir:
    raise ValueError(f"{setting}: {target!r} is a file, not a SavedModel directory.")
  if not directory and is_dir:
    raise ValueError(f"{setting}: {target!r} is a directory; pass a file path.")
  if directory and tf.io.gfile.listdir(target) and not tf.io.gfile.exists(
      os.path.join(target, "saved_model.pb")):
    raise ValueError(
        f"{setting}: {target!r} exists and holds no SavedModel (no saved_model.pb); "
        "an export replaces its directory whole, so pass a new directory or an "
        "earlier export.")


@contextlib.contextmanager
def staged(target: str) -> Iterator[str]:
  """Yields a temporary path beside `target` to write an export to; when the block
  completes, the export replaces `target`, and if it fails, it is removed.

  A process killed in the block leaves the temporary path (hidden, `.NAME.tmp-export-
  <pid>-...`), never a partial `target`; the next export to `target` removes it
  (`remove_stale_staging`).
  """
  parent = os.path.dirname(os.path.normpath(target))
  if parent:
    tf.io.gfile.makedirs(parent)
  remove_stale_staging(target)
  path = _sibling(target, "tmp")
  try:
    yield path
    _move_into_place(path, target)
  except BaseException:
    _remove(path)
    raise


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
      Written beside it under a temporary name, then put in its place whole
      (`staged`): an earlier export there is replaced only by a complete one.
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
      built), an `export_dir` that `check_target` refuses, or a checkpoint that
      does not fit the model.
  """
  check_target(export_dir, "export_dir", directory=True)
  module = serving_module.ClassifierModule(params, batch_size=batch_size,
                                           max_image_pixels=max_image_pixels,
                                           precision=precision)
  runs.restore(module.model, checkpoint_prefix)
  # The export's params.yaml says what the SavedModel computes in.
  recorded = params.replace(runtime={"mixed_precision_dtype": module.precision})
  # Exports are used through their signatures: no trace of every layer's call (which
  # tf_keras adds for reloading the model as Keras), which cost time: on the digits
  # model (one measurement) the SavedModel export took 20 s instead of 45, and the
  # TFLite conversion 14 s instead of 47.
  with compat.without_keras_layer_traces(), staged(export_dir) as staged_dir:
    export_saved_model_lib.export_inference_graph(
        input_type="image_tensor", batch_size=batch_size,
        input_image_size=list(params.task.model.input_size[:2]), params=recorded,
        checkpoint_path=None, export_dir=staged_dir, export_module=module,
        function_keys=dict(serving_module.SIGNATURES))
  return module


def export_tflite(module: serving_module.ClassifierModule, tflite_path: str) -> None:
  """Writes a float32 TFLite flatbuffer of `serving_default` (builtin ops only).

  Its signature `serving_default` takes `inputs`, uint8 [batch, height, width, 3] at
  the model's input size (batch: the module's batch size, else 1), preprocesses them
  inside as the SavedModel does and returns `logits` and `probs`. TFLite's builtin
  kernels (XNNPACK) compute in float32, so a bfloat16 module is converted through a
  float32 copy of its model with the same weights. The file is written beside
  `tflite_path` under a temporary name and renamed when complete (`staged`).

  Raises:
    ValueError: `tflite_path` is a directory.
  """
  check_target(tflite_path, "tflite_path", directory=False)
  module = module.with_precision("float32")
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [module.tflite_function()], module)
  with compat.without_keras_layer_traces():  # The converter saves `module` first.
    flatbuffer = converter.convert()
  with staged(tflite_path) as staged_file:
    with tf.io.gfile.GFile(staged_file, "wb") as f:
      f.write(flatbuffer)
