"""`robustqa merge` (shards joined and checked against an unsharded run) and `robustqa export` (each format
read back the way its consumer reads it)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO

from robustqa.errors import ConfigError, InputError
from robustqa.export import export_records
from robustqa.io.jsonl import read_records
from robustqa.lm.fake import FakeLM
from robustqa.merge import merge_shards
from robustqa.registry import get_strategy
from robustqa.run_files import manifest_path, rejected_path
from robustqa.runner import generate_records

FAST = ("--backend", "fake", "--no-cache", "--no-progress")


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-c", "from robustqa.cli import main; main()", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def one_line_error(proc) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("robustqa: error:")
    return err


def sorted_lines(path):
    return sorted(path.read_text(encoding="utf-8").splitlines())


def _reply(req):
    # Some empty replies, so rejected records exist too and travel through merge (the merge runs use
    # `stratified`, which rejects empty output; naive, faithful to Cartridges, keeps it).
    last = req.messages[-1][1]
    word = (last.split() or ["nothing"])[-1].strip(".,;:!?\"'")
    return "" if len(last) % 3 == 0 else f"What does the passage say about the {word}?"


def _lm():
    return FakeLM(default=_reply)


MERGED = "stratified"


@pytest.fixture
def shard_run(tmp_path, real_docs):
    """An unsharded run and the same run split 3 ways (in process, so each test stays fast)."""
    whole = tmp_path / "whole.jsonl"
    generate_records(real_docs, get_strategy(MERGED), _lm(), 30, 4, whole, progress=False)
    parts = []
    for i in range(3):
        part = tmp_path / f"part{i}.jsonl"
        generate_records(real_docs, get_strategy(MERGED), _lm(), 30, 4, part, shard=(i, 3), progress=False)
        parts.append(part)
    return whole, parts


# ------------------------------------------------------------------------------------------------------------
# merge


def test_cli_shards_merge_into_the_unsharded_run(tmp_path, fixture_data):
    docs = fixture_data / "xquad_en_dev.json"
    whole, merged = tmp_path / "whole.jsonl", tmp_path / "merged.jsonl"
    args = (docs, "--strategy", "naive", "--budget", 24, "--seed", 3, *FAST)
    assert run_cli("generate", *args, "--out", whole).returncode == 0
    parts = []
    for i in range(3):
        part = tmp_path / f"shard{i}.jsonl"
        proc = run_cli("generate", *args, "--shard", f"{i}/3", "--out", part)
        assert proc.returncode == 0, proc.stderr
        parts.append(part)
    assert all(sorted_lines(p) for p in parts), "every shard got work"

    proc = run_cli("merge", *parts, "--out", merged)
    assert proc.returncode == 0, proc.stderr
    assert "merged 3 of 3 shard(s)" in proc.stdout
    assert sorted_lines(merged) == sorted_lines(whole)
    assert len(sorted_lines(merged)) == 24
    manifest = json.loads(manifest_path(merged).read_text())
    assert manifest["shard"] == [0, 1] and len(manifest["merged_from"]) == 3

    # The merged file is a finished unsharded run: a resume plans the same items and finds all of them done.
    proc = run_cli("generate", *args, "--out", merged, "--resume")
    assert proc.returncode == 0, proc.stderr
    assert "0 kept" in proc.stdout and "(24 done before)" in proc.stdout
    assert sorted_lines(merged) == sorted_lines(whole)


def test_merge_keeps_kept_and_rejected_apart_and_loses_nothing(tmp_path, shard_run):
    whole, parts = shard_run
    out = tmp_path / "merged.jsonl"
    report = merge_shards(list(reversed(parts)), out)  # any order
    assert sorted_lines(out) == sorted_lines(whole)
    assert sorted_lines(rejected_path(out)) == sorted_lines(rejected_path(whole))
    assert report.rejected > 0 and report.kept > 0
    assert report.kept + report.rejected == 30
    assert [s.index for s in report.shards] == [0, 1, 2]


def test_a_missing_shard_is_an_error_unless_partial_is_allowed(tmp_path, shard_run):
    _, parts = shard_run
    out = tmp_path / "merged.jsonl"
    proc = run_cli("merge", parts[0], parts[2], "--out", out)
    assert "1/3 missing" in one_line_error(proc)
    assert not out.exists() and not rejected_path(out).exists() and not manifest_path(out).exists()

    report = merge_shards([parts[0], parts[2]], out, allow_partial=True)
    assert report.missing_shards == [1]
    assert "MISSING shard(s): 1/3" in report.summary()
    assert "planned" not in json.loads(manifest_path(out).read_text())


def test_shards_of_different_runs_do_not_merge(tmp_path, real_docs, shard_run):
    _, parts = shard_run
    other = tmp_path / "other.jsonl"
    generate_records(real_docs, get_strategy(MERGED), _lm(), 30, 5, other, shard=(1, 3), progress=False)
    with pytest.raises(ConfigError, match="different configurations"):
        merge_shards([parts[0], other, parts[2]], tmp_path / "m.jsonl")


def test_the_same_shard_twice_is_reported_as_extra(tmp_path, shard_run):
    _, parts = shard_run
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(parts[1].read_bytes())
    manifest_path(copy).write_bytes(manifest_path(parts[1]).read_bytes())
    with pytest.raises(InputError, match="given twice"):
        merge_shards([*parts, copy], tmp_path / "m.jsonl")


def test_a_record_in_the_wrong_shard_is_refused(tmp_path, shard_run):
    _, parts = shard_run
    stray = parts[0].read_text().splitlines(keepends=True)[0]
    with open(parts[1], "a") as fh:
        fh.write(stray)
    out = tmp_path / "m.jsonl"
    with pytest.raises(InputError, match="does not belong to shard 1/3"):
        merge_shards(parts, out)
    assert not out.exists() and not list(tmp_path.glob(".m.jsonl*"))


def test_a_duplicate_record_is_refused(tmp_path, shard_run):
    _, parts = shard_run
    lines = parts[0].read_text().splitlines(keepends=True)
    parts[0].write_text("".join(lines + lines[:1]))
    with pytest.raises(InputError, match="duplicate record id"):
        merge_shards(parts, tmp_path / "m.jsonl")


def test_a_shard_cut_short_by_a_kill_asks_for_resume(tmp_path, shard_run):
    _, parts = shard_run
    text = parts[2].read_text()
    parts[2].write_text(text[:-20])  # a torn last line
    proc = run_cli("merge", *parts, "--out", tmp_path / "m.jsonl")
    assert "--resume" in one_line_error(proc)
    assert not (tmp_path / "m.jsonl").exists()


def test_a_planned_count_in_the_manifest_finds_missing_records(tmp_path, shard_run):
    _, parts = shard_run
    for part in parts:
        manifest = json.loads(manifest_path(part).read_text())
        have = len(list(read_records(part))) + len(list(read_records(rejected_path(part))))
        manifest["planned"] = have + (2 if part is parts[1] else 0)
        manifest_path(part).write_text(json.dumps(manifest))
    out = tmp_path / "m.jsonl"
    with pytest.raises(InputError, match="2 missing"):
        merge_shards(parts, out)
    assert not out.exists()
    report = merge_shards(parts, out, allow_partial=True)
    assert report.planned == 32 and any("2 missing" in n for n in report.notes)


def test_merge_refuses_to_overwrite_or_to_write_over_a_shard(tmp_path, shard_run):
    _, parts = shard_run
    out = tmp_path / "m.jsonl"
    merge_shards(parts, out)
    with pytest.raises(ConfigError, match="--overwrite"):
        merge_shards(parts, out)
    merge_shards(parts, out, overwrite=True)
    with pytest.raises(ConfigError, match="must not be one of the shard files"):
        merge_shards(parts, parts[0], overwrite=True)


# ------------------------------------------------------------------------------------------------------------
# export


@pytest.fixture
def qa_file(tmp_path, real_docs):
    out = tmp_path / "qa.jsonl"
    generate_records(real_docs, get_strategy("naive"), _lm(), 12, 0, out, progress=False)
    return out


def test_openai_export_is_messages_only(tmp_path, qa_file):
    out = tmp_path / "ft.jsonl"
    proc = run_cli("export", qa_file, "--format", "openai", "--out", out)
    assert proc.returncode == 0, proc.stderr
    records = list(read_records(qa_file))
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(records) > 0
    for row, rec in zip(rows, records, strict=True):
        assert list(row) == ["messages"]
        assert row["messages"] == [
            {"role": "user", "content": rec["question"]},
            {"role": "assistant", "content": rec["answer"]},
        ]


def _read_cartridges_parquet(path):
    """What Cartridges' `read_conversations` does with a .parquet file (cartridges/structs.py)."""
    import pandas as pd

    rows = pd.read_parquet(path).to_dict(orient="records")
    convos = []
    for row in rows:
        messages = [
            {
                "content": m["content"],
                "role": m["role"],
                "token_ids": m["token_ids"],
                "top_logprobs": None if m["top_logprobs"] is None else dict(m["top_logprobs"]),
            }
            for m in row["messages"]
        ]
        convos.append(
            {
                "messages": messages,
                "system_prompt": row["system_prompt"],
                "metadata": row["metadata"],
                "type": row["type"],
            }
        )
    return convos


