"""Shared fixtures: every layer test runs in both Keras flavours; the trained runs of
`tests/shared_runs.py` are made once per session.

The suite runs on every core with pytest-xdist (`pytest.ini`: `-n auto --dist
loadgroup`). `pytest_collection_modifyitems` keeps the tests of one module on one
worker (its module fixtures are made once), and the modules that share a session run
or the serving tests' export together, so that each is made once; the groups with
the most slow tests are handed out first. `pytest -n 0` runs everything in one process.
"""

import collections
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # pylint: disable=g-import-not-at-top
import pytest
import tf_keras

from gsa_keras.layers import keras3 as keras3_layers
from gsa_keras.layers import tf_keras as tf_keras_layers
from tests import serving_helpers
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


# What a test module can share with other modules, made once per process: the session
# fixtures above, and the serving tests' export (`tests/serving_helpers.py`).
SESSION_FIXTURES = ("readme_run", "short_run")
SERVING_EXPORT = "serving_helpers"


def _module(item) -> str:
  return item.nodeid.split("::", 1)[0]


def _shared_by(module_items) -> set:
  """The session-wide things that the tests of one module use."""
  shared = {name for item in module_items for name in SESSION_FIXTURES
            if name in getattr(item, "fixturenames", ())}
  if getattr(module_items[0].module, "serving_helpers", None) is serving_helpers:
    shared.add(SERVING_EXPORT)
  return shared


def worker_groups(items) -> dict:
  """Module path -> xdist group name: a module's own path, or, for modules that share
  something of `_shared_by`, the first of their paths."""
  by_module = collections.defaultdict(list)
  for item in items:
    by_module[_module(item)].append(item)
  group = {module: module for module in by_module}

  def root(module):
    while group[module] != module:
      module = group[module]
    return module

  sharers = collections.defaultdict(list)  # Shared thing -> modules.
  for module, module_items in by_module.items():
    for shared in _shared_by(module_items):
      sharers[shared].append(module)
  for modules in sharers.values():
    for module in modules[1:]:
      first, other = sorted((root(modules[0]), root(module)))
      group[other] = first
  return {module: root(module) for module in by_module}


@pytest.hookimpl(tryfirst=True)  # Before xdist reads the groups.
def pytest_collection_modifyitems(config, items):
  """Marks each test with its xdist group (`worker_groups`) and puts the groups with
  the most slow tests first (xdist hands groups out in collection order)."""
  del config
  groups = worker_groups(items)
  group_of = {item.nodeid: groups[_module(item)] for item in items}
  slow_tests = collections.Counter()
  first_seen = {}
  for index, item in enumerate(items):
    name = group_of[item.nodeid]
    item.add_marker(pytest.mark.xdist_group(name))
    slow_tests[name] += item.get_closest_marker("slow") is not None
    first_seen.setdefault(name, index)
  items.sort(key=lambda item: (-slow_tests[group_of[item.nodeid]],
                               first_seen[group_of[item.nodeid]]))


def pytest_collection_finish(session):
  """Under `--dist loadgroup`, fails loudly if pytest-xdist did not group the tests
  (it renames their node ids, which some pytest versions ignore: see setup.py)."""
  if session.config.getoption("loadgroup", default=False) and any(
      "@" not in item.nodeid for item in session.items):
    raise pytest.UsageError(
        "pytest-xdist did not group the tests (--dist loadgroup): use the versions "
        "of pytest and pytest-xdist that setup.py's `test` extra names.")
