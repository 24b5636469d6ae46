"""benchmarks/groundedness.py: the audit's groundedness on a hand-built dataset, per kind of evidence, and the
FakeLM generation run end to end."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import REPO

# Appended, not prepended: benchmarks/coverage.py must not shadow the `coverage` package.
if str(REPO / "benchmarks") not in sys.path:
    sys.path.append(str(REPO / "benchmarks"))

import groundedness as gb  # noqa: E402

from robustqa.errors import InputError  # noqa: E402

TEXT = "The river Loire flows through Orleans. The capital of France is Paris. Bananas are yellow fruits."
LOIRE, PARIS, BANANAS = TEXT.split(". ")[0] + ".", "The capital of France is Paris.", "Bananas are yellow fruits."


def _target(sentence: str) -> dict:
    start = TEXT.index(sentence)
    return {"start": start, "end": start + len(sentence), "text": sentence}


def _rows() -> list[dict]:
    return [
        {"doc_id": "d", "question": "What is the capital?", "answer": "Paris", "target": _target(PARIS)},
        # Its words are in the document, but not in its target: unsupported.
        {"doc_id": "d", "question": "Capital?", "answer": "Paris, capital of France", "target": _target(LOIRE)},
        {"doc_id": "d", "question": "Which river?", "answer": "The Loire river", "target": _target(BANANAS)},
        # Half of its content words in the target: supported at 0.5, not at 0.6.
        {"doc_id": "d", "question": "Which city?", "answer": "Paris London", "target": _target(PARIS)},
        # Stop words only: not checked.
        {"doc_id": "d", "question": "Is it?", "answer": "it is", "target": _target(LOIRE)},
        # No target: attributed by retrieval.
        {"doc_id": "d", "question": "What colour are bananas?", "answer": "yellow"},
        {"doc_id": "d", "question": "Xyzzy plugh?", "answer": "qwerty zxcv"},
        # Rejected by a filter: skipped.
        {"doc_id": "d", "question": "Rejected?", "answer": "Paris", "kept": False, "target": _target(PARIS)},
    ]


@pytest.fixture
def qa(tmp_path):
    path = tmp_path / "hand.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows()), encoding="utf-8")
    return path


def _docs():
    from robustqa.types import Document

    return [Document("d", TEXT)]


def test_hand_built_dataset(qa, tmp_path):
    result = gb.measure_dataset(qa, _docs(), 0.5, tmp_path)
    assert result["rows_read"] == 8 and result["skipped_rejected"] == 1
    target, retrieval = result["by_evidence"]["target"], result["by_evidence"]["retrieval"]
    assert (target["kept"], target["checked"], target["supported"]) == (5, 4, 2)
    assert target["by_method"] == {"target": 5}
    assert (retrieval["kept"], retrieval["attributed"], retrieval["checked"], retrieval["supported"]) == (2, 1, 1, 1)
    assert sum(retrieval["unattributable"].values()) == 1
    overall = result["overall"]
    assert (overall["kept"], overall["checked"], overall["supported"]) == (7, 5, 3)
    assert overall["share"]["share"] == 0.6 and overall["share_of_kept"]["share"] == round(3 / 7, 4)
    low, high = overall["share"]["ci95"]
    assert low < 0.6 < high
    # containments: target 1, 0, 0, 0.5; retrieval 1 -> mean 2.5 / 5
    assert overall["mean_containment"] == 0.5
    # "London" is the one name no sentence of the document mentions ("France" and "Loire" are there).
    assert (overall["invented_specifics"]["k"], overall["invented_specifics"]["n"]) == (1, 6)


def test_threshold_is_inclusive_and_configurable(qa, tmp_path):
    strict = gb.measure_dataset(qa, _docs(), 0.6, tmp_path, "strict")
    assert strict["by_evidence"]["target"]["supported"] == 1  # "Paris London" (0.5) drops out


def test_only_targeted_records_have_no_retrieval_group(tmp_path):
    path = tmp_path / "robust.jsonl"
    rows = [dict(r, strategy="robust") for r in _rows()[:2]]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = gb.measure_dataset(path, _docs(), 0.5, tmp_path)
    assert result["by_evidence"]["retrieval"] is None
    assert result["strategies"] == ["robust"] and gb._is_robust(result)
    assert (result["overall"]["checked"], result["overall"]["supported"]) == (2, 1)


def test_bad_row_names_the_original_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(_rows()[0]) + "\n" + json.dumps({"answer": "no question"}) + "\n")
    with pytest.raises(InputError, match=r"bad\.jsonl:2"):
        gb.measure_dataset(path, _docs(), 0.5, tmp_path)


def test_files_mode_and_arguments(qa, tmp_path):
    docs = tmp_path / "d.jsonl"
    docs.write_text(json.dumps({"id": "d", "text": TEXT}) + "\n")
    out = tmp_path / "g.json"
    result = gb.main([str(qa), "--docs", str(docs), "--out", str(out)])
    assert result["datasets"][0]["overall"]["supported"] == 3
    assert result["verdict"] == "not measured"  # not a robust dataset
    assert json.loads(out.read_text())["datasets"][0]["name"] == "hand"
    with pytest.raises(SystemExit):
        gb.main(["--out", str(out)])  # neither files nor --generate


def test_fake_generation_end_to_end(fixture_data, tmp_path):
    out = tmp_path / "g.json"
    argv = ["--generate", "--lm", "fake", "--paragraphs", "3", "--budget-per-paragraph", "2", "--out", str(out)]
    argv += ["--strategies", "naive", "robust@use_embeddings=false", "--smoke"]
    result = gb.main([*argv, "--data", str(fixture_data)])
    assert result["smoke"] is True and result["lm"] == "fake-page-echo"
    assert [d["name"] for d in result["datasets"]] == ["naive", "robust@use_embeddings=false"]
    naive, robust = result["datasets"]
    assert result["generation"]["naive"]["planned"] == 6
    assert naive["by_evidence"]["target"] is None and naive["overall"]["kept"] == result["generation"]["naive"]["kept"]
    assert robust["by_evidence"]["retrieval"] is None
    for d in result["datasets"]:
        o = d["overall"]
        assert o["supported"] <= o["checked"] <= o["attributed"] <= o["kept"]
    assert set(result["verdict"]) == {"robust@use_embeddings=false"}


def test_verdict_needs_the_interval_on_one_side_of_the_goal():
    from _common import wilson

    assert gb.judge(wilson(0, 0)) == "not measured"
    assert gb.judge(wilson(3, 3)).startswith("undecided: 3/3")
    assert gb.judge(wilson(5, 26)) == "MISSED"
    assert gb.judge(wilson(200, 200)) == "met"
