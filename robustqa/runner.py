"""The generation run: documents -> planned work items -> batches through the strategy -> append-only JSONL.

1. Split the budget over documents by the strategy's weights (largest remainder, deterministic).
2. Plan every document's items (no LM call); keep this shard's items; skip items already in the output.
3. Run the rest in batches; write kept records to OUT and rejected ones to OUT.rejected.jsonl as they come.
A killed run resumes with `resume=True`: the same config plans the same item ids, and finished ones are skipped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from . import __version__
from .errors import ConfigError
from .io.jsonl import JsonlWriter, existing_ids, repair_tail
from .lm.base import LM
from .strategy import Strategy
from .types import Document, WorkItem, stable_hash


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
    total = float(sum(w for w in weights if w > 0))
    if budget <= 0 or total <= 0:
        return [0] * len(weights)
    exact = [budget * max(w, 0.0) / total for w in weights]
    counts = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: budget - sum(counts)]:
        counts[i] += 1
    return counts


def in_shard(item_id: str, shard: tuple[int, int]) -> bool:
    index, count = shard
    return count == 1 or int(stable_hash("shard", item_id, length=8), 16) % count == index


def plan_items(
    documents: Sequence[Document], strategy: Strategy, budget: int, seed: int, fingerprint: str
) -> list[WorkItem]:
    counts = allocate_budget([strategy.weight(d) for d in documents], budget)
    items: list[WorkItem] = []
    for doc, n in zip(documents, counts):
        if n == 0:
            continue
        for item in strategy.plan(doc, n, seed, fingerprint):
            item.meta["fingerprint"] = fingerprint
            item.meta["run_seed"] = seed
            items.append(item)
    return items


def generate_records(
    documents: Sequence[Document],
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
) -> RunSummary:
    """Run a strategy over documents and append its records to `out` (see the module docstring)."""
    out = Path(out)
    rejects = rejected_path(out)
    fingerprint = fingerprint or stable_hash(strategy.fingerprint(), lm.model_id, budget, seed)
    if len({d.id for d in documents}) != len(documents):
        raise ConfigError("document ids must be unique")
    _prepare_output(out, rejects, fingerprint, resume, overwrite, config, shard)

    t0 = time.perf_counter()
    lm_seconds0 = lm.usage.seconds
    usage0 = lm.usage.to_dict()
    items = [it for it in plan_items(documents, strategy, budget, seed, fingerprint) if in_shard(it.id, shard)]
    done = existing_ids(out) | existing_ids(rejects) if resume else set()
    todo = [it for it in items if it.id not in done]
    summary = RunSummary(planned=len(items), skipped_done=len(items) - len(todo), fingerprint=fingerprint, out=str(out))
    docs_by_id = {d.id: d for d in documents}

    bar = tqdm(
        total=len(items),
        initial=summary.skipped_done,
        desc=f"generate {strategy.name}",
        unit="pair",
        disable=not progress,
        dynamic_ncols=True,
    )
    _record_planned(out, len(items))
    # Flushed and fsynced once per batch: a kill loses at most the batch in flight, which a resume redoes.
    with JsonlWriter(out, flush_every=10**9) as kept_writer, JsonlWriter(rejects, flush_every=10**9) as reject_writer:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            records = strategy.run(batch, docs_by_id, lm)
            if [r.id for r in records] != [it.id for it in batch]:
                raise AssertionError(f"strategy {strategy.name!r} broke the contract: one record per item, in order")
            for rec in records:
                row = rec.to_dict()
                if rec.kept:
                    kept_writer.write(row)
                    summary.kept += 1
                else:
                    summary.rejected += 1
                    if write_rejected:
                        reject_writer.write(row)
            kept_writer.flush()
            reject_writer.flush()
            bar.update(len(batch))
            bar.set_postfix(kept=summary.kept, rejected=summary.rejected)
    bar.close()

    summary.seconds = time.perf_counter() - t0
    summary.lm_seconds = lm.usage.seconds - lm_seconds0
    usage1 = lm.usage.to_dict()
    summary.usage = {k: usage1[k] - usage0[k] for k in usage1}
    return summary


def _record_planned(out: Path, planned: int) -> None:
    """Store this shard's planned item count in the manifest, so `merge` can tell a finished shard."""
    path = manifest_path(out)
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["planned"] = planned
    path.write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")


def _prepare_output(
    out: Path,
    rejects: Path,
    fingerprint: str,
    resume: bool,
    overwrite: bool,
    config: Mapping[str, Any] | None,
    shard: tuple[int, int],
) -> None:
    manifest = manifest_path(out)
    has_output = (out.exists() and out.stat().st_size > 0) or (rejects.exists() and rejects.stat().st_size > 0)
    if has_output and not (resume or overwrite):
        raise ConfigError(f"{out} already holds records: pass --resume to continue that run or --overwrite")
    if overwrite and not resume:
        for path in (out, rejects, manifest):
            path.unlink(missing_ok=True)
    elif resume and has_output and manifest.exists():
        previous = json.loads(manifest.read_text(encoding="utf-8"))
        if previous.get("fingerprint") != fingerprint:
            raise ConfigError(
                f"{out} was written by a different configuration (fingerprint {previous.get('fingerprint')}, "
                f"now {fingerprint}); resume only with the same config, or choose another --out"
            )
    for path in (out, rejects):
        repair_tail(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(
        json.dumps(
            {
                "fingerprint": fingerprint,
                "robustqa": __version__,
                "shard": list(shard),
                "config": dict(config or {}),
                "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
            indent=2,
            default=str,
        ),
        encoding="utf-8",
    )
