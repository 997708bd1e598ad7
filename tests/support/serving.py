"""One exported digits classifier shared by the serving tests, and their helpers.

The model is the one `tests/test_export.py` tests (GSA-ResNet-26 at 32x32, built the
way training builds it, random batch-norm statistics, saved as a training checkpoint),
exported once per test session with the default `max_image_pixels`
(`tests/support/once.py`), however many test modules and xdist workers ask for it:
the session fixtures `serving_export` (a `DigitsExport`) and `serving_tflite` (its
TFLite flatbuffer) of `tests/conftest.py`.
"""

import dataclasses
import functools
import os
import pathlib
import subprocess

import numpy as np
from official.vision.ops import preprocess_ops
import tensorflow as tf

from gsa_keras import runs
from gsa_keras.serving import export_lib
from gsa_keras.serving import module as serving_module
from tests.support import training

EXPERIMENT = "gsa_resnet_digits"
SIGNATURES = ("serving_default", "image_bytes", "tf_example")
SAMPLES = training.REPO / "gsa_keras" / "data" / "samples"
# How closely two float32 computations of this model's logits agree, as a fraction of
# their largest magnitude. The model's random batch-norm statistics give logits of
# about 200, and TensorFlow's CPU kernels may split their sums differently when the
# machine is busy: one test run with another beside it moved them by 1.2e-4 of the
# largest. A preprocessing or batch-norm mistake moves them by far more.
LOGITS_TOLERANCE = 1e-3


@dataclasses.dataclass(frozen=True)
class DigitsExport:
  """The shared export: the run it was made from, and the SavedModel."""
  model_dir: str  # The run's checkpoint and params.yaml.
  checkpoint: str  # The training checkpoint prefix the export was made from.
  export_dir: str  # The SavedModel directory.

  @property
  def params(self):
    """The experiment config the export was made with."""
    return _params(self.model_dir)

  @property
  def model(self):
    """The exported Keras model, restored from `checkpoint` (once per process)."""
    return _model(self.model_dir, self.checkpoint)


@functools.lru_cache(maxsize=None)
def _params(model_dir):
  return export_lib.load_params(EXPERIMENT, [os.path.join(model_dir, "params.yaml")])


@functools.lru_cache(maxsize=None)
def _model(model_dir, checkpoint):
  model = runs.build_model(_params(model_dir))
  runs.restore(model, checkpoint)
  return model


def build_digits_export(directory: pathlib.Path) -> dict:
  """Writes the run (`training.write_digits_run`) and its SavedModel in `directory`;
  returns the `DigitsExport` fields."""
  model_dir = str(directory / "model_dir")
  _, checkpoint = training.write_digits_run(model_dir, EXPERIMENT)
  export_dir = str(directory / "saved_model")
  export_lib.export_saved_model(_params(model_dir), checkpoint, export_dir)
  return dict(model_dir=model_dir, checkpoint=checkpoint, export_dir=export_dir)


def build_tflite(export: DigitsExport, directory: pathlib.Path) -> str:
  """Converts `export`'s model to TFLite in `directory`; returns the file's path."""
  module = serving_module.ClassifierModule(export.params)
  runs.restore(module.model, export.checkpoint)
  path = str(directory / "model.tflite")
  export_lib.export_tflite(module, path)
  return path


def digit_pngs(count: int, seed: int = 0):
  """`count` PNG-encoded 32x32 RGB noise images."""
  rng = np.random.default_rng(seed)
  return [tf.io.encode_png(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).numpy()
          for _ in range(count)]


def normalize(images):
  """The training pipeline's normalisation of uint8 images."""
  return preprocess_ops.normalize_image(
      tf.cast(images, tf.float32), offset=preprocess_ops.MEAN_RGB,
      scale=preprocess_ops.STDDEV_RGB)


def run(args, timeout=600):
  """Runs a command in the repository root (TensorFlow's C++ logging quiet)."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                        env=env, cwd=training.REPO, check=False)


def assert_same_logits(actual, expected):
  """`actual` equals `expected` up to `LOGITS_TOLERANCE` of the largest |expected|."""
  expected = np.asarray(expected)
  np.testing.assert_allclose(actual, expected, rtol=0,
                             atol=LOGITS_TOLERANCE * np.abs(expected).max())
