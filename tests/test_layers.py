"""Layers point one way: the source (everything `dlt init` copies from sources/) imports
neither the tests, nor the benchmark, nor the fake Zendesk. The one exception is
`--demo`, which starts the fake from a clone of the repository and says so in one line
where the fake package is missing (as in a `dlt init` project)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List, Tuple

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCES = REPO_ROOT / "sources"
FORBIDDEN = ("tests", "benchmark", "zendesk_fake")


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
