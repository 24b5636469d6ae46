"""QA records as a Hugging Face `datasets.Dataset` (TRL's conversational "messages" format plus provenance)."""

from __future__ import annotations

import json
from pathlib import Path

from .jsonl import read_records


def to_hf_dataset(path: str | Path, kept_only: bool = True):
    """Load a robustqa JSONL file as a `datasets.Dataset` with `messages` and provenance columns.

    Nested provenance that varies in shape across records (decisions, meta, target) is kept as JSON strings, so
    every record fits one Arrow schema.
    """
    from datasets import Dataset

    rows = []
    for rec in read_records(path):
        if kept_only and not rec.get("kept", True):
            continue
        rows.append(
            {
                "id": rec["id"],
                "doc_id": rec["doc_id"],
                "question": rec["question"],
                "answer": rec["answer"],
                "messages": rec["messages"],
                "target": json.dumps(rec.get("target")),
                "context": json.dumps(rec.get("context")),
                "strategy": rec.get("strategy", ""),
                "model": rec.get("model", ""),
                "seed": int(rec.get("seed", 0)),
                "fingerprint": rec.get("fingerprint", ""),
                "decisions": json.dumps(rec.get("decisions", [])),
                "meta": json.dumps(rec.get("meta", {})),
            }
        )
    return Dataset.from_list(rows)
