"""Streaming generation (issue 8): the same bytes as planning everything up front, with only a few documents
in memory at a time, from lazily read files."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robustqa import runner
from robustqa.budget import allocate_budget, in_shard
from robustqa.errors import ConfigError, InputError
from robustqa.io.jsonl import JsonlWriter, existing_ids
from robustqa.io.loaders import DocumentSource, iter_documents, load_documents
from robustqa.lm.fake import FakeLM
from robustqa.registry import get_strategy
from robustqa.run_files import manifest_path, rejected_path
from robustqa.runner import generate_records
from robustqa.types import Document, Span, SpanFlag, WorkItem


def _question(req) -> str:
    return "What does the passage say about " + " ".join(req.messages[-1][1].split()[-3:]) + "?"


def _lm() -> FakeLM:
    return FakeLM(default=_question)


# -- the reference: the runner as it was before streaming (plan every item, then batch the list) -------------


def _old_allocate(weights, budget):
    total = float(sum(w for w in weights if w > 0))
    if budget <= 0 or total <= 0:
        return [0] * len(weights)
    exact = [budget * max(w, 0.0) / total for w in weights]
    counts = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: budget - sum(counts)]:
        counts[i] += 1
    return counts


def _reference_run(documents, strategy, lm, budget, seed, fingerprint, out: Path, batch_size, shard, done=()):
    """What the pre-streaming runner wrote for these arguments, and the batches it ran."""
    counts = _old_allocate([strategy.weight(d) for d in documents], budget)
    items = []
    for doc, n in zip(documents, counts):
        if n:
            for item in strategy.plan(doc, n, seed, fingerprint):
                item.fingerprint = fingerprint
                item.run_seed = seed
                items.append(item)
    items = [it for it in items if in_shard(it.id, shard)]
    todo = [it for it in items if it.id not in done]
    docs_by_id = {d.id: d for d in documents}
    batches = []
    with JsonlWriter(out) as kept, JsonlWriter(rejected_path(out)) as rejected:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            batches.append([it.id for it in batch])
            for rec in strategy.run(batch, docs_by_id, lm):
                (kept if rec.kept else rejected).write(rec.to_dict())
    return len(items), batches


class BatchLog:
    """Wraps a strategy to record the item ids of every batch it runs."""

    def __init__(self, strategy):
        self.strategy, self.batches, self.batch_docs = strategy, [], []

    def __getattr__(self, name):
        return getattr(self.strategy, name)

    def run(self, items, docs, lm):
        self.batches.append([it.id for it in items])
        self.batch_docs.append({it.doc_id for it in items})
        return self.strategy.run(items, docs, lm)


def _docs(xquad_paragraphs, n=9) -> list[Document]:
    # Uneven lengths (a short one, a doubled one) so the budget split has remainders to break ties on.
    texts = [text for _, text in xquad_paragraphs[:n]]
    texts[2] = texts[2][:300]
    texts[5] = texts[5] + "\n\n" + texts[6]
    return [Document(f"d{i}", text, {"n": i}) for i, text in enumerate(texts)]


@pytest.mark.parametrize("strategy_name", ["naive", "stratified"])
@pytest.mark.parametrize(
    "budget, batch_size, shard",
    [(10, 3, (0, 1)), (23, 4, (1, 3)), (7, 16, (0, 1)), (31, 5, (2, 3)), (12, 1, (0, 1)), (0, 4, (0, 1))],
)
def test_same_bytes_and_batches_as_planning_everything_up_front(
    tmp_path, xquad_paragraphs, strategy_name, budget, batch_size, shard
):
    docs = _docs(xquad_paragraphs)
    params = {"min_tokens": 20, "max_tokens": 60} if strategy_name == "naive" else {}

    def make():
        return get_strategy(strategy_name, **params)

    ref = tmp_path / "ref.jsonl"
    planned, ref_batches = _reference_run(docs, make(), _lm(), budget, 3, "fp", ref, batch_size, shard)

    out = tmp_path / "new.jsonl"
    logged = BatchLog(make())
    summary = generate_records(
        lambda: iter(docs),
        logged,
        _lm(),
        budget,
        3,
        out,
        batch_size=batch_size,
        shard=shard,
        fingerprint="fp",
        progress=False,
    )
    assert out.read_bytes() == ref.read_bytes()
    assert rejected_path(out).read_bytes() == rejected_path(ref).read_bytes()
    assert logged.batches == ref_batches
    if batch_size > 1 and budget:
        assert any(len(doc_ids) > 1 for doc_ids in logged.batch_docs)  # batches span documents
    assert summary.planned == planned == json.loads(manifest_path(out).read_text())["planned"]
    assert summary.kept + summary.rejected == planned and summary.skipped_done == 0


def test_resume_skips_done_items_like_before(tmp_path, xquad_paragraphs):
    docs = _docs(xquad_paragraphs)
    full = tmp_path / "full.jsonl"
    generate_records(docs, get_strategy("stratified"), _lm(), 17, 1, full, batch_size=4, progress=False)
    lines = full.read_text().splitlines(keepends=True)
    out = tmp_path / "qa.jsonl"
    out.write_text("".join(lines[:5]))
    manifest_path(out).write_text(manifest_path(full).read_text())
    done = existing_ids(out)

    ref = tmp_path / "ref.jsonl"
    fingerprint = json.loads(manifest_path(full).read_text())["fingerprint"]
    _, ref_batches = _reference_run(docs, get_strategy("stratified"), _lm(), 17, 1, fingerprint, ref, 4, (0, 1), done)
    logged = BatchLog(get_strategy("stratified"))
    summary = generate_records(docs, logged, _lm(), 17, 1, out, batch_size=4, resume=True, progress=False)
    assert logged.batches == ref_batches
    assert out.read_bytes() == full.read_bytes()
    assert summary.planned == 17 and summary.skipped_done == 5 and summary.kept + summary.rejected == 12


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(min_value=-5, max_value=1e6, allow_nan=False) | st.integers(0, 50), max_size=40),
    st.integers(-2, 300),
)
def test_allocate_budget_matches_the_list_implementation_bit_for_bit(weights, budget):
    assert allocate_budget(weights, budget) == _old_allocate(weights, budget)


# -- the spill: JSON lines, read back as they were written ----------------------------------------------------


def test_the_spill_is_json_lines_that_give_back_the_documents_and_items():
    import io

    doc = Document(
        "d\ud800", "Text with a lone surrogate \ud800 and \u00e9.", {"path": "a.jsonl", "fields": {"x": [1, 2.5]}}
    )
    target = Span(doc.id, 0, 4, "Text", "sentence", {"n": 1})
    items = [
        WorkItem("i0", doc.id, 0, 11, (0, 20), target, {"stratum": "s0", "round": 0},
                 (SpanFlag(5, 9, "sanitizer", 0.75, "markup"), SpanFlag(9, 12, "instruction", 1, "cue")), 7, "fp"),
        WorkItem("i1", doc.id, 1, -3, (4, 30)),
    ]  # fmt: skip
    spill = io.BytesIO(runner._spill_line(doc, items) + runner._spill_line(doc, items[1:]))
    spill.seek(0)
    lines = spill.getvalue().splitlines()
    assert len(lines) == 2 and all(isinstance(json.loads(line), dict) for line in lines)
    (doc1, items1), (doc2, items2) = list(runner._read_spill(spill, 2))
    assert (doc1.id, doc1.text, doc1.meta) == (doc.id, doc.text, doc.meta) and doc2.text == doc.text
    assert items1 == items and items2 == items[1:]
    assert items1[0].target.meta == {"n": 1} and items1[0].meta == items[0].meta
    assert [type(f.score) for f in items1[0].masked] == [float, int]  # scores keep their JSON type


def test_meta_that_is_not_json_is_a_config_error_naming_the_document():
    doc = Document("odd", "Some text.", {"opened": object()})
    with pytest.raises(ConfigError, match="document 'odd': .* not JSON data"):
        runner._spill_line(doc, [WorkItem("i", "odd", 0, 0, (0, 4))])


# -- memory: only the documents of unfinished items are alive ------------------------------------------------


class TrackedDocument(Document):
    """Counts live instances (the test has the runner build its copies read back from the spill as these too)."""

    alive = 0

    def __new__(cls, *args, **kwargs):
        TrackedDocument.alive += 1
        return super().__new__(cls)

    def __del__(self):
        TrackedDocument.alive -= 1


def test_only_a_bounded_number_of_documents_is_alive(tmp_path, xquad_paragraphs, monkeypatch):
    monkeypatch.setattr(runner, "Document", TrackedDocument)  # the documents read back from the spill
    texts = [text for _, text in xquad_paragraphs]

    def corpus() -> Iterator[Document]:
        for i in range(300):
            yield TrackedDocument(f"doc{i}", texts[i % len(texts)])

    peak = []

    class Probe(BatchLog):
        def run(self, items, docs, lm):
            peak.append(TrackedDocument.alive)
            return super().run(items, docs, lm)

    baseline = TrackedDocument.alive
    probe = Probe(get_strategy("naive", min_tokens=20, max_tokens=60))
    summary = generate_records(corpus, probe, _lm(), 300, 0, tmp_path / "qa.jsonl", batch_size=8, progress=False)
    assert summary.kept + summary.rejected == 300 and len(probe.batches) == 300 // 8 + 1
    # The documents of one batch (8 items, each document planned about once) and the one being read.
    assert max(peak) - baseline <= 8 + 2, max(peak)
    assert TrackedDocument.alive == baseline


# -- document sources ----------------------------------------------------------------------------------------


def test_a_one_shot_iterator_is_refused_and_a_changing_source_is_caught(tmp_path, real_docs):
    with pytest.raises(ConfigError, match="read twice"):
        generate_records(iter(real_docs), get_strategy("naive"), _lm(), 3, 0, tmp_path / "a.jsonl", progress=False)
    assert not (tmp_path / "a.jsonl").exists()

    edited = real_docs[:2] + [Document(real_docs[2].id, "other text")]
    for second in (edited, real_docs[:2], real_docs + [Document("new", "more text")]):
        passes = iter([real_docs, second])
        with pytest.raises(ConfigError, match="changed between the run's two passes"):
            generate_records(
                passes.__next__,
                get_strategy("naive"),
                _lm(),
                3,
                0,
                tmp_path / "b.jsonl",
                overwrite=True,
                progress=False,
            )


def test_duplicate_ids_are_refused_before_any_output(tmp_path, real_docs):
    docs = real_docs + [Document(real_docs[1].id, "again")]
    message = f"duplicate document id {real_docs[1].id!r}: .* and a document given in memory"
    with pytest.raises(InputError, match=message):
        generate_records(docs, get_strategy("naive"), _lm(), 3, 0, tmp_path / "qa.jsonl", progress=False)
    assert list(tmp_path.iterdir()) == []


def _write_corpus(root: Path, xquad_paragraphs) -> Path:
    root = root / "corpus"
    root.mkdir()
    rows = [{"id": f"j{i}", "text": text} for i, (_, text) in enumerate(xquad_paragraphs[:5])]
    (root / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (root / "b.txt").write_text(xquad_paragraphs[5][1], encoding="utf-8")
    (root / "c.html.gz").write_bytes(gzip.compress(f"<p>{xquad_paragraphs[6][1]}</p>".encode()))
    return root


def test_a_document_source_streams_files_lazily_and_rereads(tmp_path, xquad_paragraphs, monkeypatch):
    corpus = _write_corpus(tmp_path, xquad_paragraphs)
    source = DocumentSource(corpus)
    assert [d.id for d in source] == [d.id for d in source] == ["j0", "j1", "j2", "j3", "j4", "b", "c"]

    # Lazy: the first document comes before any later file is opened.
    opened: list[str] = []
    real_read = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: opened.append(self.name) or real_read(self))
    first = next(iter(DocumentSource(corpus)))
    assert first.id == "j0" and opened == []

    out = tmp_path / "out" / "qa.jsonl"
    summary = generate_records(source, get_strategy("naive"), _lm(), 9, 0, out, progress=False)
    assert summary.kept == 9
    assert opened.count("b.txt") == opened.count("c.html.gz") == 2  # one read per pass, never kept


def test_jsonl_is_read_line_by_line(tmp_path):
    path = tmp_path / "big.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(2000):
            fh.write(json.dumps({"id": f"d{i}", "text": f"word{i} " * 2000}) + "\n")
    size = path.stat().st_size  # about 20 MB
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_documents(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 2000
    assert peak < size / 20, (peak, size)  # a whole-file read would hold the file (twice) at once


_TWO_LINES = b'{"id": "a", "text": "ok"}\n{"id": "b", "text": '  # 26 bytes, then 20


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"", r"x\.jsonl: empty file"),
        (b"\xef\xbb\xbf", r"x\.jsonl: empty file"),
        (b" \n\n\t\n", r"x\.jsonl: file holds only whitespace"),
        (_TWO_LINES + b'"\x00"}\n', r"binary file \(NUL byte at byte offset 47\)"),
        (_TWO_LINES + b'"caf\xe9"}\n', r"not UTF-8 text \(.* at byte offset 50, line 2\)"),
        (
            b'{"id": "a", "text": "ok"}\n\n{"id": "a", "text": "x"}',
            r"x\.jsonl:3: duplicate document id 'a' \(first on",
        ),
        (b'{"id": "a", "text": "ok"}\n{"id": "b", "text": ', r"x\.jsonl:2: malformed JSON"),
    ],
)
def test_jsonl_errors_name_the_file_and_line(tmp_path, data, expected):
    import re

    for name, payload in (("x.jsonl", data), ("x.jsonl.gz", gzip.compress(data))):
        (tmp_path / name).write_bytes(payload)
        with pytest.raises(InputError) as info:
            load_documents([tmp_path / name])
        assert re.search(expected.replace(r"x\.jsonl", re.escape(name)), str(info.value)), str(info.value)
        (tmp_path / name).unlink()


def test_jsonl_encodings_and_a_truncated_gzip(tmp_path):
    rows = '{"id": "a", "text": "Café"}\n{"id": "b", "text": "crème"}\n'
    for encoding in ("utf-8-sig", "utf-16"):
        (tmp_path / "e.jsonl").write_bytes(rows.encode(encoding))
        assert [d.text for d in load_documents([tmp_path / "e.jsonl"])] == ["Café", "crème"]
    many = "".join(json.dumps({"id": i, "text": f"row {i}"}) + "\n" for i in range(200))
    (tmp_path / "t.jsonl.gz").write_bytes(gzip.compress(many.encode())[:-12])
    with pytest.raises(InputError, match=r"t\.jsonl\.gz: not a valid gzip file"):
        load_documents([tmp_path / "t.jsonl.gz"])


def test_a_duplicate_across_files_is_traced_back_to_its_first_file(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"id": "x", "text": "one"}\n{"id": "y", "text": "two"}\n')
    (tmp_path / "x.txt").write_text("three")
    with pytest.raises(InputError) as info:
        load_documents([tmp_path])
    assert f"duplicate document id 'x': {tmp_path / 'a.jsonl'}:1 and {tmp_path / 'x.txt'}" == str(info.value)


def test_duplicate_ids_are_found_among_many(tmp_path, monkeypatch):
    import robustqa.doc_ids as doc_ids

    monkeypatch.setattr(doc_ids, "_MERGE_EVERY", 16)  # most ids end up in the merged sorted array
    rows = [{"id": f"d{i}", "text": "x"} for i in range(500)]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert len(load_documents([tmp_path / "a.jsonl"])) == 500
    for first in (0, 37, 480):
        (tmp_path / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows + [rows[first]]))
        with pytest.raises(
            InputError, match=rf"b\.jsonl:501: duplicate document id 'd{first}' \(first on line {first + 1}\)"
        ):
            load_documents([tmp_path / "b.jsonl"])


def test_cli_generate_passes_a_lazy_source(tmp_path, xquad_paragraphs, monkeypatch):
    import robustqa.cli.generate_cmd as generate_cmd
    from robustqa.cli import main

    seen: list[object] = []
    real: Callable = generate_cmd.generate_records

    def spy(documents, *args, **kwargs):
        seen.append(documents)
        return real(documents, *args, **kwargs)

    monkeypatch.setattr(generate_cmd, "generate_records", spy)
    corpus = _write_corpus(tmp_path, xquad_paragraphs)
    out = tmp_path / "out" / "qa.jsonl"
    args = ["generate", str(corpus), "--backend", "fake", "--no-cache", "--no-progress", "-n", "4"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "-o", str(out)])
    assert exit_info.value.code == 0
    assert isinstance(seen[0], DocumentSource) and not isinstance(seen[0], list)
    assert len(out.read_text().splitlines()) == 4
    # An output inside an input directory would be read back as documents by the second pass.
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "-o", str(corpus / "qa.jsonl")])
    assert exit_info.value.code == 2 and not (corpus / "qa.jsonl").exists()
