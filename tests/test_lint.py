"""The lint gate: ruff (`ruff.toml`) is pinned, runs in CI before the tests, and passes.

CI runs the README's command 2 (`.ci/run`), whose `ruff check .` fails the run on any
finding before pytest starts; these tests say the same from inside the suite, so a
finding also fails `pytest` run alone.
"""

import ast
import re
import subprocess

from ruff.__main__ import find_ruff_bin

from tests.support import docs_blocks

ROOT = docs_blocks.ROOT
CONFIG = ROOT / "ruff.toml"


def _ruff(*args, cwd=ROOT) -> subprocess.CompletedProcess:
  return subprocess.run([find_ruff_bin(), *args], cwd=cwd, capture_output=True, text=True,
                        check=False, timeout=120)


def _test_extra():
  """The requirements of setup.py's `test` extra, read from its source."""
  tree = ast.parse((ROOT / "setup.py").read_text())
  for node in ast.walk(tree):
    if isinstance(node, ast.keyword) and node.arg == "extras_require":
      return ast.literal_eval(node.value)["test"]
  raise AssertionError("setup.py has no extras_require")


def test_ruff_is_configured_and_pinned():
  """`ruff.toml` holds the configuration, and the `test` extra pins the ruff that runs,
  so that a new ruff release cannot fail CI with new findings."""
  config = CONFIG.read_text()
  assert re.search(r"^indent-width = 2$", config, re.M), "2-space indents (Google style)"
  pins = [r for r in _test_extra() if re.match(r"ruff\b", r)]
  assert len(pins) == 1 and re.fullmatch(r"ruff==[\d.]+", pins[0]), pins
  version = _ruff("--version").stdout.split()[-1]
  assert pins[0] == f"ruff=={version}", (pins, version)


def test_ci_lints_before_the_tests():
  command = docs_blocks.quick_start_commands()[1]
  assert ".venv/bin/ruff check . && .venv/bin/pytest" in command, command


def test_repository_is_lint_clean():
  """`ruff check .` with the repository's configuration finds nothing."""
  result = _ruff("check", "--no-cache", ".")
  assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]


def test_a_finding_fails_the_check(tmp_path):
  """The gate is not vacuous: an unused import and a bare `except Exception: pass` fail
  under the repository's configuration."""
  source = tmp_path / "bad.py"
  source.write_text("import os\n\ntry:\n  pass\nexcept Exception:\n  pass\n")
  result = _ruff("check", "--no-cache", "--config", str(CONFIG), str(source), cwd=tmp_path)
  assert result.returncode == 1, result.stdout + result.stderr
  assert "F401" in result.stdout and "BLE001" in result.stdout, result.stdout


def test_no_pylint_pragmas():
  """ruff is the linter: a pragma for pylint would be noise (ruff's are `# noqa: RULE`)."""
  tracked = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "*.py"],
                           cwd=ROOT, capture_output=True, text=True, check=False)
  paths = [ROOT / p for p in tracked.stdout.split()] if tracked.returncode == 0 else [
      p for p in ROOT.rglob("*.py") if ".venv" not in p.parts]
  pragma = "pylint" + ":"  # Split, so this file does not match itself.
  found = [f"{p.relative_to(ROOT)}:{i}" for p in paths if p.exists()
           for i, line in enumerate(p.read_text().splitlines(), 1) if pragma in line]
  assert found == []
