"""Layer users' exports: any Keras model with GSA layers serves without gsa_keras.

Keras 3 models export with `model.export(path)`, tf_keras models with
`tf.saved_model.save(model, path)`. A fresh Python process, in which importing
gsa_keras fails, loads both with `tf.saved_model.load` and must reproduce the
outputs of the Keras models in inference mode; the Keras 3 export also converts to
TFLite (builtin ops) with the same outputs.
"""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from ai_edge_litert import interpreter as litert
from gsa_keras.layers import keras3 as keras3_layers
from gsa_keras.layers import tf_keras as tf_keras_layers

SHAPE = (8, 8, 16)
NUM_CLASSES = 5

# Runs in a fresh interpreter: argv = inputs.npz, keras3 dir, tf_keras dir, outputs.npz.
_LOAD_WITHOUT_GSA_KERAS = textwrap.dedent("""
    import sys

    class NoGSAKeras:
      def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "gsa_keras":
          raise ImportError(f"loading a SavedModel imported {name}")
        return None

    sys.meta_path.insert(0, NoGSAKeras())
    import numpy as np
    import tensorflow as tf

    inputs = tf.constant(np.load(sys.argv[1])["inputs"])
    keras3_export = tf.saved_model.load(sys.argv[2])
    tf_keras_export = tf.saved_model.load(sys.argv[3])
    keras3_outputs = keras3_export.serve(inputs)
    (tf_keras_outputs,) = tf_keras_export.signatures["serving_default"](inputs).values()
    assert not any(name.split(".")[0] == "gsa_keras" for name in sys.modules)
    np.savez(sys.argv[4], keras3=keras3_outputs.numpy(),
             tf_keras=tf_keras_outputs.numpy())
""")


def _classifier(keras_module, layers):
  """Every kind of GSA layer (full, a Table 4 ablation, local, axial), then a head."""
  inputs = keras_module.Input(SHAPE)
  branches = [
      layers.GlobalSelfAttention(16, num_heads=4)(inputs),
      layers.GlobalSelfAttention.from_variant("content_column", 16, num_heads=4)(inputs),
      layers.GlobalSelfAttention(16, num_heads=2, max_relative_shift=2)(inputs),
      layers.AxialContentPositionalAttention(16, num_heads=4)(inputs),
  ]
  x = keras_module.layers.Concatenate()(branches)
  x = keras_module.layers.BatchNormalization()(x)
  x = keras_module.layers.GlobalAveragePooling2D()(x)
  outputs = keras_module.layers.Dense(NUM_CLASSES, name="logits")(x)
  model = keras_module.Model(inputs, outputs)
  rng = np.random.default_rng(0)
  for weight in model.weights:  # Batch-norm statistics unlike a fresh layer's.
    name = weight.path if hasattr(weight, "path") else weight.name
    if "moving_mean" in name:
      weight.assign(rng.normal(0.0, 0.5, weight.shape))
    elif "moving_variance" in name:
      weight.assign(rng.uniform(0.5, 2.0, weight.shape))
  return model


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
  """Both flavours' models, their exports and the inputs (batch 3)."""
  root = tmp_path_factory.mktemp("layer_exports")
  inputs = np.random.default_rng(1).normal(size=(3,) + SHAPE).astype(np.float32)
  keras3_model = _classifier(keras, keras3_layers)
  tf_keras_model = _classifier(tf_keras, tf_keras_layers)
  keras3_dir, tf_keras_dir = str(root / "keras3"), str(root / "tf_keras")
  keras3_model.export(keras3_dir, verbose=False)
  tf.saved_model.save(tf_keras_model, tf_keras_dir)
  return dict(
      inputs=inputs, root=root, keras3_dir=keras3_dir, tf_keras_dir=tf_keras_dir,
      keras3=np.asarray(keras3_model(inputs, training=False)),
      tf_keras=tf_keras_model(inputs, training=False).numpy())


def test_exports_load_without_gsa_keras_and_match(exports):
  root = exports["root"]
  np.savez(root / "inputs.npz", inputs=exports["inputs"])
  result = subprocess.run(
      [sys.executable, "-c", _LOAD_WITHOUT_GSA_KERAS, str(root / "inputs.npz"),
       exports["keras3_dir"], exports["tf_keras_dir"], str(root / "outputs.npz")],
      capture_output=True, text=True, timeout=300, cwd=str(root), check=False,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert result.returncode == 0, result.stderr
  served = np.load(root / "outputs.npz")
  for flavour in ("keras3", "tf_keras"):
    assert served[flavour].shape == (3, NUM_CLASSES)
    np.testing.assert_allclose(served[flavour], exports[flavour], rtol=0, atol=1e-5)


def test_keras3_export_converts_to_tflite(exports):
  converter = tf.lite.TFLiteConverter.from_saved_model(exports["keras3_dir"])
  interpreter = litert.Interpreter(model_content=converter.convert())
  (signature,) = interpreter.get_signature_list()
  run_tflite = interpreter.get_signature_runner(signature)
  for index, image in enumerate(exports["inputs"]):
    (outputs,) = run_tflite(**{
        interpreter.get_signature_list()[signature]["inputs"][0]: image[None]
    }).values()
    np.testing.assert_allclose(outputs[0], exports["keras3"][index], rtol=0, atol=1e-4)
