"""GSA-ResNet for Keras users: parameters, Model Garden checkpoints and Keras habits."""

import inspect
import os
import pydoc
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from gsa_keras import classifier
from gsa_keras import runs
from gsa_keras import spec
from gsa_keras.applications import keras3 as applications
from gsa_keras.applications import models
from gsa_keras.applications import tf_keras as tf_keras_applications
from gsa_keras.configs import backbones as backbone_configs
from gsa_keras.data import digits
from tests.support import training
from tests.support import docs_blocks

EXPERIMENT = "gsa_resnet_digits"
DIGITS_SHAPE = (32, 32, 3)


def _digit_images(count=6):
  images = digits.load_splits()["validation"][0][:count]
  return applications.preprocess_input(images)


@pytest.fixture(scope="module")
def garden_run(tmp_path_factory):
  """A digits run as training leaves it (checkpoint + params.yaml), BN randomised."""
  model_dir = str(tmp_path_factory.mktemp("garden_run") / "model_dir")
  model, prefix = training.write_digits_run(model_dir, EXPERIMENT)
  return dict(model=model, model_dir=model_dir, prefix=prefix)


# -- One description of the network: the Model Garden's parameters exactly. ----------

# At 64x64 (parameters depend on the input size only through the relative embedding
# tables, which the Model Garden classifier sizes the same way); test_flops checks the
# Model Garden's counts against the paper's tables at 224x224.
@pytest.mark.parametrize("constructor,fields", [
    ("GSAResNet26", dict(model_id=26)),
    ("GSAResNet50", dict(model_id=50)),
    ("GSAMResNet50", dict(model_id=50, width_variant="m_resnet")),
    ("GSAResNet26", dict(model_id=26, attention_groups=[])),
])
def test_parameters_equal_the_model_garden_classifier(constructor, fields):
  model = getattr(applications, constructor)(
      input_shape=(64, 64, 3), classes=1000,
      attention_groups=tuple(fields.get("attention_groups", (1, 2, 3, 4))))
  garden = classifier.build_classifier(backbone_configs.GSAResNet(**fields), 64, 1000)
  assert model.count_params() == garden.count_params()
  trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
  assert trainable == sum(int(np.prod(w.shape)) for w in garden.trainable_weights)


def test_names_follow_the_variant():
  assert applications.GSAResNet26(input_shape=(64, 64, 3)).name == "gsa_resnet26"
  assert applications.GSAResNet26(input_shape=(64, 64, 3),
                                   attention_groups=()).name == "resnet26"
  assert applications.GSAMResNet50(input_shape=(64, 64, 3)).name == "gsa_m_resnet50"


def test_feature_extractor_and_pooling():
  features = applications.GSAResNet26(include_top=False, input_shape=(64, 64, 3))
  assert features.output.shape[1:] == (2, 2, 2048)
  pooled = applications.GSAResNet26(include_top=False, pooling="max",
                                    input_shape=(64, 64, 3))
  pooled.set_weights(features.get_weights())
  x = _digit_images(2)
  x = tf.image.resize(x, (64, 64)).numpy()
  np.testing.assert_allclose(pooled.predict(x, verbose=0),
                             features.predict(x, verbose=0).max(axis=(1, 2)),
                             rtol=1e-5, atol=1e-6)


def test_input_tensor():
  images = keras.Input((64, 64, 3))
  model = applications.GSAResNet26(input_tensor=images, classes=3)
  assert model.inputs[0] is images and model.output.shape[1:] == (3,)


# -- A public API people can see. ------------------------------------------------------

def _words(text):
  return " ".join(text.split())


@pytest.mark.parametrize("module", [applications, tf_keras_applications],
                         ids=["keras3", "tf_keras"])
