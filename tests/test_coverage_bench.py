"""benchmarks/coverage.py end to end on the FakeLM: specs with several parameters, audit figures per row."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO


def test_coverage_benchmark_runs_specs_with_several_parameters(tmp_path):
    out = tmp_path / "coverage.json"
    specs = "naive,robust@use_embeddings=false,attempts=2"
    cmd = [
        sys.executable,
        "benchmarks/coverage.py",
        "--lm",
        "fake",
        "--paragraphs",
        "2",
        "--ratios",
        "1",
        "--data",
        "tests/data",
    ]
    subprocess.run([*cmd, "--strategies", specs, "--out", str(out)], cwd=REPO, check=True, capture_output=True)
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert [r["strategy"] for r in rows] == ["naive", "robust@use_embeddings=false,attempts=2"]
    for row in rows:
        assert row["kept"] + row["rejected"] >= row["budget"] > 0
        assert 0.0 <= row["coverage"] <= 1.0
        assert "invented_specifics" in row and "groundedness" in row
    # Two runs at one ratio: how much their covered sentences overlap, from the audit.
    assert 0.0 <= result["between_runs"]["1.0"]["mean_jaccard"] <= 1.0
