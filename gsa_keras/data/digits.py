"""scikit-learn's 8x8 digits as Model Garden TFRecords: the data of the CPU default.

The 1,797 handwritten digits ship inside scikit-learn, so nothing is downloaded. Each
image is scaled to 0..255, upsampled (bilinear) to 32x32, stored as a 3-channel PNG in
the Model Garden classification `tf.Example` format (`image/encoded`,
`image/class/label`) and read back by the stock `official.vision` input pipeline.
A fixed, stratified split holds out `VALIDATION_SIZE` images for evaluation.

Files are written once per directory, atomically (a temporary file, then a rename), so
concurrent workers may all call `write_tfrecords`. Command line:

  python -m gsa_keras.data.digits --output_dir=/tmp/digits
"""

import os
import uuid

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

IMAGE_SIZE = 32
NUM_CLASSES = 10
VALIDATION_SIZE = 360  # 20% of 1,797, stratified by class.
SPLITS = ("train", "validation")
DATA_DIR_ENV = "GSA_KERAS_DATA_DIR"
_SEED = 0
_MAX_PIXEL = 16.0  # scikit-learn's digits are integers in 0..16.


def default_dir() -> str:
  """`$GSA_KERAS_DATA_DIR/digits`, by default `~/.cache/gsa_keras/digits`."""
  root = os.environ.get(DATA_DIR_ENV) or os.path.join(
      os.path.expanduser("~"), ".cache", "gsa_keras")
  return os.path.join(root, "digits")


def file_path(data_dir: str, split: str) -> str:
  """The TFRecord file of `split` ('train' or 'validation') in `data_dir`."""
  if split not in SPLITS:
    raise ValueError(f"`split` must be one of {SPLITS}, got {split!r}.")
  return os.path.join(data_dir, f"digits-{split}.tfrecord")


def upsample(images: np.ndarray) -> np.ndarray:
  """[n, 8, 8] digits in 0..16 -> uint8 [n, 32, 32, 3] (bilinear, gray as RGB)."""
  images = np.asarray(images, np.float32)[..., None] * (255.0 / _MAX_PIXEL)
  images = tf.image.resize(images, [IMAGE_SIZE, IMAGE_SIZE], method="bilinear")
  images = np.round(np.clip(images.numpy(), 0.0, 255.0)).astype(np.uint8)
  return np.repeat(images, 3, axis=-1)


def load_splits():
  """{split: (uint8 images [n, 32, 32, 3], int64 labels [n])}, deterministic."""
  from sklearn import datasets
  from sklearn import model_selection
  digits = datasets.load_digits()
  images = upsample(digits.images)
  labels = np.asarray(digits.target, np.int64)
  train_x, val_x, train_y, val_y = model_selection.train_test_split(
      images, labels, test_size=VALIDATION_SIZE, stratify=labels,
      random_state=_SEED)
  return {"train": (train_x, train_y), "validation": (val_x, val_y)}


def _example(image: np.ndarray, label: int) -> bytes:
  feature = {
      "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[tf.io.encode_png(image).numpy()])),
      "image/format": tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[b"png"])),
      "image/class/label": tf.train.Feature(
          int64_list=tf.train.Int64List(value=[int(label)])),
  }
  return tf.train.Example(
      features=tf.train.Features(feature=feature)).SerializeToString()


def write_examples(path: str, images, labels) -> None:
  """Writes uint8 [n, h, w, 3] `images` and their `labels` to the TFRecord file `path`,
  one PNG-encoded `tf.Example` each (the format the Model Garden input pipeline reads)."""
  with tf.io.TFRecordWriter(path) as writer:
    for image, label in zip(images, labels):
      writer.write(_example(image, label))


def write_tfrecords(data_dir: str) -> dict:
  """Writes any missing split file into `data_dir`; returns {split: path}."""
  paths = {split: file_path(data_dir, split) for split in SPLITS}
  if all(tf.io.gfile.exists(path) for path in paths.values()):
    return paths
  tf.io.gfile.makedirs(data_dir)
  for split, (images, labels) in load_splits().items():
    if tf.io.gfile.exists(paths[split]):
      continue
    partial = f"{paths[split]}.partial-{uuid.uuid4().hex}"
    write_examples(partial, images, labels)
    tf.io.gfile.rename(partial, paths[split], overwrite=True)
  return paths


def main(argv):
  del argv
  for split, path in write_tfrecords(flags.FLAGS.output_dir).items():
    print(f"{split}: {path}")


def run():
  """Console entry point."""
  flags.DEFINE_string("output_dir", default_dir(),
                      "Directory for digits-{train,validation}.tfrecord.")
  app.run(main)


if __name__ == "__main__":
  run()
