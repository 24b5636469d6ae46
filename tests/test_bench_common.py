"""benchmarks/_common.py: where the data lies, and paths as result files record them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest
from conftest import REPO

if str(REPO / "benchmarks") not in sys.path:
    sys.path.append(str(REPO / "benchmarks"))

import _common  # noqa: E402


def test_data_defaults_to_the_folder_beside_the_repo_and_names_a_missing_path(tmp_path):
    parser = argparse.ArgumentParser()
    _common.add_data_argument(parser)
    assert parser.parse_args([]).data == REPO.parent / "shared" / "data"
    data = parser.parse_args(["--data", str(tmp_path)]).data
    (tmp_path / "x.json").write_text("{}")
    assert _common.data_file(data, "x.json") == tmp_path / "x.json"
    with pytest.raises(SystemExit, match=f"data not found: {tmp_path / 'web' / 'y.json'} "):
        _common.data_file(data, "web", "y.json")


def test_result_files_name_no_absolute_path():
    assert _common.shown_path(REPO / "runs" / "a.jsonl") == "runs/a.jsonl"
    assert _common.shown_path(Path.home() / ".cache" / "m") == "~/.cache/m"
    line = _common.command_line("x.py", ["--keep", str(REPO / "runs" / "k"), "--n", "3"])
    assert line == "python benchmarks/x.py --keep runs/k --n 3"
    scratch = _common.command_line("x.py", ["--keep", "/tmp/scratch", "--n", "3"])  # a folder of this machine
    assert scratch == "python benchmarks/x.py --n 3"
