"""The classifier's serving module: Model Garden signatures, evaluation preprocessing.

One SavedModel serves every input type of the Model Garden's image classification
export (`official.vision.serving`), each under its own signature:

  serving_default  `inputs`: uint8 images [batch, height, width, 3], any size.
  image_bytes      `inputs`: encoded images (JPEG, PNG, GIF, BMP, WebP) [batch].
  tf_example       `inputs`: serialized `tf.train.Example`s with `image/encoded` [batch].

Each returns `logits` and `probs` [batch, num_classes] (softmax, or sigmoid for
multi-label tasks), float32; a request with a logit that is not finite fails
(INVALID_ARGUMENT) instead (`checked_logits`). Images are cropped and resized to
`task.model.input_size` and normalised inside the graph, as the evaluation input
pipeline does. Encoded images are decoded only if their headers declare at most
`max_image_pixels` pixels, each and all of one request together
(`gsa_keras.serving.image_size`). The model computes in float32 or, with
`precision="bfloat16"`, in bfloat16 with float32 variables (the tf_keras
`mixed_bfloat16` policy; the GSA layers keep their softmaxes in float32).
"""

import contextlib
from typing import Dict, List, Optional

import tensorflow as tf
import tf_keras

from official.vision.modeling import factory
from official.vision.ops import preprocess_ops
from official.vision.serving import export_base
from official.vision.serving import image_classification

from gsa_keras import compat
from gsa_keras.serving import image_size

# Model Garden input type -> signature key.
SIGNATURES = {
    "image_tensor": tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY,
    "image_bytes": "image_bytes",
    "tf_example": "tf_example",
}
INPUT_KEY = "inputs"  # The input name of every signature (the Model Garden's).
NUM_CHANNELS = 3  # RGB images.
# The default limit on the pixels the encoded images of one request decode to.
DEFAULT_MAX_IMAGE_PIXELS = image_size.DEFAULT_MAX_IMAGE_PIXELS
# What the model may compute in -> the tf_keras dtype policy it is built under.
PRECISION_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
PRECISIONS = tuple(PRECISION_POLICIES)
DEFAULT_PRECISION = "float32"


def validate_precision(precision, setting: str = "precision") -> str:
  """`precision` if it is one of `PRECISIONS`.

  Raises:
    ValueError: naming `setting`, the value and the allowed values.
  """
  if not isinstance(precision, str) or precision not in PRECISION_POLICIES:
    raise ValueError(f"{setting} must be one of {', '.join(PRECISIONS)}, got "
                     f"{precision!r}.")
  return precision


@contextlib.contextmanager
def dtype_policy(precision: str):
  """Builds the tf_keras layers made inside the block for `precision`; the global
  policy in force before is restored afterwards."""
  previous = tf_keras.mixed_precision.global_policy()
  tf_keras.mixed_precision.set_global_policy(
      PRECISION_POLICIES[validate_precision(precision)])
  try:
    yield
  finally:
    tf_keras.mixed_precision.set_global_policy(previous)


def build_model(params, batch_size: Optional[int] = None,
                precision: str = DEFAULT_PRECISION) -> tf_keras.Model:
  """The classifier of `params.task.model`, as the Model Garden builds it to serve
  (inputs [batch_size, height, width, 3], no L2 regularizer), computing in
  `precision` whatever the process's global dtype policy."""
  height, width = params.task.model.input_size[:2]
  with dtype_policy(precision):
    return factory.build_classification_model(
        input_specs=tf_keras.layers.InputSpec(
            shape=[batch_size, height, width, NUM_CHANNELS]),
        model_config=params.task.model, l2_regularizer=None)


# The start of the error a request gets when the model's logits are not finite.
NON_FINITE_MESSAGE = "Non-finite logits (NaN or infinity)"


def checked_logits(logits: tf.Tensor) -> tf.Tensor:
  """`logits` [batch, classes] once every entry is finite; else INVALID_ARGUMENT.

  A GSA network in evaluation mode can amplify an unusual image until its logits
  overflow (each module's output grows with the cube of its input's scale once the
  batch norm between its column and row passes uses moving statistics:
  `studies/input_scale.py`), and a softmax of them is NaN: the request fails instead of
  answering NaN. The error names the images' positions in the batch, e.g.
  "Non-finite logits (NaN or infinity) for the images at batch positions [1 3]: ...".

  A plain `Assert` on a formatted string (no control flow, no custom op), so the
  SavedModel stays portable. TFLite's converter drops assertions (its builtin ops
  cannot fail a call), so a TFLite flatbuffer returns such logits unchecked: its
  callers must check them (`numpy.isfinite`).
  """
  finite = tf.reduce_all(tf.math.is_finite(logits), axis=-1)
  positions = tf.cast(tf.reshape(tf.where(tf.logical_not(finite)), [-1]), tf.int32)
  message = tf.strings.format(
      NON_FINITE_MESSAGE + " for the images at batch positions {}: the network "
      "overflowed on them, so it has no answer for this request.", positions,
      summarize=-1)
  check = tf.debugging.Assert(tf.reduce_all(finite), [message], name="check_logits")
  with tf.control_dependencies([check]):
    return tf.identity(logits)


