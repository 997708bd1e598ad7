"""The README and docs/ stay true: the test command is what CI runs, every Python example
runs, the links lead somewhere.

Blocks are found by their marker (`<!-- test: KIND NAME -->`, `tests/support/docs_blocks.py`),
never by a heading, so headings can be renamed freely.
"""

import os
import re
import subprocess
import sys

import pytest

from tests.support import docs_blocks

ROOT = docs_blocks.ROOT
README_MAX_LINES = 250


def test_quick_start_has_two_commands_and_ci_runs_the_test_command():
  commands = docs_blocks.quick_start_commands()
  assert len(commands) == 2, commands
  ci_script = (ROOT / ".ci" / "run").read_text().splitlines()
  assert commands[1] in ci_script


def test_readme_is_one_short_page():
  lines = (ROOT / "README.md").read_text().splitlines()
  assert len(lines) <= README_MAX_LINES, len(lines)


def test_every_python_example_is_marked():
  """An example cannot claim to run without a test running it: every fenced Python
  block of the README and docs/ has a marker saying which test runs it (or that it
  is a sketch)."""
  assert docs_blocks.unmarked_python_blocks() == []


def test_every_read_block_is_read_by_a_test():
  """A block marked `read` names the test that reads it: its name is in a test file."""
  sources = "\n".join(path.read_text() for path in (ROOT / "tests").rglob("*.py")
                      if path.name != "test_readme.py")
  unread = [f"{block.name} ({block.where})" for block in docs_blocks.blocks("read")
            if f'"{block.name}"' not in sources]
  assert unread == []


def test_contributing_page_lists_every_test_file():
  """docs/contributing.md maps areas to test files: a new test file is added there."""
  page = (ROOT / "docs" / "contributing.md").read_text()
  missing = sorted(path.name for path in (ROOT / "tests").glob("test_*.py")
                   if f"`{path.name}`" not in page)
  assert missing == []


def test_sketches_say_so():
  for block in docs_blocks.blocks("sketch"):
    assert block.text.startswith("# Sketch"), block.where


_LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_relative_links_lead_to_files():
  """Every relative link of the README and docs/ names a file or directory that exists."""
  broken = []
  for document in docs_blocks.documents():
    for target in _LINK.findall(docs_blocks.prose(document)):
      if target.startswith(("http://", "https://", "mailto:", "#")):
        continue
      path = (document.parent / target.split("#", 1)[0]).resolve()
      if not path.exists():
        broken.append(f"{document.relative_to(ROOT)}: {target}")
  assert broken == []


def _run_python(code: str, cwd) -> subprocess.CompletedProcess:
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")]
                                                      if p])
  return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env,
                        capture_output=True, text=True, check=False)


_RUN = {block.name: block for block in docs_blocks.blocks("run")}
_AFTER_QUICK_START = {block.name: block
                      for block in docs_blocks.blocks("after-quick-start")}


@pytest.mark.parametrize("name", sorted(_RUN))
def test_example_runs(name, tmp_path):
  """An example marked `run`, as written, in an empty directory."""
  block = _RUN[name]
  assert block.language == "python", block.where
  result = _run_python(block.text, tmp_path)
  assert result.returncode == 0, (block.where, result.stderr[-3000:])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(_AFTER_QUICK_START))
def test_example_after_the_quick_start_runs(name, readme_run):
  """An example marked `after-quick-start`, on what the README's command 1 wrote (the
  shared README run, its `/tmp/` paths moved to the run's directory), from the
  repository root, where the sample images are."""
  block = _AFTER_QUICK_START[name]
  assert block.language == "python", block.where
  assert "/tmp/" in block.text, block.where
  code = block.text.replace("/tmp/", f"{readme_run.check().work_dir}/")
  result = _run_python(code, ROOT)
  assert result.returncode == 0, (block.where, result.stderr[-3000:])


def test_marker_helper_finds_blocks_and_tables(tmp_path, monkeypatch):
  """The helper reads a fenced block and a table after their markers, refuses a
  marker that is not before one, and lists unmarked Python blocks."""
  (tmp_path / "docs").mkdir()
  (tmp_path / "README.md").write_text(
      "# T\n\n<!-- test: run one -->\n```python\nprint(1)\n```\n\n"
      "<!-- test: read table -->\n| a | b |\n|---|---|\n| 1 | 2 |\n\nText.\n\n"
      "```python\nprint(2)\n```\n")
  (tmp_path / "docs" / "page.md").write_text(
      "```text\n<!-- test: run inside-a-fence -->\n```\n")  # Text, not a marker.
  monkeypatch.setattr(docs_blocks, "ROOT", tmp_path)
  assert [(b.kind, b.name, b.language) for b in docs_blocks.blocks()] == [
      ("run", "one", "python"), ("read", "table", "table")]
  assert docs_blocks.block("one").text == "print(1)\n"
  assert docs_blocks.block("table").text == "| a | b |\n|---|---|\n| 1 | 2 |\n"
  assert docs_blocks.block("one").where == "README.md:3"
  assert docs_blocks.unmarked_python_blocks() == ["README.md:15"]
  with pytest.raises(KeyError, match="missing"):
    docs_blocks.block("missing")
  (tmp_path / "docs" / "page.md").write_text("<!-- test: run two -->\nText.\n")
  with pytest.raises(ValueError, match="not right before"):
    docs_blocks.blocks()
  (tmp_path / "docs" / "page.md").write_text("<!-- test: run one -->\n```\nx\n```\n")
  with pytest.raises(ValueError, match="more than once"):
    docs_blocks.blocks()
