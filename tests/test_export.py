"""Model Garden export (`gsa_keras.export`): signatures, parity, TFLite, CLIs, bad input.

One digits classifier (GSA-ResNet-26 at 32x32, the CPU default experiment) is built the
way training builds it, given random batch-norm statistics (so evaluation mode differs
from training mode), saved as a training checkpoint and exported once per test session
(the session fixture `serving_export`, shared with the other serving tests).
"""

import os
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from ai_edge_litert import interpreter as litert
from official.core import task_factory
from tensorflow.core.protobuf import saved_model_pb2

from gsa_keras import predict
from gsa_keras import runs
from gsa_keras.data import digits
from gsa_keras.serving import export_lib
from gsa_keras.serving import module as serving_module
from tests.support import serving

EXPERIMENT = serving.EXPERIMENT
SAMPLES = serving.SAMPLES
BIN = os.path.dirname(sys.executable)
SIGNATURES = serving.SIGNATURES


def _png(image):
  return tf.io.encode_png(image).numpy()


def _example(image):
  feature = {"image/encoded": tf.train.Feature(
      bytes_list=tf.train.BytesList(value=[_png(image)]))}
  return tf.train.Example(
      features=tf.train.Features(feature=feature)).SerializeToString()


@pytest.fixture(scope="module")
def trained(serving_export):
  """A digits classifier as training leaves it (`serving_export`, shared by the
  serving tests): model, model_dir and params."""
  return dict(model=serving_export.model, model_dir=serving_export.model_dir,
              params=serving_export.params)


@pytest.fixture(scope="module")
def images():
  """Eight held-out digits and two noise images, uint8 [10, 32, 32, 3]."""
  held_out = digits.load_splits()["validation"][0][:8]
  noise = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
  return np.concatenate([held_out, noise])


@pytest.fixture(scope="module")
def exported(serving_export):
  """The library's export of `trained`: SavedModel dir and loaded model."""
  export_dir = serving_export.export_dir
  return dict(dir=export_dir, loaded=tf.saved_model.load(export_dir))


@pytest.fixture(scope="module")
def expected_logits(trained, images):
  """The Keras model's logits in evaluation mode."""
  return trained["model"](serving.normalize(images), training=False).numpy()


def test_signatures_inputs_and_outputs(exported):
  signatures = exported["loaded"].signatures
  assert set(signatures) == set(SIGNATURES)
  specs = {key: signatures[key].structured_input_signature[1]["inputs"]
           for key in SIGNATURES}
  assert specs["serving_default"] == tf.TensorSpec(
      [None, None, None, 3], tf.uint8, "inputs")
  assert specs["image_bytes"] == tf.TensorSpec([None], tf.string, "inputs")
  assert specs["tf_example"] == tf.TensorSpec([None], tf.string, "inputs")
  for key in SIGNATURES:
    outputs = signatures[key].structured_outputs
    assert set(outputs) == {"logits", "probs"}
    assert outputs["logits"].shape.as_list() == [None, digits.NUM_CLASSES]
  assert os.path.exists(os.path.join(exported["dir"], "params.yaml"))


def test_saved_model_holds_no_keras_layer_traces(exported):
  """The export saves the signatures' functions, not a trace of every Keras layer's
  call (`compat.without_keras_layer_traces`; with them the digits export has 464
  more functions, and takes twice as long to write)."""
  saved_model = saved_model_pb2.SavedModel()
  with open(os.path.join(exported["dir"], "saved_model.pb"), "rb") as f:
    saved_model.ParseFromString(f.read())
  names = [function.signature.name
           for function in saved_model.meta_graphs[0].graph_def.library.function]
  assert names
  assert not [name for name in names if "layer_call" in name]


def test_logits_equal_keras_model_in_eval_mode(exported, images, expected_logits):
  outputs = exported["loaded"].signatures["serving_default"](
      inputs=tf.constant(images))
  serving.assert_same_logits(outputs["logits"], expected_logits)
  # `probs` is the softmax of the signature's own logits.
  np.testing.assert_allclose(
      outputs["probs"], tf.nn.softmax(outputs["logits"]), rtol=0, atol=1e-6)


def test_every_signature_gives_the_same_logits(exported, images, expected_logits):
  signatures = exported["loaded"].signatures
  by_bytes = signatures["image_bytes"](
      inputs=tf.constant([_png(image) for image in images]))["logits"]
  by_example = signatures["tf_example"](
      inputs=tf.constant([_example(image) for image in images]))["logits"]
  serving.assert_same_logits(by_bytes, expected_logits)
  serving.assert_same_logits(by_example, expected_logits)


def test_tf_example_signature_matches_evaluation_pipeline(
    exported, trained, tmp_path):
  """Training's own validation records and input pipeline against the signature."""
  data_dir = str(tmp_path / "digits")
  validation_file = digits.write_tfrecords(data_dir)["validation"]
  params = export_lib.load_params(EXPERIMENT, params_override={
      "task": {"validation_data": {"input_path": validation_file,
                                   "global_batch_size": 16}}})
  task = task_factory.get_task(params.task)
  pipeline_images, _ = next(iter(task.build_inputs(params.task.validation_data)))
  expected = trained["model"](pipeline_images, training=False).numpy()
  records = [r.numpy() for r in tf.data.TFRecordDataset(validation_file).take(16)]
  served = exported["loaded"].signatures["tf_example"](inputs=tf.constant(records))
  serving.assert_same_logits(served["logits"], expected)


