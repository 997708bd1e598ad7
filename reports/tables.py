"""Markdown tables for the generated results pages."""

from typing import Sequence


def markdown(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
  """A Markdown table: the header row, its separator, then one line per row.

  Args:
    header: The column titles.
    rows: The cells of each row, written with `str`.

  Returns:
    The table's lines joined by newlines, without a trailing newline.
  """
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
  return "\n".join(lines)
