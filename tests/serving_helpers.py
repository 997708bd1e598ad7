"""One exported digits classifier shared by the serving tests.

The model is the one `tests/test_export.py` tests (GSA-ResNet-26 at 32x32, built the
way training builds it, random batch-norm statistics, saved as a training checkpoint),
exported once per test session with the default `max_image_pixels`, however many test
modules ask for it.
"""

import atexit
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from gsa_keras.serving import export_lib
from tests import train_helpers

EXPERIMENT = "gsa_resnet_digits"
# How closely two float32 computations of this model's logits agree, as a fraction of
# their largest magnitude. The model's random batch-norm statistics give logits of
# about 200, and TensorFlow's CPU kernels may split their sums differently when the
# machine is busy: one test run with another beside it moved them by 1.2e-4 of the
# largest. A preprocessing or batch-norm mistake moves them by far more.
LOGITS_TOLERANCE = 1e-3
_EXPORT = {}


def digits_export() -> str:
  """The SavedModel directory of the digits classifier (exported on first use)."""
  if "dir" not in _EXPORT:
    root = tempfile.mkdtemp(prefix="gsa_serving_")
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    model_dir = os.path.join(root, "model_dir")
    model, prefix = train_helpers.write_digits_run(model_dir, EXPERIMENT)
    params = export_lib.load_params(
        EXPERIMENT, [os.path.join(model_dir, "params.yaml")])
    export_dir = os.path.join(root, "saved_model")
    module = export_lib.export_saved_model(params, prefix, export_dir)
    _EXPORT.update(root=root, dir=export_dir, params=params, model=model,
                   checkpoint=prefix, model_dir=model_dir, module=module)
  return _EXPORT["dir"]


def model_dir() -> str:
  """The run's model_dir (its checkpoint and params.yaml)."""
  digits_export()
  return _EXPORT["model_dir"]


def tflite_path() -> str:
  """The export's TFLite flatbuffer (converted on first use)."""
  if "tflite" not in _EXPORT:
    path = os.path.join(os.path.dirname(digits_export()), "model.tflite")
    export_lib.export_tflite(_EXPORT["module"], path)
    _EXPORT["tflite"] = path
  return _EXPORT["tflite"]


def checkpoint():
  """The training checkpoint prefix the export was made from."""
  digits_export()
  return _EXPORT["checkpoint"]


def params():
  """The experiment config the export was made with."""
  digits_export()
  return _EXPORT["params"]


def keras_model():
  """The exported Keras model."""
  digits_export()
  return _EXPORT["model"]


def digit_pngs(count: int, seed: int = 0):
  """`count` PNG-encoded 32x32 RGB noise images."""
  rng = np.random.default_rng(seed)
  return [tf.io.encode_png(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).numpy()
          for _ in range(count)]


def assert_same_logits(actual, expected):
  """`actual` equals `expected` up to `LOGITS_TOLERANCE` of the largest |expected|."""
  expected = np.asarray(expected)
  np.testing.assert_allclose(actual, expected, rtol=0,
                             atol=LOGITS_TOLERANCE * np.abs(expected).max())