class ClassifierModule(image_classification.ClassificationModule):
  """The Model Garden's `ClassificationModule`, serving several input types at once.

  It differs from the Model Garden's module in seven ways:
  - crop and resize follow `task.validation_data` (`aug_crop`,
    `center_crop_fraction`, `tf_resize_method`), as the evaluation pipeline does,
    where the Model Garden follows `train_data.aug_crop` with a fixed fraction;
  - a decoded image is rounded, not truncated, back to uint8 after resizing, and
    an animated GIF is read as its first frame;
  - `get_inference_signatures` accepts several input types: each is served by a
    module of that type sharing this module's model;
  - every signature checks the shape of its input at run time (a served signature
    checks only the dtype) and rejects an empty batch, with a clear message;
  - `image_bytes` and `tf_example` read each image's size from its header and
    refuse to decode more than `max_image_pixels` pixels per image and per
    request (INVALID_ARGUMENT, giving the size and the limit);
  - the model it builds computes in `precision` (float32 or bfloat16), whatever
    the process's global dtype policy, and `logits` and `probs` are float32 either
    way (the softmax or sigmoid is taken of float32 logits);
  - a request whose logits are not all finite fails (INVALID_ARGUMENT, naming the
    images' batch positions, `checked_logits`) instead of answering NaN.
  """

  def __init__(self, params, *, input_type: str = "image_tensor",
               batch_size: Optional[int] = None, model=None,
               max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
               precision: str = DEFAULT_PRECISION):
    """Initializes the module.

    Args:
      params: The experiment config (`task.model`, `task.validation_data`).
      input_type: `str`, the input type of `serve`'s callers ('image_tensor',
        'image_bytes', 'tf_example' or 'tflite').
      batch_size: `int` batch size of every signature, or None for any.
      model: A `tf_keras.Model` to serve; by default built from `params`.
      max_image_pixels: `int`, the most pixels the encoded images of one request
        may decode to, each and all together (`--max_image_pixels`).
      precision: `str`, what the model built from `params` computes in: one of
        `PRECISIONS` (`--precision`). A given `model` computes as it was built.

    Raises:
      ValueError: `max_image_pixels` is not a positive integer, or `precision` is
        not one of `PRECISIONS` (before any model is built).
    """
    self._max_image_pixels = image_size.validate_max_image_pixels(max_image_pixels)
    self._precision = validate_precision(precision)
    # Kept here too: the Model Garden's base class keeps them in private attributes.
    self._serving_input_type = input_type
    self._serving_batch_size = batch_size
    self._serving_image_size = tuple(params.task.model.input_size[:2])
    if model is None:
      model = build_model(params, batch_size, precision)
    super().__init__(
        params, batch_size=batch_size, input_image_size=self.input_image_size,
        input_type=input_type, num_channels=NUM_CHANNELS, model=model)
    # A bfloat16 model's head gives bfloat16 logits: the signatures return float32,
    # and `serve` takes the softmax of these. The Model Garden's base class sets
    # `inference_step` on the instance (to `model.call`), so it is wrapped there.
    self._model_step = self.inference_step
    self.inference_step = self._float32_logits
    self._siblings = {}  # input type -> module, tracked so their functions live.
    # Saved with the SavedModel, so that clients (gsa_keras.predict) can read it.
    self.max_image_pixels = tf.Variable(
        max_image_pixels, dtype=tf.int64, trainable=False, name="max_image_pixels")

  @property
  def precision(self) -> str:
    """What the module's model was built to compute in (one of `PRECISIONS`)."""
    return self._precision

  @property
  def input_type(self) -> str:
    """The input type of `serve`'s callers ('image_tensor', 'image_bytes', ...)."""
    return self._serving_input_type

  @property
  def batch_size(self) -> Optional[int]:
    """The batch size of every signature, or None for any."""
    return self._serving_batch_size

  @property
  def input_image_size(self) -> List[int]:
    """[height, width] of the model's input images."""
    return list(self._serving_image_size)

  def _float32_logits(self, images: tf.Tensor) -> tf.Tensor:
    return checked_logits(tf.cast(self._model_step(images), tf.float32))

  def _checked(self, inputs: tf.Tensor, inner_shape) -> tf.Tensor:
    """`inputs` after run-time checks: shape [batch] + inner_shape, batch > 0."""
    inputs = tf.ensure_shape(inputs, [self.batch_size] + inner_shape,
                             name="check_inputs_shape")
    nonempty = tf.debugging.assert_positive(
        tf.shape(inputs)[0], message="`inputs` is an empty batch")
    with tf.control_dependencies([nonempty]):
      return tf.identity(inputs)

  @tf.function
  def inference_from_image_tensors(self, inputs):
    return super().inference_from_image_tensors(
        self._checked(inputs, [None, None, NUM_CHANNELS]))

  def _checked_sizes(self, encoded: tf.Tensor) -> tf.Tensor:
    """`encoded` images [batch] once their headers' sizes are within the limit."""
    return image_size.check_images(encoded, self._max_image_pixels)

  @tf.function
  def inference_from_image_bytes(self, inputs):
    return super().inference_from_image_bytes(
        self._checked_sizes(self._checked(inputs, [])))

  @tf.function
  def inference_from_tf_example(self, inputs):
    # Parsed once here, then decoded as `image_bytes` are (the Model Garden's
    # `_decode_tf_example` is `parse_single_example` + `_decode_image`).
    examples = tf.io.parse_example(
        self._checked(inputs, []),
        {"image/encoded": tf.io.FixedLenFeature((), tf.string)})
    return super().inference_from_image_bytes(
        self._checked_sizes(examples["image/encoded"]))

  @compat.overrides(image_classification.ClassificationModule)
  def _crop_and_resize(self, image: tf.Tensor) -> tf.Tensor:
    """Float [h, w, 3] -> [height, width, 3]: the evaluation crop and resize."""
    data = self.params.task.validation_data
    if data.aug_crop:
      image = preprocess_ops.center_crop_image(image, data.center_crop_fraction)
    image = tf.image.resize(image, self.input_image_size,
                            method=data.tf_resize_method)
    return tf.ensure_shape(image, self.input_image_size + [NUM_CHANNELS])

  @compat.overrides(image_classification.ClassificationModule)
  def _decode_image(self, encoded_image_bytes: tf.Tensor) -> tf.Tensor:
    """Encoded image -> uint8 [height, width, 3], cropped and resized.

    Its callers (`inference_from_image_bytes`, `inference_from_tf_example`) check
    the sizes of the whole batch first (`_checked_sizes`).
    """
    image = tf.io.decode_image(encoded_image_bytes, channels=NUM_CHANNELS,
                               expand_animations=False)
    image = self._crop_and_resize(tf.cast(image, tf.float32))
    return tf.cast(tf.round(image), tf.uint8)

  def module_for(self, input_type: str) -> "ClassifierModule":
    """The module serving `input_type` with this module's model (created once)."""
    if input_type == self.input_type:
      return self
    if input_type not in self._siblings:
      self._siblings[input_type] = ClassifierModule(
          self.params, input_type=input_type, batch_size=self.batch_size,
          model=self.model, max_image_pixels=self._max_image_pixels,
          precision=self._precision)
    return self._siblings[input_type]

  def get_inference_signatures(self, function_keys: Dict[str, str]):
    """{signature key: concrete function} for {input type: signature key}."""
    signatures = {}
    for input_type, key in function_keys.items():
      module = self.module_for(input_type)
      signatures.update(export_base.ExportModule.get_inference_signatures(
          module, {input_type: key}))
    return signatures

  def with_precision(self, precision: str) -> "ClassifierModule":
    """This module, or one whose model is built for `precision` and holds this
    model's weights (same params, input type, batch size and image limit)."""
    if validate_precision(precision) == self._precision:
      return self
    other = ClassifierModule(
        self.params, input_type=self.input_type, batch_size=self.batch_size,
        max_image_pixels=self._max_image_pixels, precision=precision)
    other.model.set_weights(self.model.get_weights())
    return other

  def tflite_function(self):
    """`serving_default` on uint8 images of the input size only, with a fixed batch
    size (the module's, else 1): the function a TFLite flatbuffer is made from.

    The converter drops its check of the logits (`checked_logits`): TFLite has no
    builtin op that fails a call, so a flatbuffer's caller checks them itself."""
    spec = tf.TensorSpec(
        [self.batch_size or 1] + self.input_image_size + [NUM_CHANNELS],
        tf.uint8, name=INPUT_KEY)
    module = self.module_for("image_tensor")
    return module.inference_from_image_tensors.get_concrete_function(spec)

  def eval_image(self, encoded_image_bytes: tf.Tensor) -> tf.Tensor:
    """One encoded image as the model evaluates it: uint8 [height, width, 3], size
    checked, decoded, cropped and resized as the `image_bytes` and `tf_example`
    signatures do (their normalisation follows)."""
    checked = self._checked_sizes(tf.reshape(encoded_image_bytes, [1]))
    return self._decode_image(checked[0])
