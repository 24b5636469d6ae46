"""The generation run: documents -> planned work items -> batches through the strategy -> append-only JSONL.

Memory stays flat as the corpus grows: documents are streamed, never all held at once.

1. Weigh (first pass over the documents): each document's strategy weight, kept as a float, and a 64-bit hash
   of its id (unique ids) and of its id and text (to tell the source changed before the second pass). The
   budget is split by weight (largest remainder, deterministic: `robustqa.budget`).
2. Plan (second pass): each document's items (no LM call), one document at a time; this shard's items not
   already in the output are spilled, with their document, to an unlinked temporary file beside OUT (one JSON
   line per document: nothing on disk is unpickled; document and item meta must be JSON data). The exact
   planned count goes into the manifest before the first LM call, as `merge` needs it.
3. Run: read the spill back and run its items in batches of `batch_size` (a batch may span documents); write
   kept records to OUT and rejected ones to OUT.rejected.jsonl as they come. Only the documents of unfinished
   items stay in memory.

What an earlier run left beside OUT is judged, and the manifest written, by `robustqa.run_files`.

Records, their order and the batches are the same as planning every item up front would give. A killed run
resumes with `resume=True`: the same config plans the same item ids, and finished ones are skipped.

`documents` is read twice, so it must be re-iterable: a list, a `robustqa.io.loaders.DocumentSource` (files
read lazily), any iterable whose `iter()` starts over, or a callable returning a fresh iterable.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from tqdm.auto import tqdm

from .budget import MAX_BUDGET, _allocate, allocate_budget, in_shard
from .doc_ids import unique_documents
from .errors import ConfigError
from .io.jsonl import JsonlWriter
from .io.lock import OutputLock
from .io.outputs import require_file_path
from .lm.base import LM
from .run_files import check_earlier_output, manifest_path, prepare_output, rejected_path
from .strategy import Strategy
from .teacher_logprobs import TeacherSettings, require_teacher, score_records
from .types import Document, Span, SpanFlag, WorkItem, stable_hash

if TYPE_CHECKING:
    import numpy as np

# What `generate_records` reads twice: see the module docstring.
Documents = Iterable[Document] | Callable[[], Iterable[Document]]


@dataclass
class RunSummary:
    planned: int = 0
    skipped_done: int = 0
    kept: int = 0
    rejected: int = 0
    seconds: float = 0.0
    lm_seconds: float = 0.0
    usage: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    out: str = ""
    # Rejected pairs of this run by the first filter that rejected them (their reasons are in the side file).
    rejected_by: dict[str, int] = field(default_factory=dict)

    @property
    def pairs_per_minute(self) -> float:
        done = self.kept + self.rejected
        return 60.0 * done / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "pairs_per_minute": round(self.pairs_per_minute, 2)}


def plan_document(doc: Document, n: int, strategy: Strategy, seed: int, fingerprint: str) -> list[WorkItem]:
    """The `n` items the run plans for one document, with the run's bookkeeping (seed, fingerprint) on them."""
    items = strategy.plan(doc, n, seed, fingerprint)
    for item in items:
        item.fingerprint = fingerprint
        item.run_seed = seed
    return items


def plan_items(
    documents: Sequence[Document], strategy: Strategy, budget: int, seed: int, fingerprint: str
) -> list[WorkItem]:
    """Every item of a run, in run order (all in memory: for small corpora and tests)."""
    counts = allocate_budget([strategy.weight(d) for d in documents], budget)
    return [
        item
        for doc, n in zip(documents, counts)
        if n > 0
        for item in plan_document(doc, n, strategy, seed, fingerprint)
    ]


