"""The README's option tables are the declared options: names, defaults, and the generator's output."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest

from dagster_qdrant.option_tables import BEGIN, END, rewrite
from dagster_qdrant.options import ReadOptions, WriteOptions

README = Path(__file__).resolve().parents[1] / "README.md"
URL = "http://localhost:6333"
DECIDED_ELSEWHERE = {"required", "Spark's default parallelism", "31 MiB", "every other column"}
"""Default cells that are no Python literal; each must be the default of an option the cell explains."""


def _rows(direction: str) -> dict[str, str]:
    """option -> default cell, read from the README's table (a cell naming several options: each of them)."""
    text = README.read_text()
    start = text.index(BEGIN.format(direction=direction))
    end = text.index(END.format(direction=direction), start)
    rows: dict[str, str] = {}
    for line in text[start:end].splitlines()[3:]:
        names, default = [cell.strip() for cell in line.strip("|").split("|")][:2]
        for name in re.findall(r"`([a-z_]+)`", names):
            rows[name] = default
    return rows


def test_the_readme_tables_are_the_generators_output() -> None:
    text = README.read_text()
    assert rewrite(text) == text, "README option tables are stale: run python -m dagster_qdrant.option_tables"


@pytest.mark.parametrize(("direction", "options_class"), [("reader", ReadOptions), ("writer", WriteOptions)])
def test_the_readme_tables_list_exactly_the_options_with_their_defaults(direction: str, options_class: type) -> None:
    rows = _rows(direction)
    assert sorted(rows) == sorted(item.name for item in dataclasses.fields(options_class))
    built = options_class(endpoint=URL, collection="docs")  # the defaults as an object really gets them
    reads = _rows("reader")
    for name, cell in rows.items():
        cell = reads[name] if cell == "as for reads" else cell
        literal = re.fullmatch(r"`([^`]*)`( \(.*\))?", cell)
        if literal:
            assert ast.literal_eval(literal.group(1)) == getattr(built, name), name
        else:
            assert cell in DECIDED_ELSEWHERE, (name, cell)
            if cell == "required":
                assert name in ("endpoint", "collection")
            elif name == "max_batch_bytes":
                assert built.max_batch_bytes == 31 * 1024 * 1024
            else:
                assert getattr(built, name) is None, name
