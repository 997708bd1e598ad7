"""Shared fixtures: every layer test runs in both Keras flavours; the artefacts that
tests in several modules read are session fixtures, each built once per test session.

The suite runs on every core with pytest-xdist (`pytest.ini`: `-n auto --dist
worksteal`), in the order `tests/support/schedule.py` makes; the tests marked `slow` run
in CI (`CI=true`) or with `--run-slow`. The shared artefacts (`readme_run`,
`short_run`, `serving_export`, `serving_tflite`) are built by the first worker that asks
for one and read by the others (`tests/support/once.py`), so it does not matter which
worker runs which test: a worker that needs an artefact being built waits for it (the
order puts an artefact's readers on one worker, so that this is rare). The session fails if an
artefact was built more than once (`once.BuildCheck`). `pytest -n 0` runs
everything in one process.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from tests.support import keras_flavours
from tests.support import once
from tests.support import schedule
from tests.support import serving
from tests.support import shared_runs


@pytest.fixture(params=sorted(keras_flavours.FLAVOURS))
def flavour(request):
  """(keras module, gsa layers module) for Keras 3 and for tf_keras."""
  return keras_flavours.FLAVOURS[request.param]


def _make_readme_run(directory):
  return shared_runs.make_readme_run(directory).to_json()


@pytest.fixture(scope="session")
def readme_run(tmp_path_factory, pytestconfig) -> shared_runs.Run:
  """The README's main command, run once (`shared_runs.make_readme_run`)."""
  return shared_runs.Run.from_json(once.build(
      once.session_directory(tmp_path_factory, pytestconfig), "readme_run",
      _make_readme_run))


@pytest.fixture(scope="session")
def short_run(tmp_path_factory, pytestconfig) -> shared_runs.Run:
  """8 steps with GSA in groups 3-4 only, run once (`shared_runs.make_short_run`)."""
  return shared_runs.Run.from_json(once.build(
      once.session_directory(tmp_path_factory, pytestconfig), "short_run",
      lambda directory: shared_runs.make_short_run(directory).to_json()))


@pytest.fixture(scope="session")
def serving_export(tmp_path_factory, pytestconfig) -> serving.DigitsExport:
  """The serving tests' digits classifier and its SavedModel, exported once
  (`serving.build_digits_export`)."""
  return serving.DigitsExport(**once.build(
      once.session_directory(tmp_path_factory, pytestconfig), "serving_export",
      serving.build_digits_export))


@pytest.fixture(scope="session")
def serving_tflite(serving_export, tmp_path_factory, pytestconfig) -> str:
  """The path of `serving_export`'s TFLite flatbuffer, converted once."""
  return once.build(once.session_directory(tmp_path_factory, pytestconfig),
                    "serving_tflite",
                    lambda directory: serving.build_tflite(serving_export, directory))


# -- Which tests run, in what order, and the check that no shared artefact is built
# twice. ----------------------------------------------------------------------------


def pytest_addoption(parser):
  parser.addoption("--run-slow", action="store_true", default=False,
                   help="also run the end-to-end tests marked slow (as CI does, where "
                        "CI=true)")


def pytest_report_header(config):
  if schedule.runs_slow_tests(config.getoption("--run-slow"), config.option.markexpr):
    return "slow tests: included"
  return ("slow tests: left out (the end-to-end runs); --run-slow or CI=true runs them, "
          "as CI does")


def pytest_collection_modifyitems(config, items):
  """Leaves out the slow tests outside CI, then orders the rest for the workers
  (`tests/support/schedule.py`)."""
  if not schedule.runs_slow_tests(config.getoption("--run-slow"), config.option.markexpr):
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    if slow:
      config.hook.pytest_deselected(items=slow)
      items[:] = [item for item in items if item.get_closest_marker("slow") is None]
  items[:] = schedule.worksteal_order(items, schedule.worker_count())


def pytest_configure(config):
  """Registers `once.BuildCheck` (in the controller and in every worker)."""
  config.pluginmanager.register(once.BuildCheck(), "shared-artefact-builds")
