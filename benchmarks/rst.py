"""The benchmark reports as reStructuredText, for the documentation's performance page.

``make bench`` and ``make bench-airflow`` print their report in Markdown (for a
terminal and for the JSON results) and write it as ``benchmarks/results/bench.rst``
and ``airflow.rst``, which ``docs/performance.rst`` includes: the page shows the last
full run of each, never numbers copied by hand.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["to_rst", "write_rst"]


def _inline(text: str) -> str:
    return re.sub(r"`([^`]+)`", r"``\1``", text)


def _table(rows: list[str]) -> list[str]:
    cells = [[cell.strip() for cell in row.strip().strip("|").split("|")] for row in rows]
    header, body = cells[0], cells[2:]  # the second row is the Markdown rule
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *body]:
        for index, cell in enumerate(row):
            out.append(("   * - " if index == 0 else "     - ") + _inline(cell))
    return [*out, ""]


def to_rst(report: str) -> str:
    """A report's Markdown (paragraphs, bullet lists, pipe tables) as reStructuredText."""
    lines = report.splitlines()
    out: list[str] = []
    index = 0
    while index < len(lines):
        if lines[index].startswith("|"):
            rows = []
            while index < len(lines) and lines[index].startswith("|"):
                rows.append(lines[index])
                index += 1
            if out and out[-1] != "":
                out.append("")
            out += _table(rows)
            continue
        if not (lines[index] == "" and out and out[-1] == ""):
            out.append(_inline(lines[index]))
        index += 1
    return "\n".join(out).rstrip() + "\n"


def write_rst(path: Path, title: str, report: str, stamp: str) -> None:
    """Write ``report`` to ``path`` under a line naming the run."""
    path.write_text(f"{title}, run {stamp}:\n\n{to_rst(report)}")