def test_help_and_signature_show_every_argument_with_its_doc(module):
  source = inspect.getsource(module)
  for name in list(models.VARIANTS) + ["from_architecture"]:
    constructor = getattr(module, name)
    assert f"\ndef {name}(" in source  # A real function: grep and IDEs find it.
    assert (constructor.__module__, constructor.__name__) == (module.__name__, name)
    options = [o for o in spec.OPTION_NAMES
               if name == "from_architecture" or o not in models.FIXED_OPTIONS]
    expected = ([] if name in models.VARIANTS else ["architecture"]) + [
        n for n, _, _ in models.KERAS_ARGUMENTS] + options + ["name"]
    signature = inspect.signature(constructor)
    assert list(signature.parameters) == expected
    for option in options:
      assert signature.parameters[option].default == spec.default(option)
      assert signature.parameters[option].kind == inspect.Parameter.KEYWORD_ONLY
    text = pydoc.render_doc(constructor, renderer=pydoc.plaintext)
    for parameter in expected:
      assert re.search(rf"^ +{parameter}: \S", text, re.M), (name, parameter)
    for option in options:
      assert _words(spec.OPTION_DOCS[option]) in _words(text), (name, option)


def test_unknown_and_fixed_options_are_type_errors():
  with pytest.raises(TypeError, match="attention_group"):
    applications.GSAResNet26(attention_group=(3, 4))
  with pytest.raises(TypeError, match="model_id"):
    applications.GSAResNet50(model_id=26)  # The name fixes the depth.


def test_from_architecture_and_stochastic_depth():
  architecture = spec.Architecture(model_id=26, attention_groups=(3, 4),
                                   stochastic_depth_drop_rate=0.2)
  model = applications.from_architecture(architecture, input_shape=(32, 32, 3),
                                         classes=10)
  assert model.name == "gsa_resnet26"
  drops = [layer for layer in model.layers if layer.name.endswith("_drop")]
  assert len(drops) == sum(spec.BLOCK_REPEATS[26])
  assert drops[-1].rate == pytest.approx(0.2)
  same = applications.GSAResNet26(input_shape=(32, 32, 3), classes=10,
                                  attention_groups=(3, 4),
                                  stochastic_depth_drop_rate=0.2)
  assert [w.shape for w in same.weights] == [w.shape for w in model.weights]


# -- Model Garden checkpoints. -------------------------------------------------------

@pytest.mark.parametrize("where", ["model_dir", "prefix"])
def test_weights_from_a_run_give_the_model_garden_logits(garden_run, where):
  model = applications.GSAResNet26(weights=garden_run[where], classes=10,
                                   classifier_activation=None)
  assert model.input.shape[1:] == DIGITS_SHAPE  # The run's input size by default.
  images = _digit_images()
  expected = garden_run["model"](images, training=False).numpy()
  logits = model(images, training=False).numpy()
  assert np.abs(logits - expected).max() <= 1e-5
  assert np.abs(expected).max() > 0.1  # Not a trivial zero output.


def test_weights_load_into_tf_keras_models_too(garden_run):
  model = tf_keras_applications.GSAResNet26(weights=garden_run["model_dir"], classes=10,
                                            classifier_activation=None)
  images = _digit_images()
  expected = garden_run["model"](images, training=False).numpy()
  assert np.abs(model(images, training=False).numpy() - expected).max() <= 1e-5


@pytest.mark.parametrize("constructor,arguments,message", [
    ("GSAResNet50", dict(classes=10), r"`model_id`=50 where the run has 26"),
    ("GSAResNet26", dict(classes=5), r"`classes`=5 where the run has 10"),
    ("GSAResNet26", dict(classes=10, attention_variant="positional"),
     r"`attention_variant`='positional' where the run has 'gsa'"),
    ("GSAMResNet50", dict(classes=10), r"`model_id`=50 .*`width_variant`='m_resnet'"),
    ("GSAResNet26", dict(classes=10, input_shape=(64, 64, 3)),
     r"`input_shape`=\(64, 64, 3\) where the run has \(32, 32, 3\)"),
])
def test_a_mismatched_run_names_what_differs(garden_run, constructor, arguments,
                                            message):
  with pytest.raises(ValueError, match=message + r".*Nothing was loaded"):
    getattr(applications, constructor)(weights=garden_run["model_dir"], **arguments)


