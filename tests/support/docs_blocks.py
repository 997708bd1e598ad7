"""The documentation's marked blocks, found by their marker, never by a heading.

A block that a test uses is marked by an HTML comment on the line right before it:

    <!-- test: KIND NAME -->
    ```python
    ...
    ```

`NAME` is unique across `README.md` and `docs/*.md`; `KIND` says what the tests do:

- `run`: a Python example that runs as written, in an empty directory
  (`tests/test_readme.py`).
- `after-quick-start`: a Python example that runs on what quick-start command 1 wrote
  (`/tmp/gsa_digits...`), from the repository root (`tests/test_readme.py`, on the
  shared README run).
- `read`: a block that one named test reads and checks or runs itself (the quick-start
  commands, the Keras models' fit, the FLOPs table); the test names the block.
- `sketch`: not run: the reader's own model or data stands in somewhere.

A marked block is a fenced code block or a Markdown table (its `|` lines). Every
fenced Python block in the documentation carries a marker (`tests/test_readme.py`
checks), so an example cannot claim to run without a test running it.
"""

import dataclasses
import pathlib
import re
from typing import List, Optional

ROOT = pathlib.Path(__file__).resolve().parents[2]
KINDS = ("run", "after-quick-start", "read", "sketch")
_MARKER = re.compile(r"^<!-- test: (\S+) (\S+) -->$")
_FENCE = re.compile(r"^```(\w*)$")


@dataclasses.dataclass(frozen=True)
class Block:
  """One marked block: its marker, where it is, and its text (without the fences)."""
  kind: str
  name: str
  language: str  # The fence's language, or "table".
  text: str
  path: pathlib.Path
  line: int  # 1-based line of the marker.

  @property
  def where(self) -> str:
    """`path:line` of the marker, relative to the repository."""
    return f"{self.path.relative_to(ROOT)}:{self.line}"


def documents() -> List[pathlib.Path]:
  """The documentation that may hold marked blocks: the README and `docs/*.md`."""
  return [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))


def _fence_end(lines: List[str], start: int) -> Optional[int]:
  """The index of the line closing the fence opened at `lines[start]`, if any."""
  return next((j for j in range(start + 1, len(lines)) if lines[j] == "```"), None)


def _blocks_of(path: pathlib.Path) -> List[Block]:
  """The marked blocks of one file; a marker inside a fenced block is text, not a
  marker."""
  lines = path.read_text().splitlines()
  found = []
  index = 0
  while index < len(lines):
    line = lines[index]
    if _FENCE.match(line):  # Skip an unmarked fenced block whole.
      index = (_fence_end(lines, index) or len(lines)) + 1
      continue
    marker = _MARKER.match(line)
    if not marker:
      if line.startswith("<!-- test:"):
        raise ValueError(f"{path}:{index + 1}: malformed marker {line!r}: "
                         "expected '<!-- test: KIND NAME -->'")
      index += 1
      continue
    kind, name = marker.groups()
    if kind not in KINDS:
      raise ValueError(f"{path}:{index + 1}: unknown kind {kind!r} (one of {KINDS})")
    following = lines[index + 1] if index + 1 < len(lines) else ""
    fence = _FENCE.match(following)
    if fence:
      end = _fence_end(lines, index + 1)
      if end is None:
        raise ValueError(f"{path}:{index + 1}: block {name!r} has no closing fence")
      language, body, next_index = fence.group(1), lines[index + 2:end], end + 1
    elif following.startswith("|"):
      language, body = "table", []
      for row in lines[index + 1:]:
        if not row.startswith("|"):
          break
        body.append(row)
      next_index = index + 1 + len(body)
    else:
      raise ValueError(f"{path}:{index + 1}: marker {name!r} is not right before a "
                       "fenced block or a table")
    found.append(Block(kind, name, language, "\n".join(body) + "\n", path, index + 1))
    index = next_index
  return found


def blocks(kind: Optional[str] = None) -> List[Block]:
  """Every marked block of the documentation (of one `kind` if given), in order."""
  found = [block for path in documents() for block in _blocks_of(path)]
  names = [block.name for block in found]
  duplicates = sorted({name for name in names if names.count(name) > 1})
  if duplicates:
    raise ValueError(f"Block names used more than once: {duplicates}")
  return [block for block in found if kind is None or block.kind == kind]


def block(name: str) -> Block:
  """The marked block called `name` (KeyError naming the marker to add if none)."""
  for candidate in blocks():
    if candidate.name == name:
      return candidate
  raise KeyError(f"No block marked '<!-- test: KIND {name} -->' in README.md or "
                 "docs/*.md")


def unmarked_python_blocks() -> List[str]:
  """`path:line` of every fenced Python block without a marker right before it."""
  unmarked = []
  for path in documents():
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
      if _FENCE.match(lines[index]):
        previous = lines[index - 1] if index else ""
        if lines[index] == "```python" and not _MARKER.match(previous):
          unmarked.append(f"{path.relative_to(ROOT)}:{index + 1}")
        index = (_fence_end(lines, index) or len(lines)) + 1
      else:
        index += 1
  return unmarked


def prose(path: pathlib.Path) -> str:
  """The text of `path` without its fenced blocks and inline code spans (for links)."""
  lines = path.read_text().splitlines()
  kept = []
  index = 0
  while index < len(lines):
    if _FENCE.match(lines[index]):
      index = (_fence_end(lines, index) or len(lines)) + 1
      continue
    kept.append(re.sub(r"`[^`]*`", "", lines[index]))
    index += 1
  return "\n".join(kept)


def quick_start_commands() -> List[str]:
  """The README quick start's commands (block `quick-start`), continuation lines
  joined, comments left out."""
  text = re.sub(r"\\\n\s*", "", block("quick-start").text)
  return [line for line in text.splitlines() if line and not line.startswith("#")]
