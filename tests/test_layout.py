"""The package's layering, read from its source with ``ast``: what each module imports, and how long it is.

Layers, lowest first: the Spark-free core (the top-level modules ``dagster_qdrant/*.py`` and
``dagster_qdrant/points/``), the Spark data source (``dagster_qdrant/spark/``), the Dagster integration
(``dagster_qdrant/dagster_io/``); the embedded server (``dagster_qdrant/embedded/``) stands beside them and
needs neither Spark nor Dagster. A module imports only from its own layer or below:

- the core never imports ``dagster_qdrant.spark``, ``dagster_qdrant.dagster_io``, ``pyspark`` or ``dagster``;
- ``spark/`` never imports ``dagster_qdrant.dagster_io`` or ``dagster``;
- ``embedded/`` never imports ``dagster_qdrant.spark``, ``dagster_qdrant.dagster_io``, ``pyspark`` or ``dagster``;
- no two modules of the package import each other, directly or through others (no import cycle).

Every ``import`` statement counts, wherever it stands: at module level, in a function, under
``if TYPE_CHECKING``. Names the package root resolves lazily by their dotted name (``importlib`` on a
string, PEP 562) are not imports and are not followed.

Length: no module is over 400 lines unless its docstring says why, on a line of its own that starts with
``Why this module is long:`` followed by the reason.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "dagster_qdrant"
PACKAGE = PACKAGE_DIR.name
MAX_LINES = 400
LONG_REASON = "Why this module is long:"

# (layer, modules it must never import): a forbidden name also forbids every module below it.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "core": (f"{PACKAGE}.spark", f"{PACKAGE}.dagster_io", "pyspark", "dagster"),
    "spark": (f"{PACKAGE}.dagster_io", "dagster"),
    "embedded": (f"{PACKAGE}.spark", f"{PACKAGE}.dagster_io", "pyspark", "dagster"),
    "dagster_io": (),
}


def module_name(path: Path, package_dir: Path = PACKAGE_DIR) -> str:
    """``dagster_qdrant/spark/schema.py`` -> ``dagster_qdrant.spark.schema``; a package's ``__init__`` is the package."""
    parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Every module of the package by its dotted name."""
    return {module_name(path, package_dir): path for path in sorted(package_dir.rglob("*.py"))}


def imported_names(path: Path, name: str, known: set[str]) -> Iterator[str]:
    """Every module ``path`` imports, wherever the statement stands; relative imports resolved.

    ``from a.b import c`` names ``a.b``, and ``a.b.c`` too when that is a module of the package.
    """
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base != name:  # a package's ``from . import x`` imports x, not itself
                yield base
            for alias in node.names:
                if f"{base}.{alias.name}" in known:
                    yield f"{base}.{alias.name}"


def import_graph(package_dir: Path = PACKAGE_DIR) -> tuple[dict[str, set[str]], dict[str, Path]]:
    """(module -> every module it imports, inside or outside the package; module -> its file)."""
    found = modules(package_dir)
    known = set(found)
    return {name: set(imported_names(path, name, known)) for name, path in found.items()}, found


def layer_of(name: str) -> str:
    """The layer of a module of the package: its subpackage, or ``core`` (top-level modules, ``points/``)."""
    below = name.split(".")[1:]
    return below[0] if below and below[0] in ("spark", "dagster_io", "embedded") else "core"


def is_within(name: str, prefix: str) -> bool:
    """``dagster.x`` is within ``dagster``; ``dagster_qdrant`` is not."""
    return name == prefix or name.startswith(prefix + ".")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import a module's layer forbids, as ``module -> imported (layer rule)``."""
    found = []
    for name, imports in sorted(graph.items()):
        layer = layer_of(name)
        for target in sorted(imports):
            for forbidden in FORBIDDEN[layer]:
                if is_within(target, forbidden):
                    found.append(f"{name} -> {target} (the {layer} layer never imports {forbidden})")
    return found


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of package modules that import each other (Tarjan's strongly connected components)."""
    inside = {name: sorted(t for t in imports if t in graph and t != name) for name, imports in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in inside[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(inside):
        if node not in index:
            visit(node)
    return cycles


def self_imports(graph: dict[str, set[str]]) -> list[str]:
    """Modules that import themselves (a package ``__init__`` naming its own submodules does not)."""
    return sorted(name for name, imports in graph.items() if name in imports)


def too_long(files: dict[str, Path], root: Path = PACKAGE_DIR.parent) -> list[str]:
    """Modules over MAX_LINES lines whose docstring gives no ``Why this module is long:`` line."""
    found = []
    for name, path in sorted(files.items()):
        text = path.read_text()
        lines = len(text.splitlines())
        if lines <= MAX_LINES:
            continue
        docstring = ast.get_docstring(ast.parse(text)) or ""
        reasons = [line.strip() for line in docstring.splitlines() if line.strip().startswith(LONG_REASON)]
        if not any(reason[len(LONG_REASON):].strip() for reason in reasons):
            found.append(f"{path.relative_to(root).as_posix()}: {lines} lines, no '{LONG_REASON} ...' in its docstring")
    return found


@pytest.fixture(scope="module")
def graph() -> tuple[dict[str, set[str]], dict[str, Path]]:
    return import_graph()


def test_the_package_is_read_whole(graph: tuple[dict[str, set[str]], dict[str, Path]]) -> None:
    """The checks below see every layer (a moved folder would otherwise pass them by having no modules)."""
    names = set(graph[0])
    for layer in ("points", "spark", "dagster_io", "embedded"):
        assert any(is_within(name, f"{PACKAGE}.{layer}") and name != f"{PACKAGE}.{layer}" for name in names), layer
    assert {layer_of(name) for name in names} == set(FORBIDDEN)


def test_no_module_imports_upward(graph: tuple[dict[str, set[str]], dict[str, Path]]) -> None:
    found = upward_imports(graph[0])
    assert not found, "imports against the layering:\n" + "\n".join(found)


def test_no_import_cycle(graph: tuple[dict[str, set[str]], dict[str, Path]]) -> None:
    cycles = import_cycles(graph[0])
    assert not cycles, "modules that import each other:\n" + "\n".join(" <-> ".join(group) for group in cycles)
    assert self_imports(graph[0]) == []


def test_no_module_is_long_without_a_stated_reason(graph: tuple[dict[str, set[str]], dict[str, Path]]) -> None:
    found = too_long(graph[1])
    assert not found, f"modules over {MAX_LINES} lines:\n" + "\n".join(found)


# --- the checks themselves, on a package written for the purpose ---------------------------------


def _package(root: Path, files: dict[str, str]) -> Path:
    package_dir = root / PACKAGE
    for relative, text in files.items():
        path = package_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package_dir


def test_an_upward_import_anywhere_in_a_module_is_found(tmp_path: Path) -> None:
    package_dir = _package(tmp_path, {
        "__init__.py": "",
        "options.py": "def f():\n    from .spark import datasource\n",
        "spark/__init__.py": "",
        "spark/datasource.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import dagster\n",
        "points/__init__.py": "",
        "points/rows.py": "import pyspark.sql\n",
        "embedded/__init__.py": "",
        "embedded/server.py": "from dagster_qdrant.dagster_io.resources import x\n",
        "dagster_io/__init__.py": "",
        "dagster_io/resources.py": "import dagster\nimport pyspark\nfrom dagster_qdrant.spark import datasource\n",
    })
    graph, _ = import_graph(package_dir)
    assert upward_imports(graph) == [
        "dagster_qdrant.embedded.server -> dagster_qdrant.dagster_io.resources "
        "(the embedded layer never imports dagster_qdrant.dagster_io)",
        "dagster_qdrant.options -> dagster_qdrant.spark (the core layer never imports dagster_qdrant.spark)",
        "dagster_qdrant.options -> dagster_qdrant.spark.datasource (the core layer never imports dagster_qdrant.spark)",
        "dagster_qdrant.points.rows -> pyspark.sql (the core layer never imports pyspark)",
        "dagster_qdrant.spark.datasource -> dagster (the spark layer never imports dagster)",
    ]


def test_a_cycle_through_a_relative_import_is_found(tmp_path: Path) -> None:
    package_dir = _package(tmp_path, {
        "__init__.py": "",
        "a.py": "from . import b\n",
        "b.py": "def later():\n    from dagster_qdrant.points.c import x\n",
        "points/__init__.py": "",
        "points/c.py": "from ..a import y\nimport dagster_qdrant_other\n",
        "d.py": "import dagster_qdrant.a\n",
    })
    graph, _ = import_graph(package_dir)
    assert import_cycles(graph) == [["dagster_qdrant.a", "dagster_qdrant.b", "dagster_qdrant.points.c"]]
    assert upward_imports(graph) == [], "dagster_qdrant_other is not dagster"


def test_a_long_module_needs_its_reason_in_the_docstring(tmp_path: Path) -> None:
    body = "x = 1\n" * MAX_LINES
    package_dir = _package(tmp_path, {
        "__init__.py": "",
        "short.py": "x = 1\n" * (MAX_LINES - 1),
        "silent.py": '"""Does things."""\n' + body,
        "empty_reason.py": f'"""Does things.\n\n{LONG_REASON}\n"""\n' + body,
        "comment.py": f"# {LONG_REASON} it is.\n" + body,
        "reasoned.py": f'"""Does things.\n\n{LONG_REASON} one table of every Qdrant error, kept together.\n"""\n' + body,
    })
    found = [line.split(":")[0] for line in too_long(modules(package_dir), tmp_path)]
    assert found == ["dagster_qdrant/comment.py", "dagster_qdrant/empty_reason.py", "dagster_qdrant/silent.py"]



# --- the recorded exchanges: one folder per test module, one file per test of it --------------------


def test_cassette_folders_are_named_after_their_test_modules() -> None:
    """pytest-recording replays ``tests/cassettes/<test module>/<test>.yaml``; a file elsewhere is never played."""
    tests = Path(__file__).resolve().parent
    folders = sorted(path for path in (tests / "cassettes").iterdir() if path.is_dir())
    assert folders, "no cassette folders found"
    for folder in folders:
        module = tests / f"{folder.name}.py"
        assert module.exists(), f"tests/cassettes/{folder.name}/ is named after no test module"
        tests_of_module = {
            node.name for node in ast.walk(ast.parse(module.read_text())) if isinstance(node, ast.FunctionDef)
        }
        for cassette in sorted(folder.glob("*.yaml")):
            assert cassette.stem in tests_of_module, f"{cassette.relative_to(tests)} is named after no test of {module.name}"