def test_cartridges_export_reads_back_as_conversations(tmp_path, qa_file, fixture_data, real_docs):
    out = tmp_path / "dataset.parquet"
    proc = run_cli(
        "export",
        qa_file,
        "--format",
        "cartridges-parquet",
        "--out",
        out,
        "--docs",
        fixture_data / "xquad_en_dev.json",
    )
    assert proc.returncode == 0, proc.stderr
    import pyarrow.parquet as pq

    assert pq.read_schema(out).names == ["messages", "system_prompt", "metadata", "type"]
    records = list(read_records(qa_file))
    convos = _read_cartridges_parquet(out)
    texts = {d.id: d.text for d in real_docs}
    assert len(convos) == len(records)
    for convo, rec in zip(convos, records, strict=True):
        assert [(m["role"], m["content"]) for m in convo["messages"]] == [
            ("user", rec["question"]),
            ("assistant", rec["answer"]),
        ]
        assert all(m["token_ids"] is None and m["top_logprobs"] is None for m in convo["messages"])
        excerpt = texts[rec["doc_id"]][rec["context"]["start"] : rec["context"]["end"]].strip()
        assert excerpt and excerpt in convo["system_prompt"]
        assert convo["metadata"]["id"] == rec["id"] and convo["metadata"]["doc_id"] == rec["doc_id"]
        assert convo["metadata"]["seed_prompt"] == rec["meta"]["seed_prompt"]
        assert json.loads(convo["metadata"]["decisions"]) == rec["decisions"]
        assert convo["type"] == "naive"


