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


def test_covidqa_curve_audits_naive_prefixes_and_reports_a_saturation_point(tmp_path):
    out = tmp_path / "curve.json"
    cmd = [sys.executable, "benchmarks/coverage.py", "--lm", "fake", "--data", "tests/data", "--corpus", "covidqa"]
    args = ["--paragraphs", "1", "--ratios", "0.25,0.5,1", "--strategies", "naive,robust@use_embeddings=false"]
    subprocess.run(
        [*cmd, *args, "--prefix-curve", "naive", "--out", str(out)], cwd=REPO, check=True, capture_output=True
    )
    result = json.loads(out.read_text())
    assert result["corpus"] == "covidqa" and len(result["document_ids"]) == 1
    naive = [r for r in result["rows"] if r["strategy"] == "naive"]
    assert [r["questions_per_sentence"] for r in naive] == [0.25, 0.5, 1.0]
    full = naive[-1]
    assert "from_prefix_of" not in full and full["lm_tokens"] > 0
    for row in naive[:-1]:  # audited from the first records of the full run, at no LM cost
        assert row["from_prefix_of"] == f"naive_{full['budget']}.jsonl" and "lm_tokens" not in row
        assert row["covered_sentences"] <= full["covered_sentences"]
    for curve in result["saturation"].values():
        points = curve["curve"]
        assert [p["budget"] for p in points] == sorted(p["budget"] for p in points)
        before = (0, 0)
        for p in points:  # the yield of a step: new sentences covered per added question
            assert p["yield"] == round((p["covered"] - before[1]) / (p["budget"] - before[0]), 3)
            before = (p["budget"], p["covered"])
        low = [i for i, p in enumerate(points) if i > 0 and p["yield"] < 0.5]
        assert curve["saturation_budget"] == (points[low[0] - 1]["budget"] if low else None)
    bad = subprocess.run([*cmd, *args, "--prefix-curve", "robust"], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode != 0 and "naive only" in bad.stderr
