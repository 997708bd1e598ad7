"""The built-in digits TFRecords and the input pre-flight (gsa_keras.data)."""

import collections

import numpy as np
import pytest
import tensorflow as tf

from official.core import exp_factory

from gsa_keras import registry_imports
from gsa_keras.data import digits
from gsa_keras.data import inputs


@pytest.fixture(scope="module")
def written(tmp_path_factory):
  return digits.write_tfrecords(str(tmp_path_factory.mktemp("digits")))


def _read(path):
  examples = []
  for record in tf.data.TFRecordDataset(path):
    example = tf.train.Example.FromString(record.numpy())
    feature = example.features.feature
    examples.append((feature["image/encoded"].bytes_list.value[0],
                     feature["image/class/label"].int64_list.value[0]))
  return examples


def test_splits_are_the_model_garden_format(written):
  train, validation = _read(written["train"]), _read(written["validation"])
  assert len(validation) == digits.VALIDATION_SIZE
  assert len(train) + len(validation) == 1797
  for encoded, label in train[:5] + validation[:5]:
    image = tf.io.decode_image(encoded)
    assert image.shape == (digits.IMAGE_SIZE, digits.IMAGE_SIZE, 3)
    assert image.dtype == tf.uint8
    assert 0 <= label < digits.NUM_CLASSES
  # Stratified: every class is held out in proportion (36 images each, +-1).
  counts = collections.Counter(label for _, label in validation)
  assert sorted(counts) == list(range(digits.NUM_CLASSES))
  assert max(counts.values()) - min(counts.values()) <= 2


def test_writing_is_deterministic_and_idempotent(written, tmp_path):
  again = digits.write_tfrecords(str(tmp_path))
  for split in digits.SPLITS:
    with open(written[split], "rb") as a, open(again[split], "rb") as b:
      assert a.read() == b.read()
  mtime = tf.io.gfile.stat(again["train"]).mtime_nsec
  digits.write_tfrecords(str(tmp_path))
  assert tf.io.gfile.stat(again["train"]).mtime_nsec == mtime
  assert not [p for p in tmp_path.iterdir() if "partial" in p.name]


def test_upsampling_keeps_the_digit():
  """Each 4x4 block of the 32x32 image tracks its 8x8 source pixel (scaled to 255)."""
  from sklearn import datasets
  source = datasets.load_digits().images[:50]
  images = digits.upsample(source)
  assert images.shape == (50, 32, 32, 3) and images.dtype == np.uint8
  np.testing.assert_array_equal(images[..., 0], images[..., 2])
  blocks = images[..., 0].reshape(50, 8, 4, 8, 4).mean(axis=(2, 4))
  assert np.corrcoef(blocks.ravel(), source.ravel())[0, 1] > 0.95
  assert abs(blocks.max() - 255) < 40 and images.min() == 0


def test_prepare_writes_the_default_digits(tmp_path, monkeypatch):
  monkeypatch.setenv(digits.DATA_DIR_ENV, str(tmp_path))
  params = exp_factory.get_exp_config("gsa_resnet_digits")
  assert params.task.train_data.input_path.startswith(str(tmp_path))
  inputs.prepare(params.task, "train_and_eval")
  for split in digits.SPLITS:
    assert tf.io.gfile.exists(digits.file_path(digits.default_dir(), split))


def test_prepare_names_the_missing_path(tmp_path):
  params = exp_factory.get_exp_config("gsa_resnet_digits")
  missing = str(tmp_path / "nowhere" / "train-*.tfrecord")
  params.override({"task": {"train_data": {"input_path": missing}}})
  with pytest.raises(FileNotFoundError, match=r"task\.train_data\.input_path.*nowhere"):
    inputs.prepare(params.task, "train")


def test_prepare_checks_only_the_splits_the_mode_reads(tmp_path, monkeypatch):
  monkeypatch.setenv(digits.DATA_DIR_ENV, str(tmp_path))
  params = exp_factory.get_exp_config("gsa_resnet_digits")
  params.override({"task": {"train_data": {"input_path": str(tmp_path / "no.rec")}}})
  inputs.prepare(params.task, "eval")
  with pytest.raises(ValueError, match="--mode"):
    inputs.prepare(params.task, "serve")


def test_file_patterns():
  assert inputs.file_patterns("a*, b") == ["a*", "b"]
  assert inputs.file_patterns(["a", "b,c"]) == ["a", "b", "c"]
  assert inputs.file_patterns("") == []
