"""The core (robustqa/) never imports the strategies package: strategies plug into the core, not the reverse.
(robustqa.registry finds them through the `robustqa.strategies` entry-point group, by name, at run time.)"""

from __future__ import annotations

import ast

from conftest import REPO


def test_no_core_module_imports_the_strategies():
    offenders = []
    for path in sorted((REPO / "robustqa").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names if n.startswith("robustqa.strategies")]
    assert offenders == []
