"""The generation run: budget split, append-only output, resume, shards, rejected side file."""

from __future__ import annotations

import json

import pytest

from robustqa.budget import allocate_budget
from robustqa.errors import ConfigError
from robustqa.io.jsonl import read_records
from robustqa.lm.fake import FakeLM
from robustqa.registry import get_strategy
from robustqa.run_files import rejected_path
from robustqa.runner import generate_records


def _lm():
    return FakeLM(default=lambda req: "What does the passage say about " + req.messages[0][1].split()[-1] + "?")


def test_allocate_budget_is_proportional_and_exact():
    assert allocate_budget([1, 1, 2], 8) == [2, 2, 4]
    assert sum(allocate_budget([3, 1, 1], 7)) == 7
    assert allocate_budget([1, 1, 1], 2) == [1, 1, 0]
    assert allocate_budget([0, 5], 3) == [0, 3]
    assert allocate_budget([], 3) == []


def test_records_are_written_with_provenance(tmp_path, real_docs):
    out = tmp_path / "qa.jsonl"
    summary = generate_records(real_docs, get_strategy("naive"), _lm(), 6, 1, out, progress=False)
    rows = list(read_records(out))
    assert summary.kept == len(rows) == 6
    assert {r["doc_id"] for r in rows} <= {d.id for d in real_docs}
    assert all(r["fingerprint"] == summary.fingerprint and r["seed"] == 1 for r in rows)
    assert (tmp_path / "qa.manifest.json").exists()


def test_rejected_pairs_go_to_the_side_file(tmp_path, real_docs):
    out = tmp_path / "qa.jsonl"
    # stratified rejects empty output (naive, faithful to Cartridges, keeps it: see the test below).
    summary = generate_records(real_docs, get_strategy("stratified"), FakeLM(default=""), 4, 0, out, progress=False)
    assert summary.kept == 0 and summary.rejected == 4
    assert summary.rejected_by == {"format": 4}  # empty output fails the format check first
    rejected = list(read_records(rejected_path(out)))
    assert len(rejected) == 4 and all(not r["kept"] for r in rejected)


def test_naive_keeps_empty_output_as_cartridges_does_and_says_so(tmp_path, real_docs):
    out = tmp_path / "qa.jsonl"
    summary = generate_records(real_docs, get_strategy("naive"), FakeLM(default=""), 4, 0, out, progress=False)
    assert summary.kept == 4 and summary.rejected == 0
    rows = list(read_records(out))
    assert all(r["question"] == "" and r["answer"] == "" for r in rows)
    assert all(r["decisions"][-1]["reason"].startswith("empty question and answer kept") for r in rows)


def test_existing_output_needs_resume_or_overwrite(tmp_path, real_docs):
    out = tmp_path / "qa.jsonl"
    generate_records(real_docs, get_strategy("naive"), _lm(), 3, 0, out, progress=False)
    with pytest.raises(ConfigError, match="--resume"):
        generate_records(real_docs, get_strategy("naive"), _lm(), 3, 0, out, progress=False)
    summary = generate_records(real_docs, get_strategy("naive"), _lm(), 3, 0, out, overwrite=True, progress=False)
    assert summary.kept == 3 and len(list(read_records(out))) == 3


def test_resume_after_a_torn_write_loses_and_duplicates_nothing(tmp_path, real_docs):
    full = tmp_path / "full.jsonl"
    generate_records(real_docs, get_strategy("naive"), _lm(), 8, 5, full, progress=False)
    expected = [json.loads(line) for line in full.read_text().splitlines()]

    # A run killed after 3 records, in the middle of writing the 4th.
    out = tmp_path / "qa.jsonl"
    lines = full.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:3]) + lines[3][: len(lines[3]) // 2])
    (tmp_path / "qa.manifest.json").write_text((tmp_path / "full.manifest.json").read_text())
    lm = _lm()
    summary = generate_records(real_docs, get_strategy("naive"), lm, 8, 5, out, resume=True, progress=False)
    assert summary.skipped_done == 3 and summary.kept == 5
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in got] == [r["id"] for r in expected]
    assert got == expected
    assert lm.usage.requests == 5 * 2  # only the missing pairs cost LM calls


def test_resume_refuses_a_different_configuration(tmp_path, real_docs):
    out = tmp_path / "qa.jsonl"
    generate_records(real_docs, get_strategy("naive"), _lm(), 3, 0, out, progress=False)
    with pytest.raises(ConfigError, match="different configuration"):
        generate_records(real_docs, get_strategy("naive"), _lm(), 3, 1, out, resume=True, progress=False)


def test_shards_partition_the_work(tmp_path, real_docs):
    whole = tmp_path / "whole.jsonl"
    generate_records(real_docs, get_strategy("naive"), _lm(), 12, 0, whole, progress=False)
    ids = set()
    for i in range(3):
        part = tmp_path / f"part{i}.jsonl"
        generate_records(
            real_docs,
            get_strategy("naive"),
            _lm(),
            12,
            0,
            part,
            shard=(i, 3),
            progress=False,
            fingerprint=None,
        )
        part_ids = {r["id"] for r in read_records(part)}
        assert not ids & part_ids
        ids |= part_ids
    assert ids == {r["id"] for r in read_records(whole)}


def test_progress_bar_total_is_the_shards_planned_count(tmp_path, real_docs, capsys):
    out = tmp_path / "qa.jsonl"
    summary = generate_records(real_docs, get_strategy("naive"), _lm(), 12, 0, out, shard=(1, 3), progress=True)
    err = capsys.readouterr().err
    planned = json.loads((tmp_path / "qa.manifest.json").read_text())["planned"]
    assert summary.planned == planned == summary.kept and 0 < planned < 12
    assert f"{planned}/{planned}" in err and "3/3" in err  # the pairs of this shard, the documents planned
