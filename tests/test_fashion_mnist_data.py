"""Fashion-MNIST: the IDX converter, its errors, TFDS and the experiment.

The IDX files are small ones the tests write; nothing is downloaded.
"""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from official.core import exp_factory
from official.modeling import hyperparams
from official.vision.dataloaders import tfds_factory

from gsa_keras import registry_imports
from gsa_keras.configs import fashion_mnist as fm_config
from gsa_keras.data import digits
from gsa_keras.data import fashion_mnist
from tests.support import idx_files

REPO = pathlib.Path(__file__).resolve().parents[1]
EXPERIMENT = "gsa_resnet_fashion_mnist"


def read_tfrecord(path):
  """[(uint8 image [h, w, c], label)] of a TFRecord file in the Model Garden format."""
  examples = []
  for record in tf.data.TFRecordDataset(path):
    example = tf.train.Example.FromString(record.numpy())
    feature = example.features.feature
    image = tf.io.decode_png(feature["image/encoded"].bytes_list.value[0]).numpy()
    examples.append((image, feature["image/class/label"].int64_list.value[0]))
  return examples


@pytest.fixture
def source(tmp_path):
  directory = tmp_path / "idx"
  directory.mkdir()
  return directory


def test_valid_set_round_trips(source, tmp_path):
  sets = idx_files.write_idx_set(source)
  out = tmp_path / "out"
  counts = fashion_mnist.write_tfrecords(str(source), str(out), validation_size=8)
  assert counts == {"train": 32, "validation": 8, "test": 20}
  assert sorted(os.listdir(out)) == [
      f"fashion_mnist-{s}.tfrecord" for s in ("test", "train", "validation")]
  train_x, train_y = sets["train"]
  expected = {"train": (train_x[:32], train_y[:32]),
              "validation": (train_x[32:], train_y[32:]),  # The last 8, in order.
              "test": sets["test"]}
  for split, (images, labels) in expected.items():
    examples = read_tfrecord(fashion_mnist.file_path(str(out), split))
    assert [label for _, label in examples] == labels.tolist()
    for (image, _), original in zip(examples, images):
      assert image.shape == (32, 32, 3)
      np.testing.assert_array_equal(image[2:30, 2:30, 0], original)  # Unchanged.
      assert (image[..., 0] == image[..., 1]).all()
      assert (image[..., 0] == image[..., 2]).all()
      image[2:30, 2:30] = 0
      assert not image.any()  # A black 2-pixel border.
  assert fashion_mnist.count_examples(fashion_mnist.file_path(str(out), "test")) == 20


def test_max_examples_keeps_the_first_images(source, tmp_path):
  sets = idx_files.write_idx_set(source)
  counts = fashion_mnist.write_tfrecords(str(source), str(tmp_path / "out"),
                                         validation_size=4, max_examples=12)
  assert counts == {"train": 8, "validation": 4, "test": 12}
  examples = read_tfrecord(fashion_mnist.file_path(str(tmp_path / "out"), "validation"))
  assert [label for _, label in examples] == sets["train"][1][8:12].tolist()


def _corrupt(source, name, **kwargs):
  idx_files.write_idx(os.path.join(source, name), **kwargs)
  return os.path.join(source, name)