def test_cartridges_export_takes_the_system_prompt_the_record_carries(tmp_path, qa_file):
    out = tmp_path / "d.parquet"
    records = list(read_records(qa_file))
    assert export_records(qa_file, "cartridges-parquet", out) == len(records)
    prompts = [c["system_prompt"] for c in _read_cartridges_parquet(out)]
    assert prompts == [r["meta"]["answer_prompt"]["system"] for r in records]
    assert all("<info>" in p for p in prompts)


def test_cartridges_export_of_older_records_without_docs_leaves_the_system_prompt_empty(tmp_path, qa_file):
    older = tmp_path / "older.jsonl"
    rows = [{**r, "meta": {k: v for k, v in r["meta"].items() if k != "answer_prompt"}} for r in read_records(qa_file)]
    older.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "d.parquet"
    assert export_records(older, "cartridges-parquet", out) == len(rows)
    assert {c["system_prompt"] for c in _read_cartridges_parquet(out)} == {""}


def test_hf_dataset_export_loads_from_disk(tmp_path, qa_file):
    from datasets import load_from_disk

    out = tmp_path / "hf"
    proc = run_cli("export", qa_file, "--format", "hf-dataset", "--out", out)
    assert proc.returncode == 0, proc.stderr
    ds = load_from_disk(str(out))
    records = list(read_records(qa_file))
    assert len(ds) == len(records)
    assert ds["id"] == [r["id"] for r in records]
    assert ds[0]["messages"] == records[0]["messages"]


def test_rejected_records_export_only_when_asked(tmp_path, real_docs):
    out = tmp_path / "qa.jsonl"
    generate_records(real_docs, get_strategy(MERGED), _lm(), 12, 0, out, progress=False)
    rejected = rejected_path(out)
    assert len(list(read_records(rejected))) > 0
    with pytest.raises(InputError, match="no kept records"):
        export_records(rejected, "openai", tmp_path / "r.jsonl")
    assert not (tmp_path / "r.jsonl").exists()
    n = export_records(rejected, "openai", tmp_path / "r.jsonl", include_rejected=True)
    assert n == len(list(read_records(rejected)))


@pytest.mark.parametrize("fmt", ["openai", "cartridges-parquet", "hf-dataset"])
def test_bad_export_input_names_the_line_and_leaves_nothing(tmp_path, qa_file, fmt):
    lines = qa_file.read_text().splitlines(keepends=True)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(lines[:2]) + '{"id": "x", "question": \n' + "".join(lines[2:]))
    out = tmp_path / "out"
    proc = run_cli("export", bad, "--format", fmt, "--out", out)
    assert f"{bad}:3: malformed JSON" in one_line_error(proc)
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_unknown_format_and_existing_output_are_errors(tmp_path, qa_file):
    out = tmp_path / "x.jsonl"
    assert "unknown export format 'csv'" in one_line_error(run_cli("export", qa_file, "-f", "csv", "-o", out))
    out.write_text("keep me\n")
    assert "--overwrite" in one_line_error(run_cli("export", qa_file, "-f", "openai", "-o", out))
    assert out.read_text() == "keep me\n"
