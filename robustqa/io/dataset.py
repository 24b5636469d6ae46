"""QA records as a Hugging Face `datasets.Dataset` (TRL's conversational "messages" format plus provenance).

Built with `Dataset.from_generator`: records are streamed from the JSONL file and written to Arrow files in
batches, which the dataset then memory-maps, so memory stays flat however many records there are.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .jsonl import read_records


def hf_features():
    """The dataset's columns: nested provenance that varies in shape across records (decisions, meta, target,
    context) is kept as JSON strings, so every record fits one Arrow schema."""
    from datasets import Features, List, Value

    text = Value("string")
    return Features(
        {
            "id": text,
            "doc_id": text,
            "question": text,
            "answer": text,
            "messages": List({"role": text, "content": text}),
            "target": text,
            "context": text,
            "strategy": text,
            "model": text,
            "seed": Value("int64"),
            "fingerprint": text,
            "decisions": text,
            "meta": text,
        }
    )


def hf_rows(path: str, kept_only: bool = True, stamp: str = "") -> Iterator[dict[str, Any]]:
    """The dataset rows of a robustqa JSONL file, one record at a time (`stamp` only keys the cache)."""
    for rec in read_records(path):
        if kept_only and not rec.get("kept", True):
            continue
        yield {
            "id": rec["id"],
            "doc_id": rec["doc_id"],
            "question": rec["question"],
            "answer": rec["answer"],
            "messages": [{"role": m["role"], "content": m["content"]} for m in rec["messages"]],
            "target": json.dumps(rec.get("target")),
            "context": json.dumps(rec.get("context")),
            "strategy": rec.get("strategy", ""),
            "model": rec.get("model", ""),
            "seed": int(rec.get("seed", 0)),
            "fingerprint": rec.get("fingerprint", ""),
            "decisions": json.dumps(rec.get("decisions", [])),
            "meta": json.dumps(rec.get("meta", {})),
        }


def to_hf_dataset(path: str | Path, kept_only: bool = True, cache_dir: str | Path | None = None):
    """Load a robustqa JSONL file as a `datasets.Dataset` with `messages` and provenance columns.

    The Arrow files go to `cache_dir` (default: the `datasets` cache); the dataset memory-maps them, so keep
    the folder while the dataset is in use. The file's size and modification time are part of the cache key,
    so an edited file is read again rather than served from the cache.
    """
    from datasets import Dataset

    stat = Path(path).stat()
    return Dataset.from_generator(
        hf_rows,
        features=hf_features(),
        cache_dir=str(cache_dir) if cache_dir is not None else None,
        gen_kwargs={"path": str(path), "kept_only": kept_only, "stamp": f"{stat.st_size}:{stat.st_mtime_ns}"},
    )