def test_nothing_is_partly_loaded(garden_run):
  """A network that passes the config check but not the weights: no weight changes."""
  from gsa_keras.applications import garden_weights
  run = garden_weights.read_run(garden_run["model_dir"])
  model = applications.GSAResNet26(input_shape=DIGITS_SHAPE, classes=10, num_heads=4)
  before = [w.numpy().copy() for w in model.weights]
  with pytest.raises(ValueError, match=r"kqv_kernel has shape .* Nothing was loaded"):
    garden_weights.load_into(model, run)
  for weight, value in zip(model.weights, before):
    np.testing.assert_array_equal(weight.numpy(), value)


def test_bad_weights_arguments(tmp_path):
  with pytest.raises(ValueError, match="no ImageNet weights are published"):
    applications.GSAResNet50(weights="imagenet")
  with pytest.raises(FileNotFoundError, match=r"`weights`: directory .* holds no "
                     r"checkpoint"):
    applications.GSAResNet50(weights=str(tmp_path))
  with pytest.raises(ValueError, match=r"`pooling` must be one of"):
    applications.GSAResNet26(include_top=False, pooling="mean")
  with pytest.raises(ValueError, match=r"`classes` must be a positive integer, got 0"):
    applications.GSAResNet26(classes=0)
  with pytest.raises(ValueError, match=r"`num_heads`=7 must divide"):
    applications.GSAResNet26(num_heads=7)
  with pytest.raises(ValueError, match=r"`input_shape` height must be a multiple of 32"):
    applications.GSAResNet26(input_shape=(48, 48, 3))


# -- Keras conventions. ----------------------------------------------------------------

def test_variable_input_sizes_as_the_layer_documents():
  with pytest.raises(ValueError, match=r"`input_shape` height is unknown.*"
                     r"`max_relative_shift`"):
    applications.GSAResNet26(input_shape=(None, None, 3))
  model = applications.GSAResNet26(input_shape=(None, None, 3), max_relative_shift=3,
                                   classes=10)
  for size in (32, 64):
    x = np.random.default_rng(size).normal(size=(2, size, size, 3)).astype(np.float32)
    probs = model.predict(x, verbose=0)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-5)


def test_keras_file_round_trip(tmp_path):
  model = applications.GSAResNet26(input_shape=DIGITS_SHAPE, classes=10)
  training.randomize_batch_norm(model)
  path = str(tmp_path / "model.keras")
  model.save(path)
  loaded = keras.saving.load_model(path)
  images = _digit_images()
  np.testing.assert_allclose(loaded.predict(images, verbose=0),
                             model.predict(images, verbose=0), rtol=1e-5, atol=1e-6)
  assert loaded.get_layer("group1_block1_attention").__class__.__module__ == (
      "gsa_keras.layers.keras3")


_SERVE_WITHOUT_GSA_KERAS = """
import sys
import numpy as np
import tensorflow as tf
served = tf.saved_model.load(sys.argv[1])
images = np.load(sys.argv[2])
np.save(sys.argv[3], served.serve(images).numpy())
assert not any(name.startswith("gsa_keras") for name in sys.modules)
"""


def test_export_loads_without_gsa_keras(tmp_path):
  model = applications.GSAResNet26(input_shape=DIGITS_SHAPE, classes=10)
  training.randomize_batch_norm(model)
  export_dir = str(tmp_path / "exported")
  model.export(export_dir, verbose=False)
  images = _digit_images()
  np.save(tmp_path / "images.npy", images)
  subprocess.run([sys.executable, "-c", _SERVE_WITHOUT_GSA_KERAS, export_dir,
                  str(tmp_path / "images.npy"), str(tmp_path / "probs.npy")],
                 check=True, cwd=tmp_path, capture_output=True, timeout=300,
                 env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=""))
  np.testing.assert_allclose(np.load(tmp_path / "probs.npy"),
                             model.predict(images, verbose=0), rtol=1e-5, atol=1e-6)


