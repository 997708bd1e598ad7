"""Artefacts that tests in several modules read, built once per test session, however
many pytest-xdist workers ask for them.

This is the pattern of pytest-xdist's documentation ("Making session-scoped fixtures
execute only once"): every worker's base temporary directory is a subdirectory of the
session's, so the artefacts live in the session's, in `shared/`. An exclusive lock
(`fcntl.flock`, released by the system if its holder dies) on `shared/NAME.lock` lets
the first process that asks for NAME build it into `shared/NAME/` and record the
result in `shared/NAME.json`; the others wait for the lock and read the record.
Without xdist the session's own base temporary directory holds them.

A failed build is recorded too: the processes that wait for it fail with its error
instead of building it again. Each build is also reported to the controller with the
test that asked for it, where `BuildCheck` fails the session if an artefact was built
more than once.
"""

import contextlib
import fcntl
import json
import os
import pathlib
import shutil
import time
import traceback
from typing import Any, Callable, Dict, List

import pytest

# The `user_properties` key of a test report that records a build (`take_builds`).
BUILD_PROPERTY = "shared artefact built"
_builds_to_report: List[Dict[str, Any]] = []


def worker() -> str:
  """This process's xdist worker id ("gw0", ...), or "main" without xdist."""
  return os.environ.get("PYTEST_XDIST_WORKER", "main")


def session_directory(tmp_path_factory, config) -> pathlib.Path:
  """`shared/` in the session's base temporary directory: the parent of an xdist
  worker's own (`config.workerinput` is set in a worker), or the process's own."""
  base = tmp_path_factory.getbasetemp()
  if hasattr(config, "workerinput"):
    base = base.parent
  directory = base / "shared"
  directory.mkdir(exist_ok=True)
  return directory


@contextlib.contextmanager
def _locked(path: pathlib.Path):
  with open(path, "a", encoding="utf-8") as lock_file:
    fcntl.flock(lock_file, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(lock_file, fcntl.LOCK_UN)


def build(directory: pathlib.Path, name: str, builder: Callable[[pathlib.Path], Any]):
  """`builder(directory / name)`'s result (anything `json` can write), built by the
  first process that asks for `name` in `directory`, read back by the others.

  Raises:
    RuntimeError: Another process's build of `name` failed (its traceback follows).
  """
  record_path = directory / f"{name}.json"
  with _locked(directory / f"{name}.lock"):
    if not record_path.exists():
      return _build(directory, name, builder)
    record = json.loads(record_path.read_text(encoding="utf-8"))
  if not record["ok"]:
    raise RuntimeError(f"Building the shared artefact {name!r} failed on "
                       f"{record['worker']}:\n{record['error']}")
  return record["value"]


def _build(directory: pathlib.Path, name: str, builder: Callable[[pathlib.Path], Any]):
  """Builds `name` and records the outcome; the caller holds `name`'s lock."""
  output = directory / name
  shutil.rmtree(output, ignore_errors=True)  # Left by an interrupted build.
  output.mkdir()
  start = time.time()
  try:
    value = builder(output)
  except Exception:  # Recorded for the waiting processes, and raised here.
    _record(directory / f"{name}.json", start, ok=False, error=traceback.format_exc())
    raise
  _record(directory / f"{name}.json", start, ok=True, value=value)
  return value


def _record(record_path: pathlib.Path, start: float, **outcome) -> None:
  """Writes a build's record (whole, or not at all) and keeps it to report."""
  record = dict(name=record_path.stem, worker=worker(),
                seconds=round(time.time() - start, 1), **outcome)
  partial = record_path.with_suffix(".partial")
  partial.write_text(json.dumps(record), encoding="utf-8")
  partial.rename(record_path)
  _builds_to_report.append(
      {key: record[key] for key in ("name", "worker", "ok", "seconds")})


def take_builds() -> List[Dict[str, Any]]:
  """The builds of this process since the last call."""
  builds = list(_builds_to_report)
  _builds_to_report.clear()
  return builds


def duplicates(builds: List[Dict[str, Any]]) -> Dict[str, List[Dict[str, Any]]]:
  """Name -> its builds, for each artefact built more than once in `builds`."""
  by_name: Dict[str, List[Dict[str, Any]]] = {}
  for built in builds:
    by_name.setdefault(built["name"], []).append(built)
  return {name: found for name, found in by_name.items() if len(found) > 1}


class BuildCheck:
  """A pytest plugin (`tests/conftest.py` registers it) that fails the session if an
  artefact was built more than once, and lists the builds in the terminal summary.

  Each process attaches its builds to the report of the test whose set-up (or call)
  made them; xdist sends the reports to the controller, which counts them. So a build
  is counted however the workers' temporary directories are laid out.
  """

  def __init__(self):
    self.builds: Dict[tuple, Dict[str, Any]] = {}  # (test, build) -> build.

  @pytest.hookimpl(tryfirst=True)  # Before the report is made from the item.
  def pytest_runtest_makereport(self, item):
    for built in take_builds():
      item.user_properties.append((BUILD_PROPERTY, json.dumps(built)))

  def pytest_runtest_logreport(self, report):
    # A test's set-up, call and tear-down reports carry the same properties.
    for key, value in report.user_properties:
      if key == BUILD_PROPERTY:
        self.builds[report.nodeid, value] = dict(json.loads(value), test=report.nodeid)

  def pytest_terminal_summary(self, terminalreporter, config):
    if hasattr(config, "workerinput") or not self.builds:
      return
    terminalreporter.section("shared artefacts built")
    for built in self.builds.values():
      terminalreporter.line(
          f"{built['name']}: {'built' if built['ok'] else 'FAILED'} in "
          f"{built['seconds']:.0f} s on {built['worker']}, for {built['test']}")
    for name, builds in duplicates(list(self.builds.values())).items():
      terminalreporter.line(f"ERROR: {name} was built {len(builds)} times", red=True)

  def pytest_sessionfinish(self, session):
    if (not hasattr(session.config, "workerinput")
        and duplicates(list(self.builds.values()))):
      session.exitstatus = pytest.ExitCode.TESTS_FAILED
