"""The core (robustqa/) never imports the strategies package: strategies plug into the core, not the reverse.
(robustqa.registry finds them through the `robustqa.strategies` entry-point group, by name, at run time.) Nor
does it import the training package, which builds on the core; only the CLI's train and compare commands call
it."""

from __future__ import annotations

import ast

from conftest import REPO


def _imports(path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_no_core_module_imports_the_training_package():
    offenders = [
        f"{path.relative_to(REPO)}: {name}"
        for path in sorted((REPO / "robustqa").rglob("*.py"))
        if "cli" not in path.relative_to(REPO / "robustqa").parts
        for name in _imports(path)
        if name.startswith("robustqa.training")
    ]
    assert offenders == []
    # The check reads what it should: the CLI does import training.
    assert any(n.startswith("robustqa.training") for n in _imports(REPO / "robustqa" / "cli" / "train_cmd.py"))


def test_no_core_module_imports_the_strategies():
    offenders = [
        f"{path.relative_to(REPO)}: {name}"
        for path in sorted((REPO / "robustqa").rglob("*.py"))
        for name in _imports(path)
        if name.startswith("robustqa.strategies")
    ]
    assert offenders == []