def test_crop_and_resize_follow_evaluation_pipeline(trained, tmp_path):
  """Images of another size, with a centre crop: `serving_default`'s preprocessing
  is the evaluation pipeline's."""
  rng = np.random.default_rng(2)
  odd_images = rng.integers(0, 256, (4, 40, 52, 3), dtype=np.uint8)
  path = str(tmp_path / "odd.tfrecord")
  with tf.io.TFRecordWriter(path) as writer:
    for image in odd_images:
      writer.write(_example(image))
  params = export_lib.load_params(EXPERIMENT, params_override={
      "task": {"validation_data": {
          "input_path": path, "global_batch_size": 4, "aug_crop": True,
          "center_crop_fraction": 0.75}}})
  task = task_factory.get_task(params.task)
  pipeline_images, _ = next(iter(task.build_inputs(params.task.validation_data)))
  expected = trained["model"](pipeline_images, training=False).numpy()
  module = serving_module.ClassifierModule(params, model=trained["model"])
  served = module.inference_from_image_tensors(tf.constant(odd_images))
  serving.assert_same_logits(served["logits"], expected)


def test_tflite_matches_saved_model(exported, serving_tflite, images):
  interpreter = litert.Interpreter(model_path=serving_tflite)
  assert interpreter.get_signature_list() == {
      "serving_default": {"inputs": ["inputs"], "outputs": ["logits", "probs"]}}
  run_tflite = interpreter.get_signature_runner("serving_default")
  served = exported["loaded"].signatures["serving_default"](inputs=tf.constant(images))
  for index, image in enumerate(images):
    outputs = run_tflite(inputs=image[None])
    serving.assert_same_logits(outputs["logits"][0], served["logits"][index])
    np.testing.assert_allclose(outputs["probs"][0], tf.nn.softmax(outputs["logits"][0]),
                               rtol=0, atol=1e-6)


def test_saved_model_cli_show(exported):
  result = serving.run([os.path.join(BIN, "saved_model_cli"), "show", "--dir",
                        exported["dir"], "--all"])
  assert result.returncode == 0, result.stderr
  for text in ("signature_def['serving_default']", "signature_def['image_bytes']",
               "signature_def['tf_example']", "inputs['inputs']", "DT_UINT8",
               "DT_STRING", "outputs['logits']", "outputs['probs']"):
    assert text in result.stdout


@pytest.mark.parametrize("signature", ["serving_default", "image_bytes"])
def test_saved_model_cli_run(exported, images, expected_logits, signature, tmp_path):
  if signature == "serving_default":
    inputs = images[:2]
  else:  # numpy bytes ('S'): each PNG ends in a CRC, never in a stripped NUL.
    inputs = np.array([_png(image) for image in images[:2]])
  np.save(tmp_path / "inputs.npy", inputs)
  result = serving.run([
      os.path.join(BIN, "saved_model_cli"), "run", "--dir", exported["dir"],
      "--tag_set", "serve", "--signature_def", signature,
      "--inputs", f"inputs={tmp_path / 'inputs.npy'}",
      "--outdir", str(tmp_path / "out")])
  assert result.returncode == 0, result.stderr
  logits = np.load(tmp_path / "out" / "logits.npy")
  serving.assert_same_logits(logits, expected_logits[:2])


