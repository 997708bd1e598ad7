"""Shared artefacts are built once per session (`tests/support/once.py`): by one of
several processes that ask at the same time, once across pytest-xdist workers, and a
session in which one is built twice fails."""

import json
import os
import subprocess
import sys
import textwrap
import threading

import pytest

from tests.support import once
from tests.support import threads
from tests.support import training

# Asks for the artefact `thing` in argv[1] and prints what it got; the build takes a
# second and appends this process's id to argv[1]/builders.txt.
_ASK = textwrap.dedent("""
    import json, os, pathlib, sys, time
    from tests.support import once

    def build(directory):
      time.sleep(1.0)
      with open(pathlib.Path(sys.argv[1]) / "builders.txt", "a") as f:
        f.write(f"{os.getpid()}\\n")
      return {"built_by": os.getpid(), "directory": str(directory)}

    print(json.dumps(once.build(pathlib.Path(sys.argv[1]), "thing", build)))
""")


def _environment():
  return dict(os.environ, PYTHONPATH=str(training.REPO))


def test_processes_asking_together_get_one_build(tmp_path):
  asking = [subprocess.Popen([sys.executable, "-c", _ASK, str(tmp_path)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=_environment())
            for _ in range(4)]
  answers = []
  for process in asking:
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    answers.append(json.loads(stdout))
  builders = (tmp_path / "builders.txt").read_text().split()
  assert len(builders) == 1
  assert answers == [{"built_by": int(builders[0]),
                      "directory": str(tmp_path / "thing")}] * 4
  assert json.loads((tmp_path / "thing.json").read_text())["ok"]


def test_a_failed_build_fails_the_next_asker_without_a_second_build(tmp_path):
  calls = []

  def build(directory):
    del directory
    calls.append(1)
    raise ValueError("the build broke")

  with pytest.raises(ValueError, match="the build broke"):
    once.build(tmp_path, "broken", build)
  with pytest.raises(RuntimeError, match=r"(?s)'broken' failed on .*"
                     r"ValueError: the build broke"):
    once.build(tmp_path, "broken", build)
  assert len(calls) == 1
  once.take_builds()  # Not this session's artefacts: not for its check.


def test_a_build_started_early_is_read_by_every_asker_and_built_once(tmp_path):
  release = threading.Event()
  calls = []

  def build(directory):
    calls.append(str(directory))
    release.wait(timeout=60)
    return "built early"

  thread = once.start_early(tmp_path, "thing", build)
  assert thread is not None and thread.is_alive()
  # While it builds, no one else starts it, and askers wait for it.
  assert once.start_early(tmp_path, "thing", build) is None
  asker = subprocess.Popen([sys.executable, "-c", _ASK, str(tmp_path)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=_environment())
  with pytest.raises(subprocess.TimeoutExpired):
    asker.communicate(timeout=2)
  release.set()
  stdout, stderr = asker.communicate(timeout=120)
  thread.join(timeout=60)
  assert asker.returncode == 0, stderr
  assert json.loads(stdout) == "built early"
  assert once.build(tmp_path, "thing", build) == "built early"  # This process too.
  assert calls == [str(tmp_path / "thing")]
  assert not (tmp_path / "builders.txt").exists()  # The asker never built it.
  assert once.start_early(tmp_path, "thing", build) is None  # Built already.
  assert [b["name"] for b in once.take_builds()] == ["thing"]


def test_each_worker_gets_its_share_of_the_cores_for_tensorflow():
  assert [threads.share(workers, 2) for workers in (1, 2, 4)] == [2, 1, 1]
  assert threads.share(2, 8) == 4
  outside_xdist = {}
  threads.limit_to_worker_share(outside_xdist)
  assert not outside_xdist
  worker = {"PYTEST_XDIST_WORKER_COUNT": "2"}
  threads.limit_to_worker_share(worker)
  expected = str(threads.share(2, threads.cores()))
  assert all(worker[v] == expected for v in threads.POOL_VARIABLES)
  chosen = {"PYTEST_XDIST_WORKER_COUNT": "2", "TF_NUM_INTRAOP_THREADS": "3"}
  threads.limit_to_worker_share(chosen)
  assert chosen["TF_NUM_INTRAOP_THREADS"] == "3"  # The caller's choice stays.
  if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):  # This very worker was limited.
    assert all(os.environ[v] for v in threads.POOL_VARIABLES)


# A session of two tests on two xdist workers, each asking for `thing`: in the
# session's shared directory (`once.session_directory`, as the suite's fixtures do),
# or in its own `tmp_path` (as if the workers did not share one).
_CONFTEST = """
import pytest
from tests.support import once

def pytest_configure(config):
  config.pluginmanager.register(once.BuildCheck(), "shared-artefact-builds")

@pytest.fixture
def directory(request, tmp_path, tmp_path_factory):
  if request.config.getoption("--own-directories"):
    return tmp_path
  return once.session_directory(tmp_path_factory, request.config)

def pytest_addoption(parser):
  parser.addoption("--own-directories", action="store_true")
"""
_TESTS = """
from tests.support import once

def test_one(directory):
  assert once.build(directory, "thing", lambda d: "built") == "built"

def test_two(directory):
  assert once.build(directory, "thing", lambda d: "built") == "built"
"""


def _session(directory, *flags):
  (directory / "conftest.py").write_text(_CONFTEST)
  (directory / "test_thing.py").write_text(_TESTS)
  (directory / "pytest.ini").write_text("[pytest]\n")
  return subprocess.run(
      [sys.executable, "-m", "pytest", "-n", "2", "--dist", "worksteal", "-p", "xdist",
       "-v", f"--basetemp={directory / 'tmp'}", *flags],
      cwd=directory, env=_environment(), capture_output=True, text=True, timeout=300,
      check=False)


def test_workers_share_one_build(tmp_path):
  result = _session(tmp_path)
  assert result.returncode == 0, result.stdout + result.stderr
  assert "2 passed" in result.stdout
  assert "[gw0]" in result.stdout and "[gw1]" in result.stdout  # One test each.
  assert result.stdout.count("thing: built in") == 1, result.stdout
  assert "was built" not in result.stdout


def test_a_session_that_builds_an_artefact_twice_fails(tmp_path):
  result = _session(tmp_path, "--own-directories")
  assert result.returncode == 1, result.stdout + result.stderr
  assert "2 passed" in result.stdout
  assert "ERROR: thing was built 2 times" in result.stdout
