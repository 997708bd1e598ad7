"""Attention maps of a GSA module, on the small default model.

The positional weights are checked against `q . P` computed with the NumPy reference
(`tests/support/reference.py`) from the layer's kernel and relative embedding tables; the
content weights against the definition of a softmax over the pixels.
"""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official.vision.ops import preprocess_ops

from gsa_keras import runs
from gsa_keras import visualize
from gsa_keras.data import digits
from tests.support import reference

REPO = pathlib.Path(__file__).resolve().parents[1]
EXPERIMENT = "gsa_resnet_digits"
HEADS = 8


@pytest.fixture(scope="module")
def digits_model():
  """The experiment's model, built by its task as training builds it."""
  return runs.build_model(runs.load_params(EXPERIMENT))


@pytest.fixture(scope="module")
def checkpoint_dir(digits_model, tmp_path_factory):
  directory = tmp_path_factory.mktemp("digits_checkpoint")
  tf.train.Checkpoint(model=digits_model).save(str(directory / "ckpt"))
  return directory


@pytest.fixture(scope="module")
def digit():
  images, _ = digits.load_splits()["validation"]
  return images[0]


def _layer(model, name):
  return model.backbone.get_layer(name)


def _numpy_features(model, layer, image):
  """The layer's input for `image`, normalized here with NumPy."""
  normalized = ((image.astype(np.float32) - np.array(preprocess_ops.MEAN_RGB)) /
                np.array(preprocess_ops.STDDEV_RGB))
  extractor = tf_keras.Model(model.backbone.inputs, layer.get_input_at(0))
  return extractor(normalized[np.newaxis].astype(np.float32)).numpy()[0]


def _numpy_positional_weights(layer, features, row, column):
  """S for one pixel along its column and its row: q . R[i - x], by the reference."""
  kernel = layer.kqv_kernel.numpy()
  value_dim = layer.filters // HEADS
  key_dim = (kernel.shape[-1] - value_dim) // (2 if layer.use_content else 1)
  _, queries, _ = reference.split_kqv(
      reference.kqv_projection(features[np.newaxis, row:row + 1, column:column + 1],
                               kernel), key_dim, value_dim, layer.use_content)
  query = queries[0, 0, 0]  # (heads, key channels)
  height, width = features.shape[:2]
  result = {}
  for axis, length, position in (("column", height, row), ("row", width, column)):
    table = getattr(layer, f"{axis}_embeddings").numpy()
    reach = (table.shape[0] - 1) // 2
    weights = np.zeros((HEADS, length))
    for other in range(length):
      if abs(other - position) <= reach:
        weights[:, other] = query @ reference.relative_embedding(table, other - position)
    result[axis] = weights
  return result


@pytest.mark.parametrize("layer_name,feature_size", [
    ("group1_block1_attention", (8, 8)),
    ("group2_block2_attention", (4, 4)),
])
def test_maps_have_the_layers_shapes(digits_model, digit, layer_name, feature_size):
  maps = visualize.attention_maps(digits_model, digit, (31, 0), layer_name)
  layer = _layer(digits_model, layer_name)
  height, width = feature_size
  key_dim = layer.kqv_kernel.shape[0] // HEADS  # Keys as wide as the module's input.
  assert maps.layer == layer_name
  assert maps.feature_size == feature_size
  assert maps.pixel == (height - 1, 0)
  assert maps.column.shape == (HEADS, height)
  assert maps.row.shape == (HEADS, width)
  assert maps.content.shape == (HEADS, key_dim, height, width)
  heat = maps.heat_maps()
  assert set(heat) == {"column", "row", "content"}
  for values in heat.values():
    assert values.shape == (HEADS, 32, 32)
  # Nearest-neighbour upsampling: each feature pixel covers a block of image pixels.
  block = 32 // height
  np.testing.assert_array_equal(heat["content"][:, ::block, ::block],
                                maps.content.mean(axis=1))
  np.testing.assert_array_equal(heat["content"][:, block - 1::block, block - 1::block],
                                maps.content.mean(axis=1))


