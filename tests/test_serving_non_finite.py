"""A logit that is not finite is an error in the serving signatures and in
`gsa_keras.predict`, never a NaN answer.

The model is a stand-in whose weights are set to overflow: global average pooling of
the normalised image, then a dense layer with weights of 1e38. A mid-grey image (the
normalisation's mean) gives finite logits, a white one infinite logits and NaN
probabilities, as an overflowing GSA network would.
"""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official.vision.ops import preprocess_ops

from gsa_keras import predict
from gsa_keras.serving import export_lib
from gsa_keras.serving import module as serving_module

EXPERIMENT = "gsa_resnet_digits"  # 32x32 RGB images, 10 classes.
SIZE = 32
GREY = (124, 116, 104)  # ~ the normalisation's mean: pooled features ~ 0.005.
WHITE = (255, 255, 255)  # Pooled features ~ 2.4: logits 2.4 * 3 * 1e38 = inf.


def _overflowing_model():
  inputs = tf_keras.Input([SIZE, SIZE, 3])
  pooled = tf_keras.layers.GlobalAveragePooling2D()(inputs)
  dense = tf_keras.layers.Dense(10, use_bias=False)
  model = tf_keras.Model(inputs, dense(pooled))
  dense.kernel.assign(np.full((3, 10), 1e38, np.float32))
  return model


def _image(colour):
  return np.broadcast_to(np.asarray(colour, np.uint8), (SIZE, SIZE, 3))


def _png(colour):
  return tf.io.encode_png(_image(colour)).numpy()


def _example(encoded):
  feature = {"image/encoded": tf.train.Feature(
      bytes_list=tf.train.BytesList(value=[encoded]))}
  return tf.train.Example(
      features=tf.train.Features(feature=feature)).SerializeToString()


@pytest.fixture(scope="module")
def module():
  return serving_module.ClassifierModule(export_lib.load_params(EXPERIMENT),
                                         model=_overflowing_model())


@pytest.fixture(scope="module")
def saved_model(module, tmp_path_factory):
  export_dir = str(tmp_path_factory.mktemp("non_finite") / "saved_model")
  tf.saved_model.save(module, export_dir, signatures=module.get_inference_signatures(
      dict(serving_module.SIGNATURES)))
  return tf.saved_model.load(export_dir)


def _requests():
  """{signature: (inputs of [grey], inputs of [grey, white, grey, white])}."""
  def batch(colours, wrap):
    return tf.constant(np.stack([wrap(colour) for colour in colours]))
  wraps = {"serving_default": _image, "image_bytes": _png,
           "tf_example": lambda colour: _example(_png(colour))}
  return {key: (batch([GREY], wrap), batch([GREY, WHITE, GREY, WHITE], wrap))
          for key, wrap in wraps.items()}


def test_the_stand_in_overflows_only_on_white(module):
  def logits(colour):
    # The normalisation of the module's preprocessing (the image is already 32x32).
    inputs = preprocess_ops.normalize_image(
        tf.cast(_image(colour), tf.float32), offset=preprocess_ops.MEAN_RGB,
        scale=preprocess_ops.STDDEV_RGB)
    return module.model(inputs[tf.newaxis]).numpy()
  assert np.isinf(logits(WHITE)).all()
  assert np.isfinite(logits(GREY)).all() and np.abs(logits(GREY)).max() > 1e30


@pytest.mark.parametrize("signature", sorted(serving_module.SIGNATURES.values()))
def test_signatures_refuse_non_finite_logits_naming_the_images(saved_model, signature):
  good, bad = _requests()[signature]
  outputs = saved_model.signatures[signature](inputs=good)
  assert np.isfinite(outputs["logits"].numpy()).all()
  assert np.isfinite(outputs["probs"].numpy()).all()
  with pytest.raises(tf.errors.InvalidArgumentError) as error:
    saved_model.signatures[signature](inputs=bad)
  assert ("Non-finite logits (NaN or infinity) for the images at batch positions "
          "[1 3]: the network overflowed on them, so it has no answer for this "
          "request.") in error.value.message


def test_module_functions_refuse_non_finite_logits(module):
  with pytest.raises(tf.errors.InvalidArgumentError, match=r"batch positions \[0\]"):
    module.inference_from_image_tensors(tf.constant(_image(WHITE)[np.newaxis]))


def test_checked_logits_passes_finite_logits_unchanged():
  logits = tf.constant([[1.0, -3e38], [0.0, 2.0]])
  np.testing.assert_array_equal(serving_module.checked_logits(logits), logits)
  for value in (np.nan, np.inf, -np.inf):
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"positions \[1\]"):
      serving_module.checked_logits(tf.constant([[1.0, 2.0], [value, 0.0]]))


def test_tflite_converts_with_builtin_ops_and_leaves_the_check_to_its_caller(
    module, tmp_path):
  """The converter drops the assertion (TFLite's builtin ops cannot fail a call): the
  flatbuffer converts as before and returns the overflow unchecked."""
  path = str(tmp_path / "model.tflite")
  export_lib.export_tflite(module, path)
  interpreter = tf.lite.Interpreter(model_path=path)
  runner = interpreter.get_signature_runner("serving_default")
  outputs = runner(inputs=_image(WHITE)[np.newaxis].copy())
  assert not np.isfinite(outputs["logits"]).any()
  outputs = runner(inputs=_image(GREY)[np.newaxis].copy())
  assert np.isfinite(outputs["probs"]).all()


def test_predict_refuses_an_image_with_non_finite_logits(saved_model, tmp_path):
  grey, white = tmp_path / "grey.png", tmp_path / "white.png"
  grey.write_bytes(_png(GREY))
  white.write_bytes(_png(WHITE))
  serve = saved_model.signatures[predict.SIGNATURE]
  probs = predict.predict(serve, [str(grey)])
  assert probs.shape == (1, 10) and np.isfinite(probs).all()
  with pytest.raises(ValueError) as error:
    predict.predict(serve, [str(grey), str(white)])
  assert str(error.value) == (
      f"--image: cannot classify '{white}': Non-finite logits (NaN or infinity) for "
      "the images at batch positions [0]: the network overflowed on them, so it has "
      "no answer for this request.")


def test_predict_refuses_nan_from_an_export_without_the_check(tmp_path):
  """An older SavedModel answers NaN: `predict` refuses it all the same."""
  image = tmp_path / "grey.png"
  image.write_bytes(_png(GREY))

  def unchecked(inputs):
    del inputs
    return {"logits": tf.constant([[np.inf, 0.0]]), "probs": tf.constant([[np.nan, 0.0]])}

  with pytest.raises(ValueError) as error:
    predict.predict(unchecked, [str(image)])
  assert str(error.value) == (
      f"--image: cannot classify '{image}': Non-finite logits (NaN or infinity): the "
      "network overflowed on this image, so it has no answer.")
  assert predict.NON_FINITE_MESSAGE == serving_module.NON_FINITE_MESSAGE
