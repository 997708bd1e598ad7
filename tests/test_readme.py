"""The README stays true: its test command is what CI runs, its examples run."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _quick_start_commands():
  block = re.search(r"## Quick start.*?```bash\n(.*?)```", README, re.S).group(1)
  return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_quick_start_has_two_commands_and_ci_runs_the_test_command():
  commands = _quick_start_commands()
  assert len(commands) == 2, commands
  ci_script = (ROOT / ".ci" / "run").read_text().splitlines()
  assert commands[1] in ci_script


@pytest.mark.parametrize("index", range(len(re.findall(r"```python\n", README))))
def test_readme_python_example_runs(index, tmp_path):
  code = re.findall(r"```python\n(.*?)```", README, re.S)[index]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
