"""Fashion-MNIST (Xiao et al. 2017) as Model Garden TFRecords, for `studies/fashion_mnist.py`.

The four standard IDX files (`train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`,
`t10k-images-idx3-ubyte.gz`, `t10k-labels-idx1-ubyte.gz`) hold 60,000 training and
10,000 test images, 28x28 grayscale, 10 classes. On Debian and Ubuntu they come from
the package `dataset-fashion-mnist` (`apt-get install dataset-fashion-mnist`), in
`DEFAULT_SOURCE`.

Each image is placed, unchanged, in the middle of a black 32x32 canvas (2 pixels each
side: the network's input size must be a multiple of 32, and Fashion-MNIST's
background is black, so no pixel is interpolated), repeated to 3 channels and written
in the same `tf.Example` format as `gsa_keras.data.digits` (`image/encoded` PNG,
`image/class/label`). Three splits:

- `train`: the first 55,000 training images;
- `validation`: the last `VALIDATION_SIZE` (5,000) training images, held out for
  choices while developing;
- `test`: the 10,000 test images, for the final numbers only.

Every input file is read and checked (gzip stream, IDX magic number, shape, length,
labels in 0..9, as many images as labels) before anything is written; the splits are
written to temporary names and renamed only once all are complete, so a failure leaves
no partial TFRecords behind. Command line:

  python -m gsa_keras.data.fashion_mnist --source=/usr/share/datasets/fashion-mnist \
      --output_dir=/tmp/fashion_mnist

`register_tfds_decoder()` lets the Model Garden read TFDS `fashion_mnist` the same way
(`tfds_name: fashion_mnist`): same canvas, same channels.
"""

import gzip
import os
import uuid
import zlib
from typing import Dict, Optional, Tuple

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from gsa_keras.data import digits

DEFAULT_SOURCE = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist.
TFDS_NAME = "fashion_mnist"
RAW_SIZE = 28
IMAGE_SIZE = 32
NUM_CLASSES = 10
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
               "Shirt", "Sneaker", "Bag", "Ankle boot")
TRAIN_SIZE = 60_000
TEST_SIZE = 10_000
VALIDATION_SIZE = 5_000
SPLITS = ("train", "validation", "test")
# The source files of each IDX set: (images, labels).
SOURCE_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
# IDX magic numbers: two zero bytes, the type (0x08 = unsigned byte), the rank.
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
_PAD = (IMAGE_SIZE - RAW_SIZE) // 2


class IdxError(ValueError):
  """A missing, truncated or malformed IDX file, or a mismatched images/labels pair."""


def default_dir() -> str:
  """`$GSA_KERAS_DATA_DIR/fashion_mnist`, by default `~/.cache/gsa_keras/fashion_mnist`."""
  return os.path.join(os.path.dirname(digits.default_dir()), "fashion_mnist")


def file_path(data_dir: str, split: str) -> str:
  """The TFRecord file of `split` ('train', 'validation' or 'test') in `data_dir`."""
  if split not in SPLITS:
    raise ValueError(f"`split` must be one of {SPLITS}, got {split!r}.")
  return os.path.join(data_dir, f"fashion_mnist-{split}.tfrecord")


def _read_bytes(path: str) -> bytes:
  if not os.path.isfile(path):
    raise IdxError(f"{path}: no such file (the IDX files come from "
                   f"`apt-get install dataset-fashion-mnist`, in {DEFAULT_SOURCE}).")
  try:
    with open(path, "rb") as f:
      data = f.read()
    return gzip.decompress(data) if path.endswith(".gz") else data
  except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as e:
    raise IdxError(f"{path}: not a complete gzip file ({e}).") from None


