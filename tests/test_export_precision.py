"""`--precision=bfloat16` exports: signatures, the saved graph's dtypes, parity, errors.

The float32 export is the digits classifier shared by the serving tests
(the session fixture `serving_export`); the bfloat16 export is made once per module
from the same checkpoint. Parity over the held-out digits uses the README's trained run.
"""

import collections
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from ai_edge_litert import interpreter as litert
from tensorflow.core.protobuf import saved_model_pb2

from gsa_keras import runs
from gsa_keras.data import digits
from gsa_keras.serving import export_lib
from gsa_keras.serving import module as serving_module
from tests.support import serving
from tests.support import training

EXPERIMENT = serving.EXPERIMENT
SIGNATURES = serving.SIGNATURES
# The products whose dtype is the precision the model computes in.
PRODUCTS = ("Conv2D", "MatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum")
# Top-1 agreement of the bfloat16 export with the float32 one over the 360 held-out
# digits, and the largest difference of `probs` allowed. Measured on two runs of the
# README's command (the test's shared run and one more): 100% agreement both times,
# max |probs difference| 0.0158 and 0.0155.
MIN_AGREEMENT = 0.995
MAX_PROBS_DIFFERENCE = 0.05
# A message of TensorFlow's C++ runtime (e.g. `E ... cuda_platform.cc:51] failed call
# to cuInit`), printed before any of our code runs.
TF_CPP_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] ")


def _op_dtypes(export_dir) -> collections.Counter:
  """(op, dtype) -> count over every function of the SavedModel's graph."""
  saved_model = saved_model_pb2.SavedModel()
  with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
    saved_model.ParseFromString(f.read())
  counts = collections.Counter()
  for function in saved_model.meta_graphs[0].graph_def.library.function:
    for node in function.node_def:
      if "T" in node.attr and node.attr["T"].WhichOneof("value") == "type":
        counts[node.op, tf.dtypes.as_dtype(node.attr["T"].type).name] += 1
  return counts


def _recorded_precision(export_dir) -> str:
  """What the export's params.yaml says the SavedModel computes in."""
  params = export_lib.load_params(EXPERIMENT, [os.path.join(export_dir, "params.yaml")])
  return params.runtime.mixed_precision_dtype


@pytest.fixture(scope="module")
def bfloat16_export(serving_export, tmp_path_factory):
  """The bfloat16 export of the shared float32 export's checkpoint: its directory."""
  export_dir = str(tmp_path_factory.mktemp("bfloat16") / "saved_model")
  export_lib.export_saved_model(serving_export.params, serving_export.checkpoint,
                                export_dir, precision="bfloat16")
  return export_dir


def test_bfloat16_signatures_match_float32(bfloat16_export, serving_export):
  float32 = tf.saved_model.load(serving_export.export_dir).signatures
  bfloat16 = tf.saved_model.load(bfloat16_export).signatures
  assert set(bfloat16) == set(float32) == set(SIGNATURES)
  for key in SIGNATURES:
    assert (bfloat16[key].structured_input_signature ==
            float32[key].structured_input_signature)
    assert bfloat16[key].structured_outputs == float32[key].structured_outputs
    for spec in bfloat16[key].structured_outputs.values():
      assert spec.dtype == tf.float32
  images = tf.constant(digits.load_splits()["validation"][0][:8])
  expected = float32["serving_default"](inputs=images)
  served = bfloat16["serving_default"](inputs=images)
  assert {k: v.dtype for k, v in served.items()} == {"logits": tf.float32,
                                                     "probs": tf.float32}
  np.testing.assert_allclose(served["probs"].numpy().sum(-1), 1.0, rtol=1e-5)
  np.testing.assert_allclose(served["probs"], expected["probs"], rtol=0,
                             atol=MAX_PROBS_DIFFERENCE)


def test_saved_graph_computes_in_bfloat16(bfloat16_export, serving_export):
  """Every convolution and matmul of the bfloat16 export is bfloat16 and every softmax
  float32; the float32 export has no bfloat16 op at all."""
  bfloat16 = _op_dtypes(bfloat16_export)
  float32 = _op_dtypes(serving_export.export_dir)
  for op in ("Conv2D", "BatchMatMulV2", "MatMul"):
    assert bfloat16[op, "bfloat16"] > 0, (op, bfloat16)
    assert bfloat16[op, "bfloat16"] == float32[op, "float32"], op
  assert not [key for key in bfloat16 if key[0] in PRODUCTS and key[1] != "bfloat16"]
  assert bfloat16["Softmax", "float32"] > 0
  assert bfloat16["Softmax", "bfloat16"] == 0
  assert not [key for key in float32 if key[1] == "bfloat16"]
  assert _recorded_precision(bfloat16_export) == "bfloat16"
  assert _recorded_precision(serving_export.export_dir) == "float32"
  assert tf_keras.mixed_precision.global_policy().name == "float32"


def test_bad_precision_is_rejected_before_the_model_is_built(monkeypatch, tmp_path):
  def no_build(*args, **kwargs):
    raise AssertionError("the model was built")

  monkeypatch.setattr(serving_module, "build_model", no_build)
  params = export_lib.load_params(EXPERIMENT)
  message = r"precision must be one of float32, bfloat16, got 'float16'\."
  with pytest.raises(ValueError, match=message):
    serving_module.ClassifierModule(params, precision="float16")
  with pytest.raises(ValueError, match=message):
    export_lib.export_saved_model(params, "unused", str(tmp_path / "x"),
                                  precision="float16")
  assert not (tmp_path / "x").exists()
  with pytest.raises(ValueError, match="--precision must be one of float32, "
                     "bfloat16, got 'bf16'"):
    serving_module.validate_precision("bf16", "--precision")


