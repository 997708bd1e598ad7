"""Classifies image files with an exported SavedModel and prints the top classes.

  python -m gsa_keras.predict --saved_model=/tmp/gsa_digits_export \
      --image=gsa_keras/data/samples/digit_7.png

Each file goes through the SavedModel's `image_bytes` signature, so decoding, crop,
resize and normalisation are the exported graph's, and no gsa_keras code runs on the
model. `--labels` names the classes (one per line, in class-index order); without it
the class index is printed. Each file's size is read from its header first, and a file
that would decode to more pixels than the SavedModel accepts (its `max_image_pixels`,
`gsa_keras.serving.image_size`) is refused without being decoded, and an image whose
logits are not finite (NaN or infinity: the network overflowed) is an error, never a
NaN answer.
"""

from typing import List, Optional, Sequence, Tuple

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from gsa_keras import cli
from gsa_keras.serving import image_size

FLAGS = flags.FLAGS
SIGNATURE = "image_bytes"
# `gsa_keras.serving.module.NON_FINITE_MESSAGE`, not imported: that module imports the
# Model Garden, which this command does not need.
NON_FINITE_MESSAGE = "Non-finite logits (NaN or infinity)"


def define_flags():
  flags.DEFINE_string("saved_model", None, "SavedModel directory (gsa_keras.export).")
  flags.DEFINE_multi_string("image", None, "Image file (JPEG, PNG, GIF, BMP).")
  flags.DEFINE_string("labels", None, "Text file of class names, one per line.")
  flags.DEFINE_integer("top_k", 3, "Classes to print per image.")
  flags.mark_flags_as_required(["saved_model", "image"])


def read_labels(path: Optional[str], num_classes: int) -> List[str]:
  """Class names from `path` (one per line), or the class indices."""
  if not path:
    return [str(index) for index in range(num_classes)]
  with tf.io.gfile.GFile(path) as f:
    labels = [line.strip() for line in f if line.strip()]
  if len(labels) != num_classes:
    raise ValueError(f"--labels: {path!r} has {len(labels)} names, the model "
                     f"{num_classes} classes.")
  return labels


def top_k(probs: np.ndarray, k: int) -> List[Tuple[int, float]]:
  """The `k` most probable (class index, probability), most probable first."""
  order = np.argsort(-probs, kind="stable")[:k]
  return [(int(index), float(probs[index])) for index in order]


def _reason(error: tf.errors.OpError) -> str:
  """The line of a graph error that says what is wrong, without node names."""
  noise = ("Graph execution error", "Detected at node", "<stack traces", "[[",
           "File ")
  lines = (line.strip() for line in error.message.splitlines())
  line = next((line for line in lines if line and not line.startswith(noise)),
              error.message)
  assertion = "assertion failed: ["  # The size check's message, from `Assert`.
  if line.startswith(assertion) and line.endswith("]"):
    line = line[len(assertion):-1]
  return line


def max_image_pixels(saved_model) -> int:
  """The decoded-size limit a loaded SavedModel was exported with (older exports,
  which do not record it: the default)."""
  limit = getattr(saved_model, "max_image_pixels", None)
  if limit is None:
    return image_size.DEFAULT_MAX_IMAGE_PIXELS
  return int(limit.numpy())


def read_image_file(path: str) -> bytes:
  """The bytes of an image file.

  Raises:
    ValueError: `path` is a directory, cannot be read, or is empty (naming it).
  """
  if tf.io.gfile.isdir(path):
    raise ValueError(f"--image: {path!r} is a directory, not an image file.")
  try:
    with tf.io.gfile.GFile(path, "rb") as f:
      encoded = f.read()
  except (OSError, tf.errors.OpError) as e:
    reason = e.message if isinstance(e, tf.errors.OpError) else e.strerror or e
    raise ValueError(f"--image: cannot read {path!r}: {reason}") from None
  if not encoded:
    raise ValueError(f"--image: {path!r} is empty, not an image file.")
  return encoded


def check_size(encoded: bytes, limit: int) -> None:
  """Raises InvalidArgumentError if `encoded`'s header declares more than `limit`
  pixels or cannot be read: the serving signatures' check, before decoding."""
  _check_images(tf.constant([encoded]), limit)


_check_images = tf.function(image_size.check_images)


def predict(serve_image_bytes, image_paths: Sequence[str],
            max_pixels: int = image_size.DEFAULT_MAX_IMAGE_PIXELS) -> np.ndarray:
  """Probabilities [len(image_paths), num_classes] from the `image_bytes` signature.

  Args:
    serve_image_bytes: The SavedModel's `image_bytes` signature.
    image_paths: Image files.
    max_pixels: The most pixels an image may decode to (`max_image_pixels`).

  Raises:
    ValueError: A path that is not a readable image file, an image larger than
      `max_pixels`, one the model cannot decode, or one whose logits are not finite
      (naming it).
  """
  rows = []
  for path in image_paths:
    encoded = read_image_file(path)
    try:
      check_size(encoded, max_pixels)
      outputs = serve_image_bytes(inputs=tf.constant([encoded]))
    except tf.errors.InvalidArgumentError as e:
      raise ValueError(f"--image: cannot classify {path!r}: {_reason(e)}") from None
    check_finite(outputs, path)
    rows.append(outputs["probs"].numpy()[0])
  return np.stack(rows)


def check_finite(outputs, path: str) -> None:
  """Raises ValueError naming `path` if a logit or probability is NaN or infinite.

  The serving signatures fail such a request themselves
  (`gsa_keras.serving.module.checked_logits`); this also covers SavedModels exported
  before they did, so that no NaN is printed as an answer.
  """
  # Probabilities are NaN only if logits are not finite (a softmax of finite logits
  # is finite); both are checked in case a signature returns only one.
  if not all(np.all(np.isfinite(np.asarray(outputs[key])))
             for key in ("logits", "probs") if key in outputs):
    raise ValueError(
        f"--image: cannot classify {path!r}: {NON_FINITE_MESSAGE}: the network "
        "overflowed on this image, so it has no answer.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  with cli.command_line_errors("gsa_keras.predict"):
    for path in FLAGS.image:
      if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"--image: no file {path!r}.")
      read_image_file(path)  # A directory, an unreadable or empty file: error now.
    try:
      saved_model = tf.saved_model.load(FLAGS.saved_model)
      serve = saved_model.signatures[SIGNATURE]
    except (OSError, KeyError) as e:
      raise ValueError(f"--saved_model: {FLAGS.saved_model!r} is not a gsa_keras "
                       f"export ({e}).") from None
    probs = predict(serve, FLAGS.image, max_image_pixels(saved_model))
    labels = read_labels(FLAGS.labels, probs.shape[-1])
  for path, row in zip(FLAGS.image, probs):
    print(path)
    for rank, (index, prob) in enumerate(top_k(row, FLAGS.top_k), start=1):
      print(f"  {rank}. {labels[index]}  {prob:.3f}")


def run():
  """Console entry point (`gsa-keras-predict`)."""
  define_flags()
  app.run(main)


if __name__ == "__main__":
  run()
