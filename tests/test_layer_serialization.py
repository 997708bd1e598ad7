"""Serialization round trips in both Keras flavours reproduce outputs exactly."""

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.support import keras_flavours


def _model(keras, layers):
  inputs = keras.Input(shape=(6, 5, 8))
  x = layers.GlobalSelfAttention(
      8, num_heads=2, kernel_regularizer=keras.regularizers.L2(1e-4), name="gsa")(inputs)
  x = layers.GlobalSelfAttention(8, num_heads=4, max_relative_shift=2,
                                 use_content=False, name="positional")(x)
  x = layers.AxialContentPositionalAttention(8, num_heads=2, name="axial")(x)
  return keras.Model(inputs, x)


def _trained_like(model):
  """Non-default weights everywhere, batch norm moving statistics included."""
  rng = np.random.default_rng(0)
  model.set_weights([rng.uniform(0.5, 1.5, size=w.shape) for w in model.get_weights()])
  return model


_X = np.random.default_rng(1).normal(size=(2, 6, 5, 8)).astype(np.float32)


@pytest.mark.parametrize("layer_name", ["gsa", "positional", "axial"])
def test_get_config_round_trip(flavour, layer_name):
  keras, layers = flavour
  model = _trained_like(_model(keras, layers))
  layer = model.get_layer(layer_name)
  clone = type(layer).from_config(layer.get_config())
  assert clone.get_config() == layer.get_config()
  x = layer.input
  clone.build(tuple(x.shape))
  clone.set_weights(layer.get_weights())
  features = keras.Model(model.input, x)(_X)
  np.testing.assert_array_equal(clone(features, training=False),
                                layer(features, training=False))
  if layer_name == "gsa":
    assert len(clone.losses) == 3  # The L2 regularizer on the kernel and both tables.


def test_keras3_file_round_trip(tmp_path):
  keras, layers = keras_flavours.FLAVOURS["keras3"]
  model = _trained_like(_model(keras, layers))
  path = str(tmp_path / "model.keras")
  model.save(path)
  loaded = keras.models.load_model(path)
  np.testing.assert_array_equal(loaded.predict(_X, verbose=0), model.predict(_X, verbose=0))


@pytest.mark.parametrize("save_format", ["h5", "tf"])
def test_tf_keras_file_round_trip(tmp_path, save_format):
  keras, layers = keras_flavours.FLAVOURS["tf_keras"]
  model = _trained_like(_model(keras, layers))
  path = str(tmp_path / ("model.h5" if save_format == "h5" else "saved_model"))
  model.save(path, save_format=save_format)
  loaded = keras.models.load_model(path)
  assert type(loaded.get_layer("gsa")) is type(model.get_layer("gsa"))
  np.testing.assert_array_equal(loaded.predict(_X, verbose=0), model.predict(_X, verbose=0))


@pytest.mark.parametrize("legacy", ["1", ""])
def test_default_flavour_follows_tf_keras(legacy):
  """`gsa_keras.layers` gives layers of whatever Keras `tf.keras` is in the process."""
  code = ("import tensorflow as tf; from gsa_keras import layers; "
          "assert issubclass(layers.GlobalSelfAttention, tf.keras.layers.Layer); "
          "m = tf.keras.Sequential([tf.keras.Input((4, 4, 8)), "
          "layers.GlobalSelfAttention(8)]); assert len(m.weights) == 7, m.weights; "
          "print(layers.GlobalSelfAttention.__module__)")
  env = dict(os.environ, TF_USE_LEGACY_KERAS=legacy, TF_CPP_MIN_LOG_LEVEL="3")
  result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  expected = "gsa_keras.layers.tf_keras" if legacy else "gsa_keras.layers.keras3"
  assert result.stdout.strip().splitlines()[-1] == expected
