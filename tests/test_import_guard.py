"""`strategies` and `training` exist only as robustqa.strategies / robustqa.training (PyPI has a `strategies`)."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest
from conftest import REPO

CODE_DIRS = ["robustqa", "strategies", "training", "benchmarks", "tests", "tools"]


@pytest.mark.parametrize("name", ["strategies", "training"])
def test_top_level_name_is_not_importable_from_the_repo(name):
    proc = subprocess.run(
        [sys.executable, "-c", f"import {name}"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    assert f"import robustqa.{name}, not {name}" in proc.stderr


@pytest.mark.parametrize("name", ["strategies", "training"])
def test_namespaced_import_works(name):
    proc = subprocess.run(
        [sys.executable, "-c", f"import robustqa.{name} as m; print(m.__name__)"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"robustqa.{name}"


def test_no_code_imports_the_bare_names():
    offenders = []
    for folder in CODE_DIRS:
        for path in sorted((REPO / folder).rglob("*.py")) if (REPO / folder).exists() else []:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for n in names:
                    if n.split(".")[0] in {"strategies", "training"}:
                        offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: {n}")
    assert offenders == []


def test_the_cli_starts_without_the_heavy_libraries():
    # Every call pays the CLI's imports: errors, merge and export must not wait for scikit-learn or torch
    # (sklearn alone took 1.3 s of a 1.9 s start); the code that needs them imports them on first use.
    heavy = "('sklearn', 'torch', 'transformers')"
    code = f"import sys, robustqa.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]", proc.stdout
