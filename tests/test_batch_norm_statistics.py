"""`gsa_keras.layers.recalibrate_batch_norm`: moving statistics from the final weights."""

import numpy as np
import pytest

from gsa_keras.layers import recalibrate_batch_norm
from gsa_keras.layers import statistics


def _dense_model(keras):
  inputs = keras.Input((4,))
  return keras.Model(inputs, keras.layers.BatchNormalization(momentum=0.99)(inputs))


def test_moving_statistics_become_the_mean_batch_statistics(flavour):
  keras, _ = flavour
  model = _dense_model(keras)
  rng = np.random.default_rng(0)
  data = (rng.normal(size=(200, 4)) * [1, 2, 3, 4] + [5, -1, 0, 2]).astype(np.float32)
  assert recalibrate_batch_norm(model, data, batch_size=64) == 3  # 8 images left out.
  (norm,) = statistics.batch_norm_layers(model)
  batches = data[:192].reshape(3, 64, 4)
  np.testing.assert_allclose(norm.moving_mean.numpy(), batches.mean(1).mean(0),
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(norm.moving_variance.numpy(), batches.var(1).mean(0),
                             rtol=1e-4)
  assert norm.momentum == pytest.approx(0.99)


def test_it_reaches_the_batch_norm_inside_gsa_layers(flavour):
  keras, layers = flavour
  inputs = keras.Input((8, 8, 8))
  x = layers.GlobalSelfAttention(8, num_heads=2)(inputs)
  model = keras.Model(inputs, keras.layers.BatchNormalization()(x))
  norms = statistics.batch_norm_layers(model)
  assert len(norms) == 2 and any("column_norm" in n.name for n in norms)
  data = np.random.default_rng(1).normal(size=(64, 8, 8, 8)).astype(np.float32)
  recalibrate_batch_norm(model, data, batch_size=32)
  first = [n.moving_mean.numpy().copy() for n in norms]
  for norm in norms:  # Other starting statistics: the same result.
    norm.moving_mean.assign(norm.moving_mean.numpy() + 7.0)
  recalibrate_batch_norm(model, data, batch_size=32)
  for norm, expected in zip(norms, first):
    np.testing.assert_allclose(norm.moving_mean.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert np.abs(expected).max() > 0  # Not the initial zeros.


class _FailingImages:
  """64 images, then an error: an interrupted recalibration."""

  def __len__(self):
    return 128

  def __getitem__(self, index):
    if index.start >= 64:
      raise KeyboardInterrupt
    return np.ones((64, 4), np.float32) * 3


def test_an_interrupted_recalibration_leaves_the_statistics_as_they_were(flavour):
  keras, _ = flavour
  model = _dense_model(keras)
  (norm,) = statistics.batch_norm_layers(model)
  with pytest.raises(KeyboardInterrupt):
    recalibrate_batch_norm(model, _FailingImages(), batch_size=64)
  np.testing.assert_array_equal(norm.moving_mean.numpy(), np.zeros(4))
  np.testing.assert_array_equal(norm.moving_variance.numpy(), np.ones(4))
  assert norm.momentum == pytest.approx(0.99)


def test_bad_arguments_fail_before_any_work(flavour):
  keras, _ = flavour
  model = _dense_model(keras)
  with pytest.raises(ValueError, match=r"`batch_size` must be a positive integer, got 0"):
    recalibrate_batch_norm(model, np.zeros((8, 4), np.float32), batch_size=0)
  with pytest.raises(ValueError, match=r"no full batch of 64"):
    recalibrate_batch_norm(model, np.zeros((8, 4), np.float32))
  inputs = keras.Input((4,))
  with pytest.raises(ValueError, match="no batch normalization"):
    recalibrate_batch_norm(keras.Model(inputs, keras.layers.Dense(2)(inputs)),
                           np.zeros((64, 4), np.float32))
