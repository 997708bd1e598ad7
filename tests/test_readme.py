"""The README stays true: its test command is what CI runs, its examples run."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def quick_start_commands():
  """The quick start's commands, continuation lines joined."""
  block = re.search(r"## Quick start.*?```bash\n(.*?)```", README, re.S).group(1)
  block = re.sub(r"\\\n\s*", "", block)
  return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_quick_start_has_two_commands_and_ci_runs_the_test_command():
  commands = quick_start_commands()
  assert len(commands) == 2, commands
  ci_script = (ROOT / ".ci" / "run").read_text().splitlines()
  assert commands[1] in ci_script


# Python blocks run as they are, except those that say they need the quick start's
# outputs, are a sketch with the reader's own model, or are run by another test
# (the Keras models' fit: tests/test_applications.py).
_EXAMPLES = [code for code in re.findall(r"```python\n(.*?)```", README, re.S)
             if not code.startswith(("# After the quick start", "# Sketch",
                                     "# Keras models: fit"))]


@pytest.mark.parametrize("index", range(len(_EXAMPLES)))
def test_readme_python_example_runs(index, tmp_path):
  code = _EXAMPLES[index]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
