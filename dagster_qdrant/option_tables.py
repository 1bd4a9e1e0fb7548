"""The README's tables of reader and writer options, generated from the options' declarations.

Each option is declared once, in ``options.py``; this module renders those declarations as the README's
``| option | default | meaning |`` tables, so the README cannot list an option that does not exist, miss
one, or show another default. ``python -m dagster_qdrant.option_tables [README.md]`` rewrites the tables
between their markers; ``tests/test_option_tables.py`` fails while the README differs from the output.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from dagster_qdrant.options import REQUIRED, ConnectionOptions, Option, ReadOptions, WriteOptions

DIRECTIONS: dict[str, type[ConnectionOptions]] = {"reader": ReadOptions, "writer": WriteOptions}
BEGIN = (
    "<!-- {direction} options: generated from dagster_qdrant/options.py by python -m dagster_qdrant.option_tables -->"
)
END = "<!-- end of {direction} options -->"
HEADER = "| option | default | meaning |\n|---|---|---|"
_FIRST = ("endpoint", "collection")
"""Listed first in both tables: the two options without a default."""


def shown_default(declared: Option) -> str:
    """The default as the README shows it: a Python literal in backticks, or what decides it."""
    if declared.shown_default is not None:
        return declared.shown_default
    if declared.default is REQUIRED:
        return "required"
    return f"`{_literal(declared.default)}`"


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)  # double quotes, as the README writes strings
    return repr(value)


def _row(declared: Option) -> str:
    return f"| `{declared.name}` | {shown_default(declared)} | {declared.doc} |"


def table(direction: str) -> str:
    """The markdown table of one direction's options: the connection first, then the direction's own.

    The writer's table names the connection options and ``collection`` in one row (``as for reads``).
    """
    declared = {item.name: item for item in DIRECTIONS[direction].declared()}
    first = [name for name in _FIRST if name in declared]
    connection = first + [name for name in ConnectionOptions.option_names() if name not in first]
    rest = [item for name, item in declared.items() if name not in connection]
    if direction == "reader":
        rows = [_row(declared[name]) for name in connection]
    else:
        rows = ["| " + ", ".join(f"`{name}`" for name in connection) + " | as for reads | |"]
    return "\n".join([HEADER, *rows, *(_row(item) for item in rest)])


def rewrite(text: str) -> str:
    """``text`` with each direction's table, between its markers, replaced by the generated one."""
    for direction in DIRECTIONS:
        begin, end = BEGIN.format(direction=direction), END.format(direction=direction)
        pattern = re.compile(re.escape(begin) + r"\n.*?\n" + re.escape(end), re.DOTALL)
        if not pattern.search(text):
            raise ValueError(f"No {direction} options table between {begin!r} and {end!r}")
        generated = f"{begin}\n{table(direction)}\n{end}"
        text = pattern.sub(lambda _: generated, text)
    return text


def main(arguments: list[str]) -> None:
    path = Path(arguments[0]) if arguments else Path(__file__).resolve().parents[1] / "README.md"
    path.write_text(rewrite(path.read_text()))


if __name__ == "__main__":
    main(sys.argv[1:])