def read_idx(path: str, magic: int, item_shape: Tuple[int, ...] = ()) -> np.ndarray:
  """The uint8 array of an IDX file (gzipped if its name ends with .gz).

  Args:
    path: the file.
    magic: the expected magic number, `IMAGES_MAGIC` or `LABELS_MAGIC`.
    item_shape: the expected shape of one item, e.g. (28, 28) for images.

  Returns:
    uint8 array [n, *item_shape].

  Raises:
    IdxError naming `path` if the file is missing, not valid gzip, has another magic
    number or item shape, or holds fewer or more bytes than its header says.
  """
  data = _read_bytes(path)
  rank = magic & 0xFF
  header_size = 4 + 4 * rank
  if len(data) < header_size:
    raise IdxError(f"{path}: truncated: {len(data)} bytes, shorter than the "
                   f"{header_size}-byte IDX header.")
  found = int.from_bytes(data[:4], "big")
  if found != magic:
    raise IdxError(f"{path}: IDX magic number is {found:#010x}, expected "
                   f"{magic:#010x} (unsigned bytes, rank {rank}).")
  shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank))
  if shape[1:] != tuple(item_shape):
    raise IdxError(f"{path}: items of shape {shape[1:]}, expected {tuple(item_shape)}.")
  expected = header_size + int(np.prod(shape))
  if len(data) != expected:
    state = "truncated" if len(data) < expected else "too long"
    raise IdxError(f"{path}: {state}: {len(data)} bytes, the header {shape} needs "
                   f"{expected}.")
  return np.frombuffer(data, np.uint8, offset=header_size).reshape(shape)


def load_idx_set(source: str, split: str) -> Tuple[np.ndarray, np.ndarray]:
  """(uint8 images [n, 28, 28], int64 labels [n]) of the 'train' or 'test' IDX pair,
  checked: as many images as labels, labels in 0..9; IdxError names the file."""
  if split not in SOURCE_FILES:
    raise ValueError(f"`split` must be one of {sorted(SOURCE_FILES)}, got {split!r}.")
  images_path, labels_path = (os.path.join(source, name) for name in SOURCE_FILES[split])
  images = read_idx(images_path, IMAGES_MAGIC, (RAW_SIZE, RAW_SIZE))
  labels = read_idx(labels_path, LABELS_MAGIC)
  if len(images) != len(labels):
    raise IdxError(f"{images_path} holds {len(images)} images but {labels_path} holds "
                   f"{len(labels)} labels.")
  if labels.size and labels.max() >= NUM_CLASSES:
    raise IdxError(f"{labels_path}: label {labels.max()} is out of 0..{NUM_CLASSES - 1}.")
  return images, labels.astype(np.int64)


def to_model_images(images: np.ndarray) -> np.ndarray:
  """uint8 [n, 28, 28] -> uint8 [n, 32, 32, 3]: centred on black, gray as RGB."""
  images = np.pad(np.asarray(images, np.uint8),
                  [(0, 0), (_PAD, _PAD), (_PAD, _PAD)])
  return np.repeat(images[..., None], 3, axis=-1)


def load_splits(source: str, validation_size: int = VALIDATION_SIZE,
                max_examples: Optional[int] = None) -> Dict[str, tuple]:
  """{split: (uint8 images [n, 32, 32, 3], int64 labels [n])} for `SPLITS`.

  Args:
    source: directory of the four IDX files.
    validation_size: how many of the last training images form the validation split.
    max_examples: keep only the first this many images of each IDX set (small runs).
  """
  if max_examples is not None and max_examples <= 0:
    raise ValueError(f"`max_examples` must be positive, got {max_examples}.")
  sets = {name: load_idx_set(source, name) for name in SOURCE_FILES}
  if max_examples is not None:
    sets = {name: (x[:max_examples], y[:max_examples]) for name, (x, y) in sets.items()}
  train_x, train_y = sets["train"]
  if not 0 < validation_size < len(train_x):
    raise ValueError(f"`validation_size` must be in 1..{len(train_x) - 1} (the "
                     f"training set has {len(train_x)} images), got {validation_size}.")
  cut = len(train_x) - validation_size
  return {"train": (to_model_images(train_x[:cut]), train_y[:cut]),
          "validation": (to_model_images(train_x[cut:]), train_y[cut:]),
          "test": (to_model_images(sets["test"][0]), sets["test"][1])}