def test_jit_fit_step_under_mixed_bfloat16():
  keras.mixed_precision.set_global_policy("mixed_bfloat16")
  try:
    model = applications.GSAResNet26(input_shape=DIGITS_SHAPE, classes=10)
    assert model.get_layer("group1_block1_attention").compute_dtype == "bfloat16"
    model.compile(optimizer=keras.optimizers.SGD(0.01), jit_compile=True,
                  loss="sparse_categorical_crossentropy")
    (x, y), _ = applications_digits()
    before = model.get_layer("group1_block1_attention").kqv_kernel.numpy().copy()
    history = model.fit(x[:32], y[:32], batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    after = model.get_layer("group1_block1_attention").kqv_kernel.numpy()
    assert after.dtype == np.float32 and not np.array_equal(before, after)
  finally:
    keras.mixed_precision.set_global_policy("float32")


def applications_digits():
  from gsa_keras import applications as public
  return public.load_digits()


def test_load_digits_is_the_experiments_split_normalised():
  (x_train, y_train), (x_val, y_val) = applications_digits()
  assert x_train.shape == (1437, 32, 32, 3) and x_val.shape == (360, 32, 32, 3)
  raw = digits.load_splits()
  np.testing.assert_array_equal(y_val, raw["validation"][1])
  mean = np.array([0.485, 0.456, 0.406]) * 255
  std = np.array([0.229, 0.224, 0.225]) * 255
  np.testing.assert_allclose(x_train[3], (raw["train"][0][3] - mean) / std, rtol=1e-5)


# -- Which Keras. ----------------------------------------------------------------------

def test_the_flavour_follows_tensorflows_rule():
  script = ("import gsa_keras.applications as a; m = a.GSAResNet26(input_shape=(32, 32, "
            "3), classes=2); print(type(m).__module__.split('.')[0])")
  for legacy, expected in (("0", "keras"), ("1", "tf_keras")):
    result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                            text=True, check=True, timeout=300,
                            env=dict(os.environ, TF_USE_LEGACY_KERAS=legacy,
                                     TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.stdout.split()[-1] == expected


@pytest.mark.parametrize("module", ["gsa_keras.applications.keras3",
                                    "gsa_keras.layers.keras3"])
def test_another_keras_backend_fails_at_import_saying_how_to_fix_it(module):
  result = subprocess.run([sys.executable, "-c", f"import {module}"],
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, KERAS_BACKEND="jax",
                                   TF_CPP_MIN_LOG_LEVEL="2"))
  assert result.returncode != 0
  assert ("ImportError: gsa_keras needs Keras 3's TensorFlow backend, but Keras runs "
          "on 'jax'. Select TensorFlow before Keras is imported: set the environment "
          "variable KERAS_BACKEND=tensorflow") in result.stderr


# -- Fit and a real training run. ------------------------------------------------------

@pytest.mark.slow
def test_the_readmes_fit_on_the_digits_reaches_90_percent(tmp_path):
  """The README's Keras-models example (block `keras-models-fit`), as written: fit,
  evaluate, save, load, export."""
  code = docs_blocks.block("keras-models-fit").text
  result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, text=True,
                          capture_output=True, timeout=1500,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert result.returncode == 0, result.stderr[-3000:]
  accuracy = float(re.search(r"validation top-1: ([\d.]+)%", result.stdout).group(1))
  assert accuracy >= 90.0, result.stdout


@pytest.mark.slow
def test_a_gsa_keras_train_run_loads_with_the_same_logits(short_run):
  """A run of `gsa_keras.train` (the shared short run: GSA in groups 3-4 only)."""
  model_dir = short_run.check().model_dir
  params = runs.load_params(EXPERIMENT, runs.run_config_files(str(model_dir)))
  garden = runs.load_model(params, str(model_dir))
  model = applications.GSAResNet26(weights=str(model_dir), classes=10,
                                   attention_groups=(3, 4),
                                   classifier_activation=None)
  images = _digit_images(16)
  expected = garden(images, training=False).numpy()
  assert np.abs(model(images, training=False).numpy() - expected).max() <= 1e-5