@pytest.mark.parametrize("case, name, message", [
    ("truncated", "train-images-idx3-ubyte.gz",
     r"truncated: 31360 bytes, the header \(40, 28, 28\) needs 31376"),
    ("truncated_gzip", "t10k-labels-idx1-ubyte.gz", "not a complete gzip file"),
    ("wrong_magic", "train-labels-idx1-ubyte.gz", "IDX magic number is 0x00000803"),
    ("mismatched", "t10k-images-idx3-ubyte.gz", "holds 19 images but"),
    ("wrong_shape", "train-images-idx3-ubyte.gz",
     r"items of shape \(27, 28\), expected \(28, 28\)"),
    ("missing", "t10k-images-idx3-ubyte.gz", "no such file"),
])
def test_bad_file_fails_naming_it_and_writes_nothing(source, tmp_path, case, name,
                                                     message):
  sets = idx_files.write_idx_set(source)
  path = os.path.join(source, name)
  if case == "truncated":  # 40 images announced, 39 and a bit present.
    data = idx_files.idx_bytes(sets["train"][0])
    _corrupt(source, name, array=None, payload=data[:16 + 28 * 28 * 40 - 16])
  elif case == "truncated_gzip":
    raw = pathlib.Path(path).read_bytes()
    pathlib.Path(path).write_bytes(raw[:len(raw) // 2])
  elif case == "wrong_magic":
    _corrupt(source, name, array=sets["train"][1], magic=0x00000803)
  elif case == "mismatched":
    _corrupt(source, name, array=sets["test"][0][:19])
  elif case == "wrong_shape":
    _corrupt(source, name, array=sets["train"][0][:, :27])
  else:
    os.remove(path)
  out = tmp_path / "out"
  out.mkdir()
  with pytest.raises(fashion_mnist.IdxError, match=message) as error:
    fashion_mnist.write_tfrecords(str(source), str(out), validation_size=8)
  assert path in str(error.value)
  assert not os.listdir(out)


def test_failure_while_writing_leaves_old_files_and_no_partial_ones(
    source, tmp_path, monkeypatch):
  idx_files.write_idx_set(source)
  out = tmp_path / "out"
  fashion_mnist.write_tfrecords(str(source), str(out), validation_size=8)
  before = {p: p.read_bytes() for p in out.iterdir()}
  idx_files.write_idx_set(source, seed=1)  # New data; writing fails after one split.
  calls = []
  real = digits.write_examples

  def fail_on_second(path, images, labels):
    calls.append(path)
    if len(calls) == 2:
      raise OSError("disk full")
    real(path, images, labels)

  monkeypatch.setattr(digits, "write_examples", fail_on_second)
  with pytest.raises(OSError, match="disk full"):
    fashion_mnist.write_tfrecords(str(source), str(out), validation_size=8)
  assert {p: p.read_bytes() for p in out.iterdir()} == before


def test_bad_validation_size_names_the_argument(source, tmp_path):
  idx_files.write_idx_set(source)
  with pytest.raises(ValueError, match=r"`validation_size` must be in 1\.\.39"):
    fashion_mnist.write_tfrecords(str(source), str(tmp_path), validation_size=40)


def _cli(*flags):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run(
      [sys.executable, "-m", "gsa_keras.data.fashion_mnist", *flags], cwd=REPO,
      env=env, capture_output=True, text=True, timeout=300, check=False)


def test_cli_converts_and_reports_errors_in_one_line(source, tmp_path):
  idx_files.write_idx_set(source)
  out = tmp_path / "out"
  result = _cli(f"--source={source}", f"--output_dir={out}", "--validation_size=8")
  assert result.returncode == 0, result.stderr[-3000:]
  assert f"validation: {out}/fashion_mnist-validation.tfrecord (8 images)" in (
      result.stdout)

  os.remove(source / "train-labels-idx1-ubyte.gz")
  result = _cli(f"--source={source}", f"--output_dir={tmp_path / 'out2'}")
  assert result.returncode == 1
  assert "Traceback" not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("gsa_keras.data.fashion_mnist: error: ")
  assert f"{source}/train-labels-idx1-ubyte.gz: no such file" in last
  assert not (tmp_path / "out2").exists() or not os.listdir(tmp_path / "out2")


def test_default_source_is_debians_package():
  assert fashion_mnist.DEFAULT_SOURCE == "/usr/share/datasets/fashion-mnist"


# -- TFDS and the experiment. ----------------------------------------------------------


def test_tfds_name_validates_and_decodes_like_the_tfrecords():
  params = exp_factory.get_exp_config(EXPERIMENT)
  params.override({"task": {
      "train_data": {"input_path": "", "tfds_name": "fashion_mnist",
                     "tfds_split": "train"},
      "validation_data": {"input_path": "", "tfds_name": "fashion_mnist",
                          "tfds_split": "test"}}}, is_strict=True)
  params.validate()
  decoder = tfds_factory.get_classification_decoder("fashion_mnist")
  raw = np.random.default_rng(0).integers(0, 256, (1, 28, 28), dtype=np.uint8)
  decoded = decoder.decode({"image": tf.constant(raw[0, :, :, None]),
                            "label": tf.constant(7, tf.int64)})
  np.testing.assert_array_equal(decoded["image/encoded"].numpy(),
                                fashion_mnist.to_model_images(raw)[0])
  assert int(decoded["image/class/label"]) == 7


ARM_YAMLS = sorted((REPO / "official_configs" / "fashion_mnist").glob("*.yaml"))


def _load(path):
  params = exp_factory.get_exp_config(EXPERIMENT)
  params = hyperparams.override_params_dict(params, str(path), is_strict=True)
  params.validate()
  return params


def test_experiment_recipe():
  params = exp_factory.get_exp_config(EXPERIMENT)
  params.validate()
  task, trainer = params.task, params.trainer
  assert task.model.input_size == [32, 32, 3] and task.model.num_classes == 10
  assert task.model.backbone.gsa_resnet.model_id == 26
  assert task.train_data.aug_rand_hflip and task.train_data.aug_crop
  assert tuple(task.train_data.crop_area_range) == fm_config.CROP_AREA_RANGE
  assert not task.validation_data.aug_crop and not task.validation_data.aug_rand_hflip
  assert task.train_data.input_path.endswith("fashion_mnist-train.tfrecord")
  assert task.validation_data.input_path.endswith("fashion_mnist-validation.tfrecord")
  assert trainer.validation_steps * task.validation_data.global_batch_size == 5000
  assert (trainer.optimizer_config.learning_rate.cosine.decay_steps ==
          trainer.train_steps == fm_config.TRAIN_STEPS)
  # A learning curve: at least 10 validations, each after a whole training loop.
  assert trainer.train_steps // trainer.validation_interval >= 10
  assert trainer.validation_interval % trainer.steps_per_loop == 0


def test_arm_yamls_change_only_the_backbone():
  # Tables 6, 4, 2, 5 and 3 (local attention, SAN pairwise and patchwise), and the two
  # query normalisations.
  assert len(ARM_YAMLS) == 14
  reference = _load(ARM_YAMLS[0]).as_dict()
  backbones = set()
  for path in ARM_YAMLS:
    params = _load(path).as_dict()
    backbone = params["task"]["model"].pop("backbone")
    backbones.add(repr(backbone))
    expected = dict(reference, task=dict(reference["task"], model=dict(
        reference["task"]["model"])))
    expected["task"]["model"].pop("backbone", None)
    assert params == expected, path.name
    assert backbone["gsa_resnet"]["model_id"] == 26
  assert len(backbones) == 14  # Every arm is a different network.
  conv = _load(REPO / "official_configs/fashion_mnist/resnet26.yaml")
  assert conv.task.model.backbone.gsa_resnet.attention_groups == []
