"""Layers point one way.

The source (everything `dlt init` copies from sources/) imports neither the tests, nor the
benchmark, nor the fake Zendesk. The one exception is `--demo`, which starts the fake from a
clone of the repository and says so in one line where the fake package is missing (as in a
`dlt init` project).

Inside the package, each module belongs to one layer of `LAYERS` and imports only its own
layer and the ones below it, and no import (at module level or inside a function) closes a
cycle, so the folders read as the design does (docs/design.md#layout)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCES = REPO_ROOT / "sources"
FORBIDDEN = ("tests", "benchmark", "zendesk_fake")
PACKAGE = SOURCES / "zendesk"

#: The package's layers, lowest first; a module may import its own layer and those below.
#: A name covers the module or package of that name and everything under it; the source's
#: own top (`zendesk` is its `__init__`) names its modules one by one.
LAYERS: List[Tuple[str, Tuple[str, ...]]] = [
    ("base", ("zendesk.errors", "zendesk.config", "zendesk.version")),
    ("tables", ("zendesk.tables",)),
    ("run", ("zendesk.run",)),
    ("api", ("zendesk.api",)),
    ("auth", ("zendesk.auth",)),
    ("source", ("zendesk", "zendesk.resources", "zendesk.run_settings", "zendesk.check")),
    ("accounts", ("zendesk.accounts",)),
]


def imported_modules(path: Path) -> Iterator[Tuple[str, ast.AST, List[ast.AST]]]:
    """(module, import node, its enclosing definitions) for every import in a file."""

    def visit(node: ast.AST, enclosing: List[ast.AST]) -> Iterator[Tuple[str, ast.AST, List[ast.AST]]]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node, enclosing
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, node, enclosing
        inner = enclosing + [node] if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else enclosing
        for child in ast.iter_child_nodes(node):
            yield from visit(child, inner)

    yield from visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), [])


def package_modules() -> Dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(SOURCES).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def import_graph(modules: Dict[str, Path]) -> Dict[str, Set[str]]:
    """module -> the package modules it imports, wherever the import stands. `from x import y`
    counts as importing `x.y` when that is a module, else `x`."""
    graph: Dict[str, Set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            else:
                continue
            edges.update(target for target in targets if target in modules and target != name)
    return graph


def layer_of(module: str) -> Optional[int]:
    """The rank of the layer `module` belongs to (the longest name of `LAYERS` covering it)."""
    best: Optional[Tuple[int, int]] = None
    for rank, (_, names) in enumerate(LAYERS):
        for covered in names:
            if module == covered or (covered != "zendesk" and module.startswith(covered + ".")):
                if best is None or len(covered) > best[1]:
                    best = (rank, len(covered))
    return None if best is None else best[0]


def upward_imports(graph: Dict[str, Set[str]]) -> List[str]:
    """Every import of a module in a higher layer than the importer's."""
    return [
        f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for module, targets in sorted(graph.items())
        for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]


def find_cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """One import cycle as [a, b, ..., a], or [] when there is none."""
    state: Dict[str, int] = {}  # 1 on the current path, 2 done
    path: List[str] = []

    def visit(module: str) -> List[str]:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        state[module] = 2
        path.pop()
        return []

    for module in sorted(graph):
        if module not in state:
            found = visit(module)
            if found:
                return found
    return []


def layer_breaches() -> List[str]:
    breaches = []
    for path in sorted(SOURCES.rglob("*.py")):
        for module, node, enclosing in imported_modules(path):
            if module.split(".")[0] not in FORBIDDEN:
                continue
            where = [getattr(d, "name", "?") for d in enclosing]
            if path.name == "zendesk_pipeline.py" and module == "zendesk_fake" and where == ["demo_account"]:
                continue
            breaches.append(f"{path.relative_to(REPO_ROOT)}:{getattr(node, 'lineno', 0)} imports {module} in {where or 'module'}")
    return breaches


def test_the_source_imports_no_test_benchmark_or_fake_module() -> None:
    assert list(SOURCES.rglob("*.py")), "no source file found: the check would prove nothing"
    assert layer_breaches() == []


def test_every_package_module_has_a_layer() -> None:
    modules = package_modules()
    assert {"zendesk", "zendesk.tables.registry", "zendesk.auth.stores", "zendesk.accounts.sync"} <= set(modules)
    assert [name for name in modules if layer_of(name) is None] == []


def test_package_layers_import_only_downward() -> None:
    graph = import_graph(package_modules())
    assert sum(map(len, graph.values())) > 50, "too few imports seen: the check would prove nothing"
    assert upward_imports(graph) == []


def test_the_package_has_no_import_cycle() -> None:
    assert find_cycle(import_graph(package_modules())) == []


def test_the_layer_checks_see_a_cycle_and_an_upward_import(tmp_path: Path) -> None:
    """The graph reads relative imports (module level and lazy, `from . import module`), and
    both checks fail where they should, or the tests above could pass on a broken layout."""
    package = tmp_path / "zendesk"
    (package / "auth").mkdir(parents=True)
    (package / "__init__.py").write_text("from .auth import tokens\n", encoding="utf-8")
    (package / "errors.py").write_text("def f():\n    from .auth.tokens import X\n", encoding="utf-8")
    (package / "auth" / "__init__.py").write_text("", encoding="utf-8")
    (package / "auth" / "tokens.py").write_text("from ..errors import E\n", encoding="utf-8")
    modules = {"zendesk": package / "__init__.py", "zendesk.errors": package / "errors.py",
               "zendesk.auth": package / "auth" / "__init__.py", "zendesk.auth.tokens": package / "auth" / "tokens.py"}
    graph = import_graph(modules)
    assert graph == {"zendesk": {"zendesk.auth.tokens"}, "zendesk.errors": {"zendesk.auth.tokens"},
                     "zendesk.auth": set(), "zendesk.auth.tokens": {"zendesk.errors"}}
    assert find_cycle(graph) == ["zendesk.auth.tokens", "zendesk.errors", "zendesk.auth.tokens"]
    assert upward_imports(graph) == ["zendesk.errors (base) imports zendesk.auth.tokens (auth)"]


def test_the_check_sees_a_breach(tmp_path: Path) -> None:
    """The walker finds imports at module level and inside functions (else the test above
    could pass on a source that breaks the rule)."""
    sample = tmp_path / "sample.py"
    sample.write_text("import tests.helpers\n\ndef f():\n    from benchmark import sync_once\n", encoding="utf-8")
    found = [(module, [getattr(d, "name", "?") for d in enclosing]) for module, _, enclosing in imported_modules(sample)]
    assert found == [("tests.helpers", []), ("benchmark", ["f"])]


def test_demo_without_the_fake_package_says_so_in_one_line(tmp_path: Path) -> None:
    """A `dlt init` project holds sources/ only: --demo names what is missing and stops."""
    project = tmp_path / "project"
    shutil.copytree(SOURCES, project, ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run(
        [sys.executable, str(project / "zendesk_pipeline.py"), "--demo"],
        cwd=project, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "--demo needs the fake Zendesk package zendesk_fake/ from this project's repository;"
        " run it from a clone of the repository."
    ]