def generate_records(
    documents: Documents,
    strategy: Strategy,
    lm: LM,
    budget: int,
    seed: int,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    batch_size: int = 16,
    shard: tuple[int, int] = (0, 1),
    write_rejected: bool = True,
    fingerprint: str | None = None,
    config: Mapping[str, Any] | None = None,
    progress: bool = True,
    teacher: TeacherSettings | None = None,
) -> RunSummary:
    """Run a strategy over documents and append its records to `out` (see the module docstring). With `teacher`,
    every kept record also gets the teacher's token ids and top-k logprobs (`robustqa.teacher_logprobs`)."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if not 0 <= budget <= MAX_BUDGET:  # 0 plans nothing (the CLI asks for at least 1)
        raise ConfigError(f"budget must be between 0 and {MAX_BUDGET:,}, got {budget}")
    if teacher is not None:
        require_teacher(lm, teacher)
    t0 = time.perf_counter()
    out = Path(out)
    rejects = rejected_path(out)
    for path in (out, rejects, manifest_path(out)):
        require_file_path(path)
    read = _reader(documents)
    teacher_part = [sorted(teacher.describe().items())] if teacher is not None else []
    fingerprint = fingerprint or stable_hash(strategy.fingerprint(), lm.model_id, budget, seed, *teacher_part)
    # A bad parameter, or a component that cannot work with this backend (scoring it lacks), fails now, before
    # any file is touched.
    strategy.validate()
    strategy.check_backend(lm)
    lm_seconds0 = lm.usage.seconds
    usage0 = lm.usage.to_dict()
    summary = RunSummary(fingerprint=fingerprint, out=str(out))
    # Nothing is changed on disk until the documents are read, the earlier output is judged and the plan is made:
    # bad input, a bad parameter or a clash with an earlier run leaves every file as it was.
    with OutputLock(out), tempfile.TemporaryFile(dir=out.parent, prefix=f".{out.name}.plan-") as spill:
        corpus = _weigh(read, strategy, budget)
        done = check_earlier_output(out, rejects, fingerprint, resume, overwrite)
        groups = _plan(read, corpus, strategy, seed, fingerprint, shard, done, spill, summary, progress)
        del done
        prepare_output(out, rejects, fingerprint, resume, overwrite, config, shard, summary.planned)
        spill.seek(0)
        _run(
            _read_spill(spill, groups),
            strategy,
            lm,
            out,
            rejects,
            batch_size,
            write_rejected,
            summary,
            progress,
            teacher,
        )

    summary.seconds = time.perf_counter() - t0
    summary.lm_seconds = lm.usage.seconds - lm_seconds0
    usage1 = lm.usage.to_dict()
    summary.usage = {k: usage1[k] - usage0[k] for k in usage1}
    return summary


# -- pass 1: weigh -------------------------------------------------------------------------------------------


@dataclass
class _Corpus:
    counts: np.ndarray  # items to plan per document, in source order
    checks: np.ndarray  # hash of each document's id and text, to notice a source that changed between passes


def _reader(documents: Documents) -> Callable[[], Iterator[Document]]:
    if callable(documents):
        return lambda: iter(documents())
    if iter(documents) is documents:
        raise ConfigError(
            "documents are read twice (weigh, then plan): pass a list, a robustqa.io.loaders.DocumentSource "
            "or a callable returning a fresh iterator, not a one-shot iterator or generator"
        )
    return lambda: iter(documents)


def _hash64(*parts: str) -> int:
    h = hashlib.blake2b(digest_size=8)
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return int.from_bytes(h.digest(), "little")


def _weigh(read: Callable[[], Iterator[Document]], strategy: Strategy, budget: int) -> _Corpus:
    import numpy as np

    weights, checks = array("d"), array("Q")
    for doc in unique_documents(read(), read):
        weight = float(strategy.weight(doc))
        if math.isnan(weight) or math.isinf(weight):
            raise ConfigError(f"strategy {strategy.name!r} gave document {doc.id!r} the weight {weight}")
        weights.append(weight)
        checks.append(_hash64(doc.id, doc.text))
    return _Corpus(_allocate(np.frombuffer(weights, dtype=np.float64), budget), np.frombuffer(checks, np.uint64))


# -- pass 2: plan --------------------------------------------------------------------------------------------


def _plan(
    read: Callable[[], Iterator[Document]],
    corpus: _Corpus,
    strategy: Strategy,
    seed: int,
    fingerprint: str,
    shard: tuple[int, int],
    done: set[str],
    spill: IO[bytes],
    summary: RunSummary,
    progress: bool,
) -> int:
    """Plan every document; spill (document, items to run) to `spill`; count planned and done items.
    Returns the number of (document, items) groups spilled."""
    n_docs = len(corpus.counts)
    groups = 0
    bar = tqdm(total=n_docs, desc=f"plan {strategy.name}", unit="doc", disable=not progress, dynamic_ncols=True)
    position = -1
    for position, doc in enumerate(read()):
        if position >= n_docs or _hash64(doc.id, doc.text) != corpus.checks[position]:
            raise ConfigError(_CHANGED.format(where=f"document {doc.id!r} (number {position + 1})"))
        n = int(corpus.counts[position])
        bar.update(1)
        if n == 0:
            continue
        items = [it for it in plan_document(doc, n, strategy, seed, fingerprint) if in_shard(it.id, shard)]
        todo = [it for it in items if it.id not in done]
        summary.planned += len(items)
        summary.skipped_done += len(items) - len(todo)
        if todo:
            spill.write(_spill_line(doc, todo))
            groups += 1
    bar.close()
    if position + 1 != n_docs:
        raise ConfigError(_CHANGED.format(where=f"{n_docs - position - 1} document(s) fewer"))
    return groups


_CHANGED = "the documents changed between the run's two passes ({where}): rerun on a stable corpus"


def _spill_line(doc: Document, items: list[WorkItem]) -> bytes:
    """One document and its items to run, as a JSON line (ASCII: lone surrogates survive the round trip)."""
    row = {"doc": {"id": doc.id, "text": doc.text, "meta": doc.meta}, "items": [_item_dict(it) for it in items]}
    try:
        return json.dumps(row, allow_nan=True).encode("ascii") + b"\n"
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"document {doc.id!r}: its meta, or an item's meta, is not JSON data ({exc})") from None


def _item_dict(item: WorkItem) -> dict[str, Any]:
    t = item.target
    return {
        "id": item.id,
        "doc_id": item.doc_id,
        "index": item.index,
        "seed": item.seed,
        "context": list(item.context),
        "target": None if t is None else [t.doc_id, t.start, t.end, t.text, t.kind, t.meta],
        "meta": item.meta,
        "masked": [[f.start, f.end, f.filter, f.score, f.reason] for f in item.masked],
        "run_seed": item.run_seed,
        "fingerprint": item.fingerprint,
    }


def _item_of(row: dict[str, Any]) -> WorkItem:
    target = row["target"]
    return WorkItem(
        id=row["id"],
        doc_id=row["doc_id"],
        index=row["index"],
        seed=row["seed"],
        context=(row["context"][0], row["context"][1]),
        target=None if target is None else Span(*target),
        meta=row["meta"],
        masked=tuple(SpanFlag(*m) for m in row["masked"]),
        run_seed=row["run_seed"],
        fingerprint=row["fingerprint"],
    )


def _read_spill(spill: IO[bytes], groups: int) -> Iterator[tuple[Document, list[WorkItem]]]:
    for _ in range(groups):
        row = json.loads(spill.readline())
        doc = row["doc"]
        yield Document(doc["id"], doc["text"], doc["meta"]), [_item_of(it) for it in row["items"]]


# -- pass 3: run ---------------------------------------------------------------------------------------------


def _run(
    groups: Iterable[tuple[Document, list[WorkItem]]],
    strategy: Strategy,
    lm: LM,
    out: Path,
    rejects: Path,
    batch_size: int,
    write_rejected: bool,
    summary: RunSummary,
    progress: bool,
    teacher: TeacherSettings | None = None,
) -> None:
    bar = tqdm(
        total=summary.planned,
        initial=summary.skipped_done,
        desc=f"generate {strategy.name}",
        unit="pair",
        disable=not progress,
        dynamic_ncols=True,
    )
    pending: deque[WorkItem] = deque()
    docs: dict[str, Document] = {}  # documents of the pending items only
    unfinished: dict[str, int] = {}  # pending items per document

    # Flushed and fsynced once per batch: a kill loses at most the batch in flight, which a resume redoes.
    with (
        JsonlWriter(out, flush_every=10**9) as kept_writer,
        JsonlWriter(rejects, flush_every=10**9) as reject_writer,
    ):

        def run_batch(batch: list[WorkItem]) -> None:
            records = strategy.run(batch, {it.doc_id: docs[it.doc_id] for it in batch}, lm)
            if [r.id for r in records] != [it.id for it in batch]:
                raise AssertionError(f"strategy {strategy.name!r} broke the contract: one record per item, in order")
            if teacher is not None:
                score_records(records, lm, teacher)
            for rec in records:
                row = rec.to_dict()
                if rec.kept:
                    kept_writer.write(row)
                    summary.kept += 1
                else:
                    summary.rejected += 1
                    first = next((d.filter for d in rec.decisions if not d.kept), "unknown")
                    summary.rejected_by[first] = summary.rejected_by.get(first, 0) + 1
                    if write_rejected:
                        reject_writer.write(row)
            kept_writer.flush()
            reject_writer.flush()
            for it in batch:
                unfinished[it.doc_id] -= 1
                if not unfinished[it.doc_id]:
                    del unfinished[it.doc_id], docs[it.doc_id]
            bar.update(len(batch))
            bar.set_postfix(kept=summary.kept, rejected=summary.rejected)

        for doc, items in groups:
            docs[doc.id] = doc
            unfinished[doc.id] = len(items)
            pending.extend(items)
            del doc, items
            while len(pending) >= batch_size:
                run_batch([pending.popleft() for _ in range(batch_size)])
        if pending:
            run_batch(list(pending))
    bar.close()
