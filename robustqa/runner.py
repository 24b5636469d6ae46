"""The generation run: documents -> planned work items -> batches through the strategy -> append-only JSONL.

Memory stays flat as the corpus grows: documents are streamed, never all held at once.

1. Weigh (first pass over the documents): each document's strategy weight, kept as a float, and a 64-bit hash
   of its id (unique ids) and of its id and text (to tell the source changed before the second pass). The
   budget is split by weight (largest remainder, deterministic).
2. Plan (second pass): each document's items (no LM call), one document at a time; this shard's items not
   already in the output are spilled, with their document, to an unlinked temporary file beside OUT. The
   exact planned count goes into the manifest before the first LM call, as `merge` needs it.
3. Run: read the spill back and run its items in batches of `batch_size` (a batch may span documents); write
   kept records to OUT and rejected ones to OUT.rejected.jsonl as they come. Only the documents of unfinished
   items stay in memory.

Records, their order and the batches are the same as planning every item up front would give. A killed run
resumes with `resume=True`: the same config plans the same item ids, and finished ones are skipped.

`documents` is read twice, so it must be re-iterable: a list, a `robustqa.io.loaders.DocumentSource` (files
read lazily), any iterable whose `iter()` starts over, or a callable returning a fresh iterable.
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import tempfile
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from tqdm.auto import tqdm

from . import __version__
from .errors import ConfigError
from .io.bounded import loads_json
from .io.jsonl import JsonlWriter, complete_lines, repair_tail
from .io.lock import OutputLock
from .io.outputs import atomic_write_text, require_file_path
from .lm.base import LM
from .strategy import Strategy
from .teacher_logprobs import TeacherSettings, require_teacher, score_records
from .types import Document, WorkItem, stable_hash

if TYPE_CHECKING:
    import numpy as np

# Past this a run would never finish (and numpy's int64 arithmetic on the budget would overflow).
MAX_BUDGET = 10_000_000

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


def rejected_path(out: Path) -> Path:
    return out.with_name(out.name.removesuffix(".jsonl") + ".rejected.jsonl")


def manifest_path(out: Path) -> Path:
    return out.with_name(out.name.removesuffix(".jsonl") + ".manifest.json")


def allocate_budget(weights: Sequence[float], budget: int) -> list[int]:
    """Largest-remainder split of `budget` proportional to `weights` (ties go to the earlier document)."""
    import numpy as np

    return _allocate(np.asarray(weights, dtype=np.float64).reshape(-1), budget).tolist()


def _allocate(weights: np.ndarray, budget: int) -> np.ndarray:
    """`allocate_budget` on an array (8 bytes per document, a few more while it runs), bit for bit the same
    split: the same float operations in the same order."""
    import numpy as np

    # Summed left to right like Python's sum (not numpy's pairwise sum), without a list of Python floats.
    total = float(sum(w for w in memoryview(np.ascontiguousarray(weights, dtype=np.float64)) if w > 0))
    if budget <= 0 or total <= 0:
        return np.zeros(len(weights), dtype=np.int64)
    exact = np.maximum(weights, 0.0)
    exact *= budget
    exact /= total
    whole = np.floor(exact)
    exact -= whole  # the remainders
    np.negative(exact, out=exact)
    # A stable sort on the negated remainders: the largest first, ties to the earlier document.
    order = np.argsort(exact, kind="stable")
    del exact
    counts = whole.astype(np.int64)
    del whole
    counts[order[: budget - int(counts.sum())]] += 1
    return counts


def in_shard(item_id: str, shard: tuple[int, int]) -> bool:
    index, count = shard
    return count == 1 or int(stable_hash("shard", item_id, length=8), 16) % count == index


def plan_document(doc: Document, n: int, strategy: Strategy, seed: int, fingerprint: str) -> list[WorkItem]:
    """The `n` items the run plans for one document (with the run's bookkeeping in their meta)."""
    items = strategy.plan(doc, n, seed, fingerprint)
    for item in items:
        item.meta["fingerprint"] = fingerprint
        item.meta["run_seed"] = seed
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
    # A component that cannot work with this backend (scoring it lacks) fails now, before any file is touched.
    strategy.check_backend(lm)
    lm_seconds0 = lm.usage.seconds
    usage0 = lm.usage.to_dict()
    summary = RunSummary(fingerprint=fingerprint, out=str(out))
    # Nothing is changed on disk until the documents are read, the earlier output is judged and the plan is made:
    # bad input, a bad parameter or a clash with an earlier run leaves every file as it was.
    with OutputLock(out), tempfile.TemporaryFile(dir=out.parent, prefix=f".{out.name}.plan-") as spill:
        corpus = _weigh(read, strategy, budget)
        done = _check_earlier_output(out, rejects, fingerprint, resume, overwrite)
        groups = _plan(read, corpus, strategy, seed, fingerprint, shard, done, spill, summary, progress)
        del done
        _prepare_output(out, rejects, fingerprint, resume, overwrite, config, shard, summary.planned)
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

    weights, id_hashes, checks = array("d"), array("Q"), array("Q")
    for doc in read():
        weight = float(strategy.weight(doc))
        if math.isnan(weight) or math.isinf(weight):
            raise ConfigError(f"strategy {strategy.name!r} gave document {doc.id!r} the weight {weight}")
        weights.append(weight)
        id_hashes.append(_hash64(doc.id))
        checks.append(_hash64(doc.id, doc.text))
    _check_unique_ids(read, np.frombuffer(id_hashes, dtype=np.uint64))
    del id_hashes
    return _Corpus(_allocate(np.frombuffer(weights, dtype=np.float64), budget), np.frombuffer(checks, np.uint64))


def _check_unique_ids(read: Callable[[], Iterator[Document]], id_hashes: np.ndarray) -> None:
    import numpy as np

    ordered = np.sort(id_hashes)
    clashes = set(ordered[1:][ordered[1:] == ordered[:-1]].tolist())
    if not clashes:
        return
    # Equal hashes: read the ids again to tell a real duplicate from a (vanishingly rare) hash collision.
    seen: set[str] = set()
    for doc in read():
        if _hash64(doc.id) in clashes:
            if doc.id in seen:
                raise ConfigError(f"document ids must be unique: {doc.id!r} appears more than once")
            seen.add(doc.id)


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
            pickle.dump((doc, todo), spill, protocol=pickle.HIGHEST_PROTOCOL)
            groups += 1
    bar.close()
    if position + 1 != n_docs:
        raise ConfigError(_CHANGED.format(where=f"{n_docs - position - 1} document(s) fewer"))
    return groups


_CHANGED = "the documents changed between the run's two passes ({where}): rerun on a stable corpus"


def _read_spill(spill: IO[bytes], groups: int) -> Iterator[tuple[Document, list[WorkItem]]]:
    for _ in range(groups):
        yield pickle.load(spill)


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


# -- output files --------------------------------------------------------------------------------------------


def _read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest's content, or None when it is missing or unreadable (the records then decide alone)."""
    try:
        data = loads_json(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _check_earlier_output(out: Path, rejects: Path, fingerprint: str, resume: bool, overwrite: bool) -> set[str]:
    """Judge what an earlier run left (reading only) and return the ids a resume skips.

    A resume continues only the same configuration, judged by every record's own fingerprint as well as the
    manifest's, so a lost or damaged manifest cannot let two configurations mix in one file."""
    has_output = any(p.exists() and p.stat().st_size > 0 for p in (out, rejects))
    if has_output and not (resume or overwrite):
        raise ConfigError(f"{out} already holds records: pass --resume to continue that run or --overwrite")
    if not resume or not has_output:
        return set()
    previous = _read_manifest(manifest_path(out))
    if previous is not None and previous.get("fingerprint") != fingerprint:
        raise ConfigError(_OTHER_CONFIG.format(where=out, theirs=previous.get("fingerprint"), ours=fingerprint))
    done: set[str] = set()
    for path in (out, rejects):
        for lineno, row in complete_lines(path):
            if row.get("fingerprint") != fingerprint:
                where = f"{path}:{lineno}"
                raise ConfigError(_OTHER_CONFIG.format(where=where, theirs=row.get("fingerprint"), ours=fingerprint))
            if "id" in row:
                done.add(str(row["id"]))
    return done


_OTHER_CONFIG = (
    "{where} was written by a different configuration (fingerprint {theirs}, now {ours}); resume only with the "
    "same config, or choose another --out"
)


def _prepare_output(
    out: Path,
    rejects: Path,
    fingerprint: str,
    resume: bool,
    overwrite: bool,
    config: Mapping[str, Any] | None,
    shard: tuple[int, int],
    planned: int,
) -> None:
    """Make the output ready to append to, and write the manifest (with this shard's planned item count, so
    `merge` can tell a finished shard) before the first LM call."""
    if overwrite and not resume:
        for path in (out, rejects, manifest_path(out)):
            path.unlink(missing_ok=True)
    for path in (out, rejects):
        repair_tail(path)
    manifest = {
        "fingerprint": fingerprint,
        "robustqa": __version__,
        "shard": list(shard),
        "config": dict(config or {}),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "planned": planned,
    }
    atomic_write_text(manifest_path(out), json.dumps(manifest, indent=2, default=str))
