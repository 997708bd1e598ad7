"""SAN classifiers export like GSA-ResNet: SavedModel and TFLite with the Keras logits.

A SAN10 classifier (each operator) of the `san_imagenet` experiment at 128x128, the
smallest input SAN's footprints allow, with 10 classes, is built the way training
builds it, given random batch-norm statistics (so evaluation mode differs from
training mode), saved as a training checkpoint and exported with the library's export
(`gsa_keras.serving.export_lib`). Its `serving_default` must give the Keras model's
evaluation-mode logits, and its TFLite conversion (builtin ops only: the reflection
padding's index gathers, the patches' gathers and the einsums all convert) the
SavedModel's.
"""

import numpy as np
import pytest
import tensorflow as tf

from ai_edge_litert import interpreter as litert

from gsa_keras import runs
from gsa_keras.serving import export_lib
from tests.support import serving
from tests.support import training

SIZE = 128


def _params(operator):
  """`san_imagenet` with SAN10 (`operator`) at 128x128, 10 classes, and no evaluation
  crop, so that the served logits of a 128x128 image are the model's of that image."""
  return runs.load_params("san_imagenet", params_override={"task": {
      "model": {"num_classes": 10, "input_size": [SIZE, SIZE, 3],
                "backbone": {"type": "san", "san": {"depth": 10, "operator": operator}}},
      "validation_data": {"aug_crop": False}}})


@pytest.fixture(scope="module", params=["pairwise", "patchwise"])
def san_export(request, tmp_path_factory):
  """The operator's classifier (randomised batch norms), its checkpoint and exports."""
  directory = tmp_path_factory.mktemp(f"san_{request.param}_export")
  params = _params(request.param)
  model = runs.build_model(params)
  training.randomize_batch_norm(model)
  prefix = tf.train.Checkpoint(model=model).save(str(directory / "ckpt"))
  export_dir = str(directory / "saved_model")
  module = export_lib.export_saved_model(params, prefix, export_dir)
  tflite_path = str(directory / "model.tflite")
  export_lib.export_tflite(module, tflite_path)
  return dict(model=model, export_dir=export_dir, tflite_path=tflite_path)


@pytest.fixture(scope="module")
def images():
  """Two noise images and two smooth ones, uint8 [4, 128, 128, 3]."""
  rng = np.random.default_rng(3)
  noise = rng.integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
  ramp = np.linspace(0, 255, SIZE, dtype=np.float32)
  smooth = np.stack([np.broadcast_to(ramp[:, None, None], (SIZE, SIZE, 3)),
                     np.broadcast_to(ramp[None, :, None], (SIZE, SIZE, 3))])
  return np.concatenate([noise, smooth.astype(np.uint8)])


@pytest.mark.slow
def test_saved_model_gives_the_keras_logits(san_export, images):
  expected = san_export["model"](serving.normalize(images), training=False).numpy()
  loaded = tf.saved_model.load(san_export["export_dir"])
  outputs = loaded.signatures["serving_default"](inputs=tf.constant(images))
  serving.assert_same_logits(outputs["logits"].numpy(), expected)
  # The images' logits differ far beyond the tolerance: parity is not vacuous.
  spread = np.ptp(expected, axis=0).max()
  assert spread > 20 * serving.LOGITS_TOLERANCE * np.abs(expected).max()


@pytest.mark.slow
def test_tflite_gives_the_saved_models_logits(san_export, images):
  loaded = tf.saved_model.load(san_export["export_dir"])
  interpreter = litert.Interpreter(model_path=san_export["tflite_path"])
  runner = interpreter.get_signature_runner("serving_default")
  for image in images:
    expected = loaded.signatures["serving_default"](
        inputs=tf.constant(image[None]))["logits"].numpy()
    serving.assert_same_logits(runner(inputs=image[None])["logits"], expected)