def test_dtype_policy_restores_the_previous_policy():
  tf_keras.mixed_precision.set_global_policy("mixed_float16")
  try:
    with serving_module.dtype_policy("bfloat16"):
      assert tf_keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert tf_keras.mixed_precision.global_policy().name == "mixed_float16"
    with pytest.raises(RuntimeError):
      with serving_module.dtype_policy("float32"):
        assert tf_keras.mixed_precision.global_policy().name == "float32"
        raise RuntimeError("inside")
    assert tf_keras.mixed_precision.global_policy().name == "mixed_float16"
  finally:
    tf_keras.mixed_precision.set_global_policy("float32")


def test_command_line_rejects_a_bad_precision(serving_export, tmp_path):
  checkpoint = serving_export.checkpoint
  export_dir = tmp_path / "export"
  result = serving.run([
      sys.executable, "-m", "gsa_keras.export", f"--experiment={EXPERIMENT}",
      f"--config_file={os.path.join(os.path.dirname(checkpoint), 'params.yaml')}",
      f"--checkpoint_path={checkpoint}", f"--export_dir={export_dir}",
      f"--tflite_path={tmp_path / 'model.tflite'}", "--precision=float16"])
  assert result.returncode == 1
  # TensorFlow's C++ start-up messages aside, stderr is one line.
  lines = [line for line in result.stderr.strip().splitlines()
           if not TF_CPP_LOG_LINE.match(line)]
  assert lines == [
      "gsa_keras.export: error: --precision must be one of float32, bfloat16, got "
      "'float16'."]
  assert not os.listdir(tmp_path)


# Serves 8 held-out digits through a SavedModel and saves their `probs`: argv[1], [2].
_SERVE_DIGITS = """
import sys
import numpy as np
import tensorflow as tf
from gsa_keras.data import digits
images = tf.constant(digits.load_splits()["validation"][0][:8])
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
np.save(sys.argv[2], serve(inputs=images)["probs"].numpy())
"""


@pytest.mark.slow
def test_bfloat16_export_answers_without_onednn(bfloat16_export, tmp_path):
  """With TensorFlow's oneDNN kernels off (`TF_ENABLE_ONEDNN_OPTS=0`), the Eigen
  kernels that a CPU without oneDNN's bfloat16 support falls back to, the bfloat16
  export answers as it does with them."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_ENABLE_ONEDNN_OPTS="0")
  result = subprocess.run(
      [sys.executable, "-c", _SERVE_DIGITS, bfloat16_export, str(tmp_path / "p.npy")],
      capture_output=True, text=True, env=env, cwd=training.REPO, timeout=600,
      check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  images = tf.constant(digits.load_splits()["validation"][0][:8])
  with_onednn = tf.saved_model.load(bfloat16_export).signatures["serving_default"](
      inputs=images)["probs"].numpy()
  np.testing.assert_allclose(np.load(tmp_path / "p.npy"), with_onednn, rtol=0,
                             atol=MAX_PROBS_DIFFERENCE)


def _probs(export_dir, images) -> np.ndarray:
  serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
  return np.concatenate([serve(inputs=tf.constant(images[i:i + 120]))["probs"].numpy()
                         for i in range(0, len(images), 120)])


@pytest.mark.slow
def test_bfloat16_export_agrees_with_float32_on_held_out_digits(readme_run, tmp_path):
  """The README's trained run exported again with `--precision=bfloat16` (and
  `--tflite_path`, which stays float32): against its float32 export on all 360
  held-out digits."""
  readme_run.check()
  export_dir, tflite_path = tmp_path / "bfloat16", tmp_path / "model.tflite"
  result = serving.run([
      sys.executable, "-m", "gsa_keras.export", f"--experiment={EXPERIMENT}",
      f"--config_file={readme_run.model_dir / 'params.yaml'}",
      f"--checkpoint_path={readme_run.model_dir}", f"--export_dir={export_dir}",
      f"--tflite_path={tflite_path}", "--precision=bfloat16"])
  assert result.returncode == 0, result.stderr
  assert f"TFLite (float32): {tflite_path}" in result.stdout

  images, _ = digits.load_splits()["validation"]
  assert len(images) == 360
  float32 = _probs(readme_run.export_dir, images)
  bfloat16 = _probs(export_dir, images)
  agreement = np.mean(float32.argmax(-1) == bfloat16.argmax(-1))
  difference = np.abs(float32 - bfloat16).max()
  print(f"bfloat16 vs float32 export over {len(images)} held-out digits: top-1 "
        f"agreement {agreement:.2%}, max |probs difference| {difference:.4f}")
  assert agreement >= MIN_AGREEMENT
  assert difference < MAX_PROBS_DIFFERENCE
  assert _recorded_precision(export_dir) == "bfloat16"

  run_tflite = litert.Interpreter(model_path=str(tflite_path)).get_signature_runner()
  for index in range(8):
    np.testing.assert_allclose(run_tflite(inputs=images[index:index + 1])["probs"][0],
                               float32[index], rtol=0, atol=1e-4)


def test_tflite_converts_a_float32_copy_of_a_bfloat16_module(serving_export):
  """`export_tflite` converts a bfloat16 module's float32 copy: same weights, the
  float32 model's logits."""
  module = serving_module.ClassifierModule(serving_export.params, precision="bfloat16")
  runs.restore(module.model, serving_export.checkpoint)
  assert module.with_precision("bfloat16") is module
  copy = module.with_precision("float32")
  assert copy.precision == "float32"
  assert copy.model.compute_dtype == "float32"
  assert module.model.compute_dtype == "bfloat16"
  images = serving.normalize(digits.load_splits()["validation"][0][:4])
  np.testing.assert_allclose(copy.model(images, training=False),
                             serving_export.model(images, training=False),
                             rtol=0, atol=1e-6)
