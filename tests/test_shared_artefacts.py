"""Shared artefacts are built once per session (`tests/support/once.py`): by one of
several processes that ask at the same time, once across pytest-xdist workers, and a
session in which one is built twice fails."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.support import once
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