def write_tfrecords(source: str, output_dir: str,
                    validation_size: int = VALIDATION_SIZE,
                    max_examples: Optional[int] = None) -> Dict[str, int]:
  """Converts the IDX files in `source` into `output_dir`; returns {split: count}.

  All inputs are checked before anything is written; the three files appear together
  (temporary names, renamed at the end) and existing ones are replaced.
  """
  splits = load_splits(source, validation_size, max_examples)
  tf.io.gfile.makedirs(output_dir)
  token = uuid.uuid4().hex
  partial = {split: f"{file_path(output_dir, split)}.partial-{token}"
             for split in SPLITS}
  try:
    for split, (images, labels) in splits.items():
      digits.write_examples(partial[split], images, labels)
    for split in SPLITS:
      tf.io.gfile.rename(partial[split], file_path(output_dir, split), overwrite=True)
  finally:
    for path in partial.values():
      if tf.io.gfile.exists(path):
        tf.io.gfile.remove(path)
  return {split: len(labels) for split, (_, labels) in splits.items()}


def count_examples(path: str) -> int:
  """The number of records in a TFRecord file."""
  return sum(1 for _ in tf.data.TFRecordDataset(path))


# -- TFDS: `tfds_name: fashion_mnist` in a Model Garden config. ----------------------


def register_tfds_decoder() -> None:
  """Makes the Model Garden read TFDS `fashion_mnist` as the TFRecords read: the
  28x28 image centred on a black 32x32 canvas, as 3 channels (its stock decoders
  cover only cifar10, cifar100 and imagenet2012)."""
  from official.vision.dataloaders import decoder
  from official.vision.dataloaders import tfds_classification_decoders

  class FashionMnistTfdsDecoder(decoder.Decoder):
    """TFDS `fashion_mnist` {'image': [28, 28, 1], 'label'} -> the parser's fields."""

    def decode(self, serialized_example):
      image = tf.image.grayscale_to_rgb(tf.cast(serialized_example["image"], tf.uint8))
      image = tf.image.pad_to_bounding_box(image, _PAD, _PAD, IMAGE_SIZE, IMAGE_SIZE)
      # A decoded uint8 image: the classification parser uses it as it is.
      return {"image/encoded": image,
              "image/class/label": serialized_example["label"]}

  tfds_classification_decoders.TFDS_ID_TO_DECODER_MAP.setdefault(
      TFDS_NAME, FashionMnistTfdsDecoder)


# -- Command line. -------------------------------------------------------------------


def main(argv):
  if len(argv) > 1:
    raise SystemExit(f"gsa_keras.data.fashion_mnist: error: unexpected arguments "
                     f"{argv[1:]}; use --source=DIR --output_dir=DIR.")
  FLAGS = flags.FLAGS  # noqa: N806 absl's name for the parsed flags
  try:
    counts = write_tfrecords(FLAGS.source, FLAGS.output_dir, FLAGS.validation_size)
  except (ValueError, OSError) as e:
    raise SystemExit(f"gsa_keras.data.fashion_mnist: error: {e}") from None
  for split, count in counts.items():
    print(f"{split}: {file_path(FLAGS.output_dir, split)} ({count} images)")


def run():
  """Console entry point."""
  flags.DEFINE_string("source", DEFAULT_SOURCE,
                      "Directory of the four Fashion-MNIST IDX .gz files.")
  flags.DEFINE_string("output_dir", default_dir(),
                      "Directory for fashion_mnist-{train,validation,test}.tfrecord.")
  flags.DEFINE_integer("validation_size", VALIDATION_SIZE,
                       "Last training images held out as the validation split.")
  app.run(main)


if __name__ == "__main__":
  run()
