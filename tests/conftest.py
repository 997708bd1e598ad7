"""Shared fixtures: every layer test runs in both Keras flavours; the trained runs of
`tests/shared_runs.py` are made once per session."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # pylint: disable=g-import-not-at-top
import pytest
import tf_keras

from gsa_keras.layers import keras3 as keras3_layers
from gsa_keras.layers import tf_keras as tf_keras_layers
from tests import shared_runs

FLAVOURS = {
    "keras3": (keras, keras3_layers),
    "tf_keras": (tf_keras, tf_keras_layers),
}


@pytest.fixture(params=sorted(FLAVOURS))
def flavour(request):
  """(keras module, gsa layers module) for Keras 3 and for tf_keras."""
  return FLAVOURS[request.param]


@pytest.fixture(scope="session")
def readme_run(tmp_path_factory) -> shared_runs.Run:
  """The README's main command, run once (`shared_runs.make_readme_run`)."""
  return shared_runs.make_readme_run(tmp_path_factory.mktemp("readme_run"))


@pytest.fixture(scope="session")
def short_run(tmp_path_factory) -> shared_runs.Run:
  """8 steps with GSA in groups 3-4 only, run once (`shared_runs.make_short_run`)."""
  return shared_runs.make_short_run(tmp_path_factory.mktemp("short_run"))
