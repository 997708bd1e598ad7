"""Small IDX files (the format Fashion-MNIST ships in) that the tests write."""

import gzip
import os
import pathlib

import numpy as np

from gsa_keras.data import fashion_mnist


def idx_bytes(array: np.ndarray, magic=None) -> bytes:
  """An IDX file's bytes: magic number, big-endian sizes, then the uint8 data."""
  array = np.asarray(array, np.uint8)
  if magic is None:
    magic = 0x0800 + array.ndim
  header = magic.to_bytes(4, "big") + b"".join(
      d.to_bytes(4, "big") for d in array.shape)
  return header + array.tobytes()


def write_idx(path, array, magic=None, payload=None) -> None:
  """Writes a gzipped IDX file (or `payload`, gzipped, instead of the array's)."""
  data = idx_bytes(array, magic) if payload is None else payload
  pathlib.Path(path).write_bytes(gzip.compress(data))


def write_idx_set(directory, train_count=40, test_count=20, seed=0):
  """Random images and labels in the four standard files; returns the arrays."""
  rng = np.random.default_rng(seed)
  sets = {}
  for split, count in (("train", train_count), ("test", test_count)):
    images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, count, dtype=np.uint8)
    images_name, labels_name = fashion_mnist.SOURCE_FILES[split]
    write_idx(os.path.join(directory, images_name), images)
    write_idx(os.path.join(directory, labels_name), labels)
    sets[split] = (images, labels)
  return sets
