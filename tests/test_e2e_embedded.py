"""End to end with the real embedded model: `robustqa generate --strategy naive` on a short real document."""

from __future__ import annotations

import json

import pytest
from test_cli import run_cli

from robustqa.lm.factory import make_lm


@pytest.mark.slow
def test_generate_naive_with_the_embedded_model(tmp_path, xquad_paragraphs):
    doc_id, text = xquad_paragraphs[0]
    doc = tmp_path / "paragraph.txt"
    doc.write_text(text, encoding="utf-8")
    out = tmp_path / "qa.jsonl"
    # Short generations keep the test quick on 2 loaded cores; everything else is the naive default.
    config = tmp_path / "naive.yaml"
    config.write_text("strategy_params: {max_tokens_a: 48, max_tokens_b: 64}\n", encoding="utf-8")
    proc = run_cli(
        "generate",
        str(doc),
        "--strategy",
        "naive",
        "--budget",
        "3",
        "--out",
        str(out),
        "--no-cache",
        "--no-progress",
        "--seed",
        "7",
        "--config",
        str(config),
    )
    assert proc.returncode == 0, proc.stderr
    kept = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    rejected_file = tmp_path / "qa.rejected.jsonl"
    rejected = [json.loads(x) for x in rejected_file.read_text(encoding="utf-8").splitlines()]
    rows = kept + rejected
    # `auto`: CTranslate2 in float32 where ctranslate2 is installed, else transformers.
    default_model = make_lm("auto").model_id
    assert default_model in ("SmolLM2-135M-Instruct@ct2-float32", "SmolLM2-135M-Instruct")
    assert len(rows) == 3
    for row in rows:
        assert row["model"] == default_model  # the default backend's name for the embedded model
        assert row["strategy"] == "naive" and row["seed"] == 7 and row["fingerprint"]
        assert row["target"] is None
        assert 0 <= row["context"]["start"] < row["context"]["end"] <= len(text)
        assert row["messages"] == [
            {"role": "user", "content": row["question"]},
            {"role": "assistant", "content": row["answer"]},
        ]
    # A real model writes real text: at least one kept pair with a non-empty question and answer.
    assert kept and all(r["question"].strip() and r["answer"].strip() for r in kept)