def _truncated_png():
  encoded = _png(np.arange(3 * 32 * 32, dtype=np.uint8).reshape([32, 32, 3]))
  return encoded[:len(encoded) // 2]


BAD_REQUESTS = [
    ("serving_default", lambda: tf.zeros([1, 32, 32, 3], tf.float32),
     "expected to be a uint8 tensor but is a float tensor"),
    ("serving_default", lambda: tf.zeros([32, 32, 3], tf.uint8),
     "Shape of tensor inputs [32,32,3] is not compatible with expected shape "
     "[?,?,?,3]"),
    ("serving_default", lambda: tf.zeros([1, 32, 32, 4], tf.uint8),
     "is not compatible with expected shape [?,?,?,3]"),
    ("serving_default", lambda: tf.zeros([0, 32, 32, 3], tf.uint8),
     "`inputs` is an empty batch"),
    ("image_bytes", lambda: tf.constant([b"not an image"]),
     "Unknown image file format"),
    ("image_bytes", lambda: tf.constant([_truncated_png()]), "Invalid PNG data"),
    ("image_bytes", lambda: tf.constant([[b"x"]]),
     "is not compatible with expected shape [?]"),
    ("image_bytes", lambda: tf.zeros([1], tf.uint8),
     "expected to be a string tensor but is a uint8 tensor"),
    ("tf_example", lambda: tf.constant([b"not an example"]),
     "Could not parse example input"),
    ("tf_example", lambda: tf.constant([tf.train.Example().SerializeToString()]),
     "image/encoded (data type: string) is required but could not be found"),
]


@pytest.mark.parametrize("signature,make_inputs,message", BAD_REQUESTS)
def test_bad_request_fails_clearly_and_model_keeps_answering(
    exported, images, expected_logits, signature, make_inputs, message):
  signatures = exported["loaded"].signatures
  with pytest.raises(tf.errors.InvalidArgumentError) as error:
    signatures[signature](inputs=make_inputs())
  assert message in error.value.message
  good = signatures["serving_default"](inputs=tf.constant(images[:3]))
  serving.assert_same_logits(good["logits"], expected_logits[:3])


def test_predict_reads_files_and_names_bad_ones(exported, tmp_path):
  serve = exported["loaded"].signatures[predict.SIGNATURE]
  sample = os.path.join(SAMPLES, "digit_7.png")
  bad = tmp_path / "notes.png"
  bad.write_text("not an image")
  probs = predict.predict(serve, [sample, sample])
  assert probs.shape == (2, digits.NUM_CLASSES)
  np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-5)
  with pytest.raises(ValueError, match=f"--image: cannot classify '{bad}': Unknown "
                     "image file format"):
    predict.predict(serve, [sample, str(bad)])
  labels = tmp_path / "labels.txt"
  labels.write_text("zero\none\n")
  with pytest.raises(ValueError, match="--labels: .* has 2 names, the model 10"):
    predict.read_labels(str(labels), digits.NUM_CLASSES)
  assert predict.top_k(np.array([0.1, 0.6, 0.3]), 2) == [(1, 0.6), (2, 0.3)]


def test_samples_are_held_out_digits():
  held_out, labels = digits.load_splits()["validation"]
  for name in sorted(os.listdir(SAMPLES)):
    label = int(name[len("digit_"):-len(".png")])
    with open(os.path.join(SAMPLES, name), "rb") as f:
      image = tf.io.decode_png(f.read(), channels=3).numpy()
    first = int(np.flatnonzero(labels == label)[0])
    np.testing.assert_array_equal(image, held_out[first])


def test_errors_name_the_flag(trained, tmp_path):
  with pytest.raises(ValueError, match="--experiment: unknown experiment 'nope'.*"
                     "gsa_resnet_digits"):
    export_lib.load_params("nope")
  with pytest.raises(FileNotFoundError, match="--config_file: no file"):
    export_lib.load_params(EXPERIMENT, [str(tmp_path / "missing.yaml")])
  with pytest.raises(ValueError, match="--config_file/--params_override"):
    export_lib.load_params(EXPERIMENT, params_override="task.no_such_field=1")
  with pytest.raises(FileNotFoundError, match="--checkpoint_path: directory .* "
                     "holds no checkpoint"):
    runs.find_checkpoint(str(tmp_path))
  with pytest.raises(FileNotFoundError, match="--checkpoint_path: no checkpoint"):
    runs.find_checkpoint(str(tmp_path / "ckpt-3"))
  other = tf_keras.Sequential([tf_keras.Input([4]), tf_keras.layers.Dense(2)])
  other_prefix = tf.train.Checkpoint(model=other).save(str(tmp_path / "other"))
  with pytest.raises(ValueError, match="--checkpoint_path: .* does not match"):
    # Into a model of its own: the shared one stays as the other tests expect it.
    runs.restore(runs.build_model(trained["params"]), other_prefix)


def test_command_line_fails_before_work(tmp_path):
  export_dir = tmp_path / "export"
  result = serving.run([sys.executable, "-m", "gsa_keras.export",
                        f"--experiment={EXPERIMENT}",
                        f"--checkpoint_path={tmp_path / 'missing'}",
                        f"--export_dir={export_dir}"])
  assert result.returncode == 1
  assert "gsa_keras.export: error: --checkpoint_path: no checkpoint" in result.stderr
  assert "Traceback" not in result.stderr
  assert not export_dir.exists()


@pytest.mark.slow
def test_command_line_export_and_predict(readme_run):
  """`gsa_keras.export` as the README runs it (the shared README run), then
  `gsa_keras.predict` on every sample: its lines are the SavedModel's probabilities."""
  readme_run.check()
  export_dir = readme_run.export_dir
  assert readme_run.tflite_path.exists()
  loaded = tf.saved_model.load(str(export_dir))

  names = sorted(os.listdir(SAMPLES))
  paths = [os.path.join(SAMPLES, name) for name in names]
  result = serving.run([sys.executable, "-m", "gsa_keras.predict",
                        f"--saved_model={export_dir}", "--top_k=2"]
                       + [f"--image={path}" for path in paths])
  assert result.returncode == 0, result.stderr
  encoded = []
  for path in paths:
    with open(path, "rb") as f:
      encoded.append(f.read())
  probs = loaded.signatures["image_bytes"](
      inputs=tf.constant(encoded))["probs"].numpy()
  lines = result.stdout.splitlines()
  assert len(lines) == 3 * len(paths)
  for index, path in enumerate(paths):
    assert lines[3 * index] == path
    best = int(np.argmax(probs[index]))
    assert lines[3 * index + 1] == f"  1. {best}  {probs[index, best]:.3f}"
