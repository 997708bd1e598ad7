"""What `gsa_keras.compat` relies on in the installed TensorFlow, tf_keras and Model
Garden: one test per function. A failure names the package, its installed version and
the version `compat` was written against, and what changed."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from tensorflow.core.protobuf import saved_model_pb2
import yaml

from official.core import actions
from official.modeling.hyperparams import params_dict
from official.vision.serving import image_classification

from gsa_keras import compat
from gsa_keras import runs


def _changed(package: str, what: str) -> str:
  """The failure message: `package` as installed no longer does `what`."""
  return (f"{package} {compat.installed_version(package)} (gsa_keras.compat was "
          f"written against {compat.WRITTEN_AGAINST[package]}): {what}; update "
          "gsa_keras/compat.py.")


def _tiny_model(size=8):
  inputs = tf_keras.Input([size, size, 3])
  pooled = tf_keras.layers.GlobalAveragePooling2D()(inputs)
  return tf_keras.Model(inputs, tf_keras.layers.Dense(4)(pooled))


def test_incompatibility_names_the_package_and_versions():
  @compat.overrides(image_classification.ClassificationModule)
  def _build_model(self):  # A hook the Model Garden has.
    del self

  assert _build_model.__name__ == "_build_model"
  with pytest.raises(compat.IncompatibleVersionError) as error:
    @compat.overrides(image_classification.ClassificationModule)
    def _no_such_hook(self):
      del self
  assert str(error.value).startswith(
      f"tf-models-official {compat.installed_version('tf-models-official')}: ")
  assert "has no hook '_no_such_hook'" in str(error.value)
  assert "written against tf-models-official 2.20.0" in str(error.value)


def test_registered_experiments_lists_the_experiment_registry():
  names = compat.registered_experiments()
  # Registered through the public decorator, by gsa_keras and by the Model Garden.
  assert {"gsa_resnet_digits", "gsa_resnet_imagenet", "resnet_imagenet"} <= set(names), (
      _changed("tf-models-official", "official.core.exp_factory._REGISTERED_CONFIGS "
               "no longer holds the names registered with register_config_factory"))
  assert names == sorted(names)
  assert runs.registered_experiments() == [n for n in names if n.startswith("gsa_")]


def test_yaml_loader_is_the_one_config_overrides_are_read_with():
  loader = compat.yaml_loader()
  text = "learning_rate: 1e-4\nsteps: 10\n"
  assert yaml.load(text, Loader=loader) == {"learning_rate": 1e-4, "steps": 10}, (
      _changed("tf-models-official", "params_dict._LOADER no longer reads 1e-4 as a "
               "number"))
  params = params_dict.ParamsDict({"learning_rate": 0.1, "steps": 1})
  params = params_dict.override_params_dict(params, text, is_strict=True)
  assert params.as_dict() == yaml.load(text, Loader=loader), _changed(
      "tf-models-official", "override_params_dict no longer reads YAML as "
      "params_dict._LOADER does")


@pytest.mark.parametrize("loss", [float("nan"), 10.0])
def test_is_loss_blow_up_recognises_the_recovery_condition(loss):
  condition = actions.RecoveryCondition(
      global_step=tf.Variable(5, dtype=tf.int64), loss_upper_bound=1.0,
      recovery_max_trials=0)
  try:
    condition({"training_loss": tf.constant(loss)})
  except Exception as e:  # noqa: BLE001 any type: the assert below names it
    error = e
  else:
    pytest.fail(_changed("tf-models-official", "RecoveryCondition no longer raises "
                         "when the loss blows up more than recovery_max_trials times"))
  assert type(error) is RuntimeError, _changed(
      "tf-models-official", f"RecoveryCondition raises {type(error).__name__}, not "
      "RuntimeError (if a type of its own, check for it in train.py instead)")
  assert compat.is_loss_blow_up(error), _changed(
      "tf-models-official", "RecoveryCondition.__call__ no longer raises the error "
      "itself")


def test_is_loss_blow_up_is_not_fooled_by_the_text():
  try:
    raise RuntimeError("The loss value is NaN after training loop and it happens 2 "
                       "times.")
  except RuntimeError as e:
    assert not compat.is_loss_blow_up(e)
  assert not compat.is_loss_blow_up(ValueError("The loss value is NaN"))


def test_overrides_are_the_hooks_the_classification_module_calls():
  """`serving.module.ClassifierModule` overrides `_crop_and_resize` (called on image
  tensors by `serve`) and `_decode_image` (called per image by
  `inference_from_image_bytes`)."""
  calls = []

  class Probe(image_classification.ClassificationModule):

    @compat.overrides(image_classification.ClassificationModule)
    def _crop_and_resize(self, image):
      calls.append("_crop_and_resize")
      return tf.zeros([8, 8, 3])

    @compat.overrides(image_classification.ClassificationModule)
    def _decode_image(self, encoded_image_bytes):
      calls.append("_decode_image")
      return tf.zeros([8, 8, 3], tf.uint8)

  params = runs.load_params("gsa_resnet_digits")
  model = _tiny_model()
  images = Probe(params, batch_size=None, input_image_size=[8, 8], model=model)
  outputs = images.inference_from_image_tensors(tf.zeros([2, 20, 20, 3], tf.uint8))
  assert outputs["logits"].shape == (2, 4)
  assert calls == ["_crop_and_resize"], _changed(
      "tf-models-official", "ClassificationModule.serve no longer crops and resizes "
      f"image tensors with `_crop_and_resize` (calls: {calls})")
  calls.clear()
  encoded = Probe(params, batch_size=None, input_image_size=[8, 8], model=model,
                  input_type="image_bytes")
  png = tf.io.encode_png(tf.zeros([3, 3, 3], tf.uint8))
  outputs = encoded.inference_from_image_bytes(tf.stack([png, png]))
  assert outputs["logits"].shape == (2, 4)
  assert calls == ["_decode_image"], _changed(
      "tf-models-official", "ClassificationModule.inference_from_image_bytes no "
      f"longer decodes each image with `_decode_image` (calls: {calls})")


def _saved_functions(module, path):
  tf.saved_model.save(module, path)
  saved_model = saved_model_pb2.SavedModel()
  with open(os.path.join(path, "saved_model.pb"), "rb") as f:
    saved_model.ParseFromString(f.read())
  return [function.signature.name
          for function in saved_model.meta_graphs[0].graph_def.library.function]


def test_without_keras_layer_traces_saves_no_layer_call(tmp_path):
  module = tf.Module()
  module.model = _tiny_model()
  module.serve = tf.function(lambda x: module.model(x, training=False),
                             input_signature=[tf.TensorSpec([None, 8, 8, 3])])
  traced = _saved_functions(module, str(tmp_path / "traced"))
  assert [name for name in traced if "layer_call" in name]
  with compat.without_keras_layer_traces():
    untraced = _saved_functions(module, str(tmp_path / "untraced"))
  assert untraced and not [name for name in untraced if "layer_call" in name], _changed(
      "tf-keras", "keras_option_scope(save_traces=False) no longer keeps the layers' "
      "call traces out of a SavedModel")


def test_functional_layer_calls_are_the_models_own_graph():
  inputs = tf_keras.Input([4])
  first, second = tf_keras.layers.Dense(3), tf_keras.layers.Dense(2)
  model = tf_keras.Model(inputs, second(first(inputs)))
  first(tf_keras.Input([4]))  # A call in another graph.
  assert len(first.inbound_nodes) == 2
  calls = [(layer, tf.TensorShape(input_shape).as_list(),
            tf.TensorShape(output_shape).as_list())
           for layer, input_shape, output_shape in compat.functional_layer_calls(model)]
  assert calls == [(first, [None, 4], [None, 3]), (second, [None, 3], [None, 2])], (
      _changed("tf-keras", "a functional model's `_nodes_by_depth` no longer gives "
               f"its own layer calls in order (got {calls})"))


def test_async_checkpoint_error_is_returned_once(tmp_path):
  (tmp_path / "file").write_text("not a directory")
  checkpoint = tf.train.Checkpoint(v=tf.Variable(1.0))
  assert compat.async_checkpoint_error(checkpoint) is None  # Never written.
  checkpoint.write(str(tmp_path / "file" / "ckpt"), options=tf.train.CheckpointOptions(
      experimental_enable_async_checkpoint=True))
  error = compat.async_checkpoint_error(checkpoint)
  assert isinstance(error, tf.errors.OpError) and "not a directory" in str(error), (
      _changed("tensorflow", "the asynchronous checkpoint helper no longer keeps the "
               f"error of a failed write (got {error!r})"))
  assert compat.async_checkpoint_error(checkpoint) is None, _changed(
      "tensorflow", "reading an asynchronous write's error no longer clears it")
  assert compat.async_checkpoint_error(None) is None


def test_checkpoint_shard_writer_writes_every_shard(tmp_path, monkeypatch):
  owner, name = compat.checkpoint_shard_writer()
  write = getattr(owner, name)
  prefixes = []

  def recording_write(prefix, *args, **kwargs):
    prefixes.append(prefix.numpy().decode() if hasattr(prefix, "numpy") else
                    str(prefix))
    return write(prefix, *args, **kwargs)

  monkeypatch.setattr(owner, name, recording_write)
  prefix = str(tmp_path / "ckpt")
  path = tf.train.Checkpoint(v=tf.Variable(np.ones(3))).write(prefix)
  assert path == prefix and tf.train.load_checkpoint(path).get_tensor(
      "v/.ATTRIBUTES/VARIABLE_VALUE").tolist() == [1, 1, 1]
  assert len(prefixes) == 1 and os.path.dirname(prefixes[0]) == f"{prefix}_temp", (
      _changed("tensorflow", "tf.train.Checkpoint no longer writes each shard with "
               f"`tensorflow.python.ops.io_ops.{name}(<prefix>_temp/<shard>, ...)` "
               f"(calls: {prefixes})"))
