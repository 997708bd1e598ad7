"""Which tests a session runs and the order the xdist workers get them in
(`tests/support/schedule.py`)."""

import dataclasses
import os
import subprocess
import sys
import types

import pytest

from tests.support import schedule
from tests.support import training


@pytest.mark.parametrize("run_slow,markexpr,environ,expected", [
    (False, "", {}, False),
    (False, "", {"CI": "true"}, True),
    (False, "", {"CI": "1"}, True),
    (False, "", {"CI": "false"}, False),
    (False, "", {"CI": ""}, False),
    (True, "", {}, True),
    (False, "not slow", {}, True),  # The expression itself leaves them out.
])
def test_slow_tests_run_in_ci_or_when_asked_for(run_slow, markexpr, environ, expected):
  assert schedule.runs_slow_tests(run_slow, markexpr, environ) is expected


@dataclasses.dataclass
class _Item:
  nodeid: str
  fixturenames: tuple = ()
  slow: bool = False

  def get_closest_marker(self, name):
    return object() if name == "slow" and self.slow else None


def _items():
  """A session like the suite: fast modules, slow tests, and readers of two artefacts
  spread over modules."""
  items = [_Item(f"tests/test_fast{m}.py::test_{t}") for m in range(6) for t in range(30)]
  items += [_Item(f"tests/test_e2e.py::test_slow{t}", slow=True) for t in range(12)]
  items.insert(40, _Item("tests/test_export.py::test_cli", ("readme_run",), slow=True))
  items.insert(90, _Item("tests/test_readme.py::test_after[a]", ("readme_run",)))
  items.insert(95, _Item("tests/test_readme.py::test_after[b]", ("readme_run",)))
  items.insert(7, _Item("tests/test_serving.py::test_a", ("serving_export",)))
  items.insert(150, _Item("tests/test_limits.py::test_b", ("serving_export",)))
  return items


def _segments(order, workers):
  """The contiguous parts worksteal hands to each worker at the start."""
  size, extra = divmod(len(order), workers)
  bounds = [0]
  for index in range(workers):
    bounds.append(bounds[-1] + size + (index < extra))
  return [order[start:end] for start, end in zip(bounds, bounds[1:])]


def _cost(items):
  """The estimated cost of a worker's part: each artefact built once."""
  chunks = {}
  for item in items:
    chunks.setdefault(schedule._chunk_key(item), []).append(item)
  return sum(schedule._chunk_cost(key, chunk) for key, chunk in chunks.items())


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_an_artefacts_readers_run_together_after_its_build(workers):
  items = _items()
  order = schedule.worksteal_order(items, workers)
  assert sorted(item.nodeid for item in order) == sorted(item.nodeid for item in items)
  for artefact in ("readme_run", "serving_export"):
    positions = [index for index, item in enumerate(order)
                 if artefact in item.fixturenames]
    assert positions == list(range(positions[0], positions[0] + len(positions)))
  # The longest chain (the README run and its readers) is the first worker's first work.
  assert "readme_run" in order[0].fixturenames


def test_workers_start_with_their_longest_work_and_get_balanced_shares():
  items = _items()
  order = schedule.worksteal_order(items, 2)
  assert order != items
  first, second = _segments(order, 2)
  # Each contiguous part starts with work of the longest kind, and both get about the
  # same estimated cost: within two slow tests' estimate (the parts are of equal length,
  # so the fast tests cannot always even out what the heavy ones leave).
  assert "readme_run" in first[0].fixturenames
  assert second[0].get_closest_marker("slow") is not None
  assert abs(_cost(first) - _cost(second)) <= 2 * schedule.SLOW_TEST_SECONDS
  # A module's fast tests keep their order.
  fast0 = [item.nodeid for item in order if item.nodeid.startswith("tests/test_fast0.py")]
  assert fast0 == sorted(fast0, key=lambda nodeid: int(nodeid.rsplit("_", 1)[1]))


def _collect(*flags, **environ):
  env = {key: value for key, value in os.environ.items()
         if key not in ("CI", "PYTEST_XDIST_WORKER_COUNT")}
  result = subprocess.run(
      [sys.executable, "-m", "pytest", "--collect-only", "-q", "-n", "0", *flags],
      cwd=training.REPO, env=dict(env, **environ), capture_output=True, text=True,
      timeout=300, check=False)
  assert result.returncode == 0, result.stdout + result.stderr
  return result.stdout


def _with_module_fixture(item):
  """`item` as if it used a module-scoped fixture (pytest's fixture info)."""
  definition = types.SimpleNamespace(scope="module")
  item._fixtureinfo = types.SimpleNamespace(name2fixturedefs={"quick_run": [definition]})
  return item


def test_slow_tests_sharing_a_module_fixture_run_together():
  items = _items()
  study = [_with_module_fixture(_Item(f"tests/test_study.py::test_{t}", slow=True))
           for t in range(3)]
  items[20:20] = study[:2]
  items.append(study[2])
  order = schedule.worksteal_order(items, 2)
  positions = [order.index(item) for item in study]
  assert positions == list(range(positions[0], positions[0] + 3))
  # The other slow tests are chunks of one: they spread over both workers.
  first, second = _segments(order, 2)
  assert any(item.nodeid.startswith("tests/test_e2e.py") for item in first)
  assert any(item.nodeid.startswith("tests/test_e2e.py") for item in second)


def test_a_plain_run_leaves_the_slow_tests_out_and_ci_runs_them():
  slow_test = "tests/test_train_e2e.py::test_killed_run_resumes_from_its_checkpoint"
  plain = _collect()
  assert slow_test not in plain and " deselected" in plain
  # CI=true; `--run-slow` takes the same path (`runs_slow_tests`, tested above).
  in_ci = _collect(CI="true")
  assert slow_test in in_ci and " deselected" not in in_ci
