"""Generating an equal budget of KEPT QA pairs per strategy, and counting what it cost.

1. Plan `budget` pairs with the runner. A strategy that rejects pairs comes up short; plan the shortfall again
   (scaled by the observed keep rate, with a new seed so the items are new) until enough are kept or
   `budget x max_oversample` pairs have been planned in all.
2. Every attempt's LM tokens are summed: the cost of `budget` kept pairs includes the rejected ones.
3. `select_kept` takes the first `k` kept pairs so that every document keeps its planned share: records are
   ordered by their rank within their document's plan, not by file order (which runs document by document).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustqa.io.jsonl import read_records
from robustqa.lm.base import LM
from robustqa.teacher_logprobs import TeacherSettings
from robustqa.types import Document, derive_seed

USAGE_KEYS = (
    "calls",
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_requests",
    "seconds",
)


@dataclass
class GenerationResult:
    model: str
    strategy: str
    seed: int
    files: list[str] = field(default_factory=list)
    planned: int = 0
    kept: int = 0
    rejected: int = 0
    attempts: int = 0
    seconds: float = 0.0
    usage: dict[str, float] = field(default_factory=lambda: dict.fromkeys(USAGE_KEYS, 0))

    @property
    def tokens_per_kept(self) -> float | None:
        return self.usage["total_tokens"] / self.kept if self.kept else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "strategy": self.strategy,
            "seed": self.seed,
            "files": self.files,
            "planned": self.planned,
            "kept": self.kept,
            "rejected": self.rejected,
            "attempts": self.attempts,
            "seconds": round(self.seconds, 2),
            "usage": self.usage,
            "tokens_per_kept": self.tokens_per_kept,
        }

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> GenerationResult:
        fields = {
            k: row[k]
            for k in (
                "model",
                "strategy",
                "seed",
                "files",
                "planned",
                "kept",
                "rejected",
                "attempts",
                "seconds",
                "usage",
            )
        }
        return cls(**fields)


def generate_kept(
    documents: Sequence[Document],
    strategy,
    lm: LM,
    budget: int,
    seed: int,
    out_prefix: Path,
    model_name: str,
    strategy_key: str,
    max_oversample: float = 3.0,
    batch_size: int = 16,
    progress: bool = True,
    teacher: TeacherSettings | None = None,
) -> GenerationResult:
    """Run the strategy until `budget` pairs are kept (or the planning cap is reached); see module docs. With
    `teacher`, every kept record also carries the teacher's token ids and top-k logprobs (for distillation)."""
    from robustqa.runner import generate_records

    result = GenerationResult(model=model_name, strategy=strategy_key, seed=seed)
    cap = math.ceil(budget * max_oversample)
    to_plan = budget
    while to_plan > 0:
        attempt_seed = seed if result.attempts == 0 else derive_seed(seed, "attempt", result.attempts)
        path = out_prefix.with_name(f"{out_prefix.name}.a{result.attempts}.jsonl")
        summary = generate_records(
            documents,
            strategy,
            lm,
            to_plan,
            attempt_seed,
            path,
            overwrite=True,
            batch_size=batch_size,
            progress=progress,
            teacher=teacher,
            config={"strategy": strategy_key, "model": model_name, "seed": seed, "attempt": result.attempts},
        )
        result.attempts += 1
        result.files.append(path.name)  # beside the prefix: results name no directory of the machine
        empty = _empty_rejected_file(path)
        if empty is not None:
            empty.unlink()  # nothing was rejected: an empty file is no result
        result.planned += summary.planned
        result.kept += summary.kept
        result.rejected += summary.rejected
        result.seconds += summary.seconds
        for key in USAGE_KEYS:
            result.usage[key] = result.usage.get(key, 0) + summary.usage.get(key, 0)
        if result.kept >= budget or summary.planned == 0:
            break
        # Plan the shortfall at the keep rate seen so far (plus 20%), within the cap.
        keep_rate = max(result.kept / max(result.planned, 1), 1.0 / max_oversample)
        to_plan = min(cap - result.planned, math.ceil(1.2 * (budget - result.kept) / keep_rate))
    return result


def _empty_rejected_file(path: Path) -> Path | None:
    from robustqa.run_files import rejected_path

    rejected = rejected_path(path)
    return rejected if rejected.exists() and rejected.stat().st_size == 0 else None


def select_kept(files: Sequence[str | Path], k: int, folder: str | Path = ".") -> list[dict[str, Any]]:
    """The first `k` kept records, each document keeping its planned share (see the module docstring). `files`
    are relative to `folder` (GenerationResult.files are names beside the run's prefix)."""
    from robustqa.run_files import rejected_path

    ranked = []
    for attempt, name in enumerate(files):
        path = Path(folder) / name
        kept = list(read_records(path)) if path.exists() else []
        rejected = list(read_records(rejected_path(path))) if rejected_path(path).exists() else []
        planned_per_doc: dict[str, int] = defaultdict(int)
        for rec in kept + rejected:
            planned_per_doc[rec["doc_id"]] += 1
        # Rank within the document's plan: the item index the strategy gave it (file order as a fallback).
        by_doc: dict[str, list[tuple[int, int, dict]]] = defaultdict(list)
        for order, rec in enumerate(kept + rejected):
            index = rec.get("meta", {}).get("index", order)
            by_doc[rec["doc_id"]].append((int(index) if isinstance(index, int) else order, order, rec))
        for doc_id, items in by_doc.items():
            items.sort(key=lambda t: (t[0], t[1]))
            for rank, (_, order, rec) in enumerate(items):
                if rec.get("kept", True):
                    ranked.append(((attempt, rank / planned_per_doc[doc_id], order), rec))
    ranked.sort(key=lambda t: t[0])
    return [rec for _, rec in ranked[:k]]


def write_jsonl(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