def test_content_weights_of_each_head_sum_to_one(digits_model, digit):
  maps = visualize.attention_maps(digits_model, digit, (16, 16))
  assert (maps.content >= 0).all()
  np.testing.assert_allclose(maps.content.sum(axis=(2, 3)), 1.0, rtol=1e-5)
  # Each head's picture is the mean over its key channels: still a distribution.
  np.testing.assert_allclose(maps.content.mean(axis=1).sum(axis=(1, 2)), 1.0, rtol=1e-5)


@pytest.mark.parametrize("layer_name,pixel", [
    ("group1_block1_attention", (12, 20)),
    ("group1_block1_attention", (0, 31)),
    ("group3_block2_attention", (30, 3)),
])
def test_positional_weights_are_q_dot_p(digits_model, digit, layer_name, pixel):
  maps = visualize.attention_maps(digits_model, digit, pixel, layer_name)
  layer = _layer(digits_model, layer_name)
  features = _numpy_features(digits_model, layer, digit)
  expected = _numpy_positional_weights(layer, features, *maps.pixel)
  np.testing.assert_allclose(maps.column, expected["column"], rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(maps.row, expected["row"], rtol=1e-4, atol=1e-5)


def test_heat_maps_put_positional_weights_on_the_pixels_column_and_row(digits_model,
                                                                      digit):
  maps = visualize.attention_maps(digits_model, digit, (12, 20))
  assert maps.pixel == (3, 5)  # 32x32 image, 8x8 feature map: 4x4 image pixels each.
  heat = maps.heat_maps()
  column = heat["column"]
  assert np.isnan(column[:, :, :20]).all() and np.isnan(column[:, :, 24:]).all()
  np.testing.assert_array_equal(column[:, ::4, 20], maps.column)
  row = heat["row"]
  assert np.isnan(row[:, :12]).all() and np.isnan(row[:, 16:]).all()
  np.testing.assert_array_equal(row[:, 12, ::4], maps.row)


def test_variants_without_a_term_have_no_map(flavour):
  keras, gsa_layers = flavour
  inputs = keras.Input((6, 6, 3))
  features = keras.layers.Conv2D(16, 1)(inputs)
  outputs = gsa_layers.GlobalSelfAttention.from_variant(
      "positional", 16, num_heads=4, name="gsa")(features)
  model = keras.Model(inputs, outputs)
  image = np.random.default_rng(0).integers(0, 256, (6, 6, 3), dtype=np.uint8)
  maps = visualize.attention_maps(model, image, (2, 3),
                                  preprocess=lambda x: tf.cast(x, tf.float32) / 255)
  assert maps.content is None
  assert maps.column.shape == (4, 6) and maps.row.shape == (4, 6)
  assert set(maps.heat_maps()) == {"column", "row"}


def test_bad_pixel_and_layer_raise(digits_model, digit):
  with pytest.raises(ValueError, match="outside the 32x32 image"):
    visualize.attention_maps(digits_model, digit, (32, 0))
  with pytest.raises(ValueError, match="No GSA layer named 'nope'"):
    visualize.attention_maps(digits_model, digit, (0, 0), "nope")


def test_saved_pngs_are_readable(digits_model, digit, tmp_path):
  maps = visualize.attention_maps(digits_model, digit, (12, 20))
  paths = visualize.save_attention_maps(maps, str(tmp_path))
  assert [os.path.basename(p) for p in paths] == [
      f"group1_block1_attention_{kind}.png" for kind in ("column", "row", "content")]
  for path in paths:
    image = tf.io.decode_png(tf.io.read_file(path), channels=3).numpy().astype(int)
    assert image.shape[0] > 100 and image.shape[1] > 100
    # The heat map is drawn in colour over the grey digit: some pixels are not grey.
    colourful = (np.abs(image[..., 0] - image[..., 2]) > 60).mean()
    assert colourful > 0.02, path


def test_load_model_restores_the_checkpoint(digits_model, checkpoint_dir, digit):
  params = runs.load_params(EXPERIMENT)
  restored = runs.load_model(params, str(checkpoint_dir))
  for saved, loaded in zip(digits_model.weights, restored.weights):
    np.testing.assert_array_equal(saved.numpy(), loaded.numpy())
  fresh = runs.build_model(params)  # Initialized differently.
  assert not all(np.array_equal(a.numpy(), b.numpy())
                 for a, b in zip(digits_model.weights, fresh.weights))
  with pytest.raises(FileNotFoundError, match="--checkpoint_path: .*no checkpoint"):
    runs.load_model(params, str(checkpoint_dir / "missing"))


def test_images_are_cropped_as_the_evaluation_crops_them(digits_model, tmp_path):
  """With a centre crop of half the side, a frame around the image is cut away."""
  params = runs.load_params(EXPERIMENT, params_override={"task": {"validation_data": {
      "aug_crop": True, "center_crop_fraction": 0.5}}})
  framed = np.full((64, 64, 3), 255, np.uint8)
  framed[16:48, 16:48] = 0
  path = tmp_path / "framed.png"
  tf.io.write_file(str(path), tf.io.encode_png(framed))
  image = visualize.load_image(str(path), params, digits_model)
  np.testing.assert_array_equal(image, np.zeros((32, 32, 3), np.uint8))
  # Without the crop, the frame would be resized into the picture.
  plain = visualize.load_image(str(path), runs.load_params(EXPERIMENT), digits_model)
  assert plain.max() == 255 and plain[16, 16].max() == 0


def test_run_config_files_of_a_checkpoint_prefix(tmp_path):
  (tmp_path / "params.yaml").write_text("task: {}\n")
  expected = [str(tmp_path / "params.yaml")]
  assert runs.run_config_files(str(tmp_path)) == expected
  assert runs.run_config_files(str(tmp_path / "ckpt-2")) == expected
  assert runs.run_config_files(str(tmp_path / "ckpt-2"), ["mine.yaml"]) == ["mine.yaml"]
  assert runs.run_config_files(str(tmp_path / "elsewhere" / "ckpt-2")) == []


def _visualize(*flags, check=True):
  environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run([sys.executable, "-m", "gsa_keras.visualize", *flags], cwd=REPO,
                        env=environment, capture_output=True, text=True, check=check,
                        timeout=600)


def test_command_errors_are_one_line(tmp_path):
  result = _visualize(f"--checkpoint_path={tmp_path}", "--image=nowhere.png",
                      check=False)
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1] == (
      "gsa_keras.visualize: error: --image: no file 'nowhere.png'.")
  assert "Traceback" not in result.stderr
  result = _visualize(f"--checkpoint={tmp_path}", "--layer=list", check=False)
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1].startswith(
      f"gsa_keras.visualize: error: --checkpoint_path: directory '{tmp_path}' holds no "
      "checkpoint")
  assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_command_draws_maps_of_a_model_trained_by_the_entry_point(digit, short_run,
                                                                  tmp_path):
  """From a checkpoint prefix of a `gsa_keras.train` run unlike the default (the shared
  short run: attention in groups 3-4 only): the run's params.yaml is found."""
  out_dir, image_path = tmp_path / "maps", tmp_path / "digit.png"
  tf.io.write_file(str(image_path), tf.io.encode_png(digit))
  # Its first checkpoint, not its latest: the prefix is what names the run.
  prefix = tf.train.get_checkpoint_state(
      str(short_run.check().model_dir)).all_model_checkpoint_paths[0]
  listed = _visualize(f"--checkpoint={prefix}", "--layer=list").stdout.split()
  assert listed == ["group3_block1_attention", "group3_block2_attention",
                    "group3_block3_attention", "group3_block4_attention",
                    "group4_block1_attention"]
  written = _visualize(f"--checkpoint_path={prefix}", f"--image={image_path}",
                       "--pixel=12,20", "--layer=group3_block2_attention",
                       f"--out={out_dir}").stdout.split()
  assert [os.path.basename(p) for p in written] == [
      f"group3_block2_attention_{kind}.png" for kind in ("column", "row", "content")]
  for path in written:
    assert tf.io.decode_png(tf.io.read_file(path)).shape[0] > 100
