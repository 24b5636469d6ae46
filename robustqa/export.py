"""Export QA records in the shapes other tools read as they are.

- `openai`: OpenAI chat fine-tuning JSONL, one `{"messages": [user, assistant]}` per line.
- `cartridges-parquet`: Cartridges' training examples (`cartridges.structs.Conversation`, formerly
  `TrainingExample`: `messages` [{content, role, token_ids, top_logprobs}], `system_prompt`, `metadata`,
  `type`), written as Cartridges' `write_conversations` does (one row per conversation, snappy parquet), so
  `cartridges.structs.read_conversations(path)` and Cartridges' `DataSource(path=..., type="local")` read it.
  A record generated with `--teacher-logprobs K` fills the assistant turn's `token_ids` and `top_logprobs`
  (Cartridges' `FlatTopLogprobs`: token_idx, token_id int64, logprobs float32, shape [T, K], cut at the
  probability mass) as its synthesizer does, so its default `targets="logits"` trains on it; without them
  both are null and only `targets="tokens"` works. The user turn's `token_ids` are null (Cartridges' reader
  tokenizes its text). `system_prompt` is the prompt the answering model saw, as the record carries it
  (`meta.answer_prompt`); for older records without it, it is rebuilt from `docs` (else left empty).
- `hf-dataset`: a Hugging Face `datasets.Dataset` saved with `save_to_disk` (`to_hf_dataset` of
  `robustqa.io.dataset`, streamed through Arrow files, so memory stays flat).

Every export is written to a temporary path beside `out`, fsynced and renamed into place, so a failure (bad
input, a full disk, a kill) leaves no partial output and an earlier one as it was; the output is locked for
the whole export (`robustqa.io.lock`), so two exports onto one `--out` never mix.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError, InputError
from .io.jsonl import iter_jsonl
from .io.lock import OutputLock, lock_path
from .io.outputs import atomic_path, path_kind, refuse_overlap, require_dir_path, require_file_path

FORMATS = ("cartridges-parquet", "openai", "hf-dataset")
_PARQUET_BATCH = 1024
_MASKED_REASON = re.compile(r"^masked \[(\d+),(\d+)\)")


def export_records(
    path: str | Path,
    fmt: str,
    out: str | Path,
    *,
    docs: Sequence[str | Path] = (),
    include_rejected: bool = False,
    overwrite: bool = False,
) -> int:
    """Write the records of the QA JSONL `path` to `out` in format `fmt`; returns the number exported."""
    path, out = Path(path), Path(out)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; formats: {', '.join(FORMATS)}")
    if path_kind(path) == "missing":
        raise InputError(f"{path}: no such file")
    # A pipe, device or link loop is refused; a file in place of a dataset folder (or the reverse) is left to
    # --overwrite, like any earlier export.
    if fmt == "hf-dataset" and path_kind(out) != "file":
        require_dir_path(out)
    elif path_kind(out) != "dir":
        require_file_path(out)
    refuse_overlap([out, lock_path(out)], [path, *docs])
    documents = _documents_by_id(docs) if docs else None
    with OutputLock(out):
        _check_replaceable(out, overwrite)
        with atomic_path(out) as tmp:
            return _write(fmt, path, tmp, include_rejected, documents)


def _check_replaceable(out: Path, overwrite: bool) -> None:
    """ConfigError unless `out` is free, or --overwrite replaces an earlier export (never another directory)."""
    if path_kind(out) != "missing" and not overwrite:
        raise ConfigError(f"{out} already exists: choose another --out or pass --overwrite")
    if out.is_dir() and any(out.iterdir()) and not (out / "dataset_info.json").exists():
        raise ConfigError(f"{out} is a directory that does not hold a saved dataset; refusing to replace it")


def _write(fmt: str, path: Path, tmp: Path, include_rejected: bool, documents: dict[str, Any] | None) -> int:
    if fmt == "openai":
        return _write_openai(_rows(path, include_rejected), tmp)
    if fmt == "cartridges-parquet":
        return _write_cartridges(_rows(path, include_rejected), tmp, documents)
    return _write_hf(path, include_rejected, tmp)


# -- reading -------------------------------------------------------------------------------------------------


def _rows(path: Path, include_rejected: bool) -> Iterator[dict[str, Any]]:
    """Validated records, streamed; InputError names the file and line of a record that cannot be exported."""
    n = 0
    for lineno, row in iter_jsonl(path):
        for key, kind in (("id", str), ("question", str), ("answer", str)):
            if not isinstance(row.get(key), kind):
                raise InputError(f"{path}:{lineno}: not a QA record ('{key}' missing or not a string)")
        _check_optional_fields(path, lineno, row)
        if not include_rejected and not row.get("kept", True):
            continue
        n += 1
        yield row
    if n == 0:
        what = "records" if include_rejected else "kept records (pass --include-rejected for rejected ones)"
        raise InputError(f"{path}: no {what} to export")


# Optional fields of a record and the types an export reads them as (null is always allowed).
_OPTIONAL_FIELDS = {
    "doc_id": (str, int),
    "strategy": str,
    "model": str,
    "fingerprint": str,
    "seed": int,
    "kept": bool,
    "context": dict,
    "target": dict,
    "meta": dict,
    "decisions": list,
    "messages": list,
}
_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", dict: "an object", list: "a list"}


def _check_optional_fields(path: Path, lineno: int, row: dict[str, Any]) -> None:
    """InputError naming the file, line and field of a value an export cannot read."""
    for key, kinds in _OPTIONAL_FIELDS.items():
        value = row.get(key)
        kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        if value is None or (isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)):
            continue
        wanted = " or ".join(_TYPE_NAMES[k] for k in kinds)
        raise InputError(f"{path}:{lineno}: '{key}' must be {wanted}, got {type(value).__name__}")
    context = row.get("context") or {}
    for key in ("start", "end"):
        value = context.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InputError(f"{path}:{lineno}: 'context.{key}' must be an integer, got {type(value).__name__}")
    if any(not isinstance(d, dict) for d in row.get("decisions") or []):
        raise InputError(f"{path}:{lineno}: 'decisions' must be a list of objects")
    masked = context.get("masked") or (row.get("meta") or {}).get("masked") or []
    if not isinstance(masked, list) or any(
        not (isinstance(m, list) and len(m) >= 2 and all(_is_int(x) for x in m[:2])) for m in masked
    ):
        raise InputError(f"{path}:{lineno}: 'masked' must be a list of [start, end, ...] ranges")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _documents_by_id(paths: Sequence[str | Path]) -> dict[str, Any]:
    from .io.loaders import iter_documents

    return {d.id: d for d in iter_documents(list(paths))}


def _messages(row: dict[str, Any]) -> list[dict[str, str]]:
    messages = row.get("messages")
    if isinstance(messages, list) and all(isinstance(m, dict) and {"role", "content"} <= set(m) for m in messages):
        return [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]
    return [{"role": "user", "content": row["question"]}, {"role": "assistant", "content": row["answer"]}]


# -- openai --------------------------------------------------------------------------------------------------


def _write_openai(rows: Iterator[dict[str, Any]], tmp: Path) -> int:
    n = 0
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps({"messages": _messages(row)}, ensure_ascii=False) + "\n")
            n += 1
    return n


# -- cartridges ----------------------------------------------------------------------------------------------


def cartridges_schema():
    """The Arrow schema of a Cartridges conversation row (fields in `asdict(Conversation)` order)."""
    import pyarrow as pa

    top_logprobs = pa.struct(
        [
            ("token_idx", pa.list_(pa.int64())),
            ("token_id", pa.list_(pa.int64())),
            ("logprobs", pa.list_(pa.float32())),
            ("shape", pa.list_(pa.int64())),
        ]
    )
    message = pa.struct(
        [
            ("content", pa.string()),
            ("role", pa.string()),
            ("token_ids", pa.list_(pa.int64())),
            ("top_logprobs", top_logprobs),
        ]
    )
    metadata = pa.struct(
        [
            ("id", pa.string()),
            ("doc_id", pa.string()),
            ("strategy", pa.string()),
            ("model", pa.string()),
            ("seed", pa.int64()),
            ("fingerprint", pa.string()),
            ("seed_prompt", pa.string()),
            ("context_start", pa.int64()),
            ("context_end", pa.int64()),
            ("kept", pa.bool_()),
            ("target", pa.string()),
            ("decisions", pa.string()),
            ("meta", pa.string()),
        ]
    )
    return pa.schema(
        [
            ("messages", pa.list_(message)),
            ("system_prompt", pa.string()),
            ("metadata", metadata),
            ("type", pa.string()),
        ]
    )


def cartridges_row(row: dict[str, Any], documents: dict[str, Any] | None = None) -> dict[str, Any]:
    """One robustqa record as a Cartridges `Conversation` dict."""
    context = row.get("context") or {}
    meta = row.get("meta") or {}
    teacher = meta.get("teacher")
    messages = []
    for m in _messages(row):
        message = {**m, "token_ids": None, "top_logprobs": None}
        if teacher is not None and m["role"] == "assistant":
            message.update(_teacher_fields(row["id"], teacher))
        messages.append(message)
    meta = {k: v for k, v in meta.items() if k not in ("teacher", "answer_prompt")}  # both have their columns
    return {
        "messages": messages,
        "system_prompt": _system_prompt(row, documents),
        "metadata": {
            "id": row["id"],
            "doc_id": str(row.get("doc_id", "")),
            "strategy": str(row.get("strategy", "")),
            "model": str(row.get("model", "")),
            "seed": int(row.get("seed", 0)),
            "fingerprint": str(row.get("fingerprint", "")),
            "seed_prompt": meta.get("seed_prompt"),
            "context_start": context.get("start"),
            "context_end": context.get("end"),
            "kept": bool(row.get("kept", True)),
            "target": json.dumps(row.get("target"), ensure_ascii=False),
            "decisions": json.dumps(row.get("decisions", []), ensure_ascii=False),
            "meta": json.dumps(meta, ensure_ascii=False),
        },
        "type": str(row.get("strategy", "")) or "robustqa",
    }


def _teacher_fields(record_id: str, teacher: Any) -> dict[str, Any]:
    from .teacher_logprobs import decode

    try:
        flat = decode(teacher)
    except (InputError, KeyError, TypeError, ValueError) as exc:
        raise InputError(f"record {record_id}: unreadable meta.teacher ({exc})") from None
    return {
        "token_ids": flat.token_ids.tolist(),
        "top_logprobs": {
            "token_idx": flat.token_idx.tolist(),
            "token_id": flat.token_id.tolist(),
            "logprobs": flat.logprobs.tolist(),
            "shape": list(flat.shape),
        },
    }


# The answerer's system prompt before records carried their own (`meta.answer_prompt`): used only to rebuild the
# prompt of such older records from --docs.
LEGACY_ANSWER_SYSTEM_PROMPT = (
    "Please use the information in the following excerpt to answer the user.\n\n<info>\n{context}\n</info>"
)


def _system_prompt(row: dict[str, Any], documents: dict[str, Any] | None) -> str:
    """The answering model's system prompt: as the record carries it, else rebuilt from the documents."""
    prompt = (row.get("meta") or {}).get("answer_prompt")
    if isinstance(prompt, dict) and isinstance(prompt.get("system"), str):
        return prompt["system"]
    if documents is None:
        return ""
    from robustqa.context import render_context

    doc = documents.get(row.get("doc_id"))
    context = row.get("context") or {}
    if doc is None:
        raise InputError(f"record {row['id']}: document {row.get('doc_id')!r} is not among the --docs given")
    if not {"start", "end"} <= set(context):
        raise InputError(f"record {row['id']}: no context offsets, cannot rebuild its system prompt")
    start, end = int(context["start"]), int(context["end"])
    if not 0 <= start <= end <= len(doc.text):
        raise InputError(f"record {row['id']}: context [{start},{end}) lies outside document {doc.id!r}")
    return LEGACY_ANSWER_SYSTEM_PROMPT.format(context=render_context(doc, start, end, _masked(row, context)))


def _masked(row: dict[str, Any], context: dict[str, Any]) -> list[tuple[int, int]]:
    explicit = context.get("masked") or (row.get("meta") or {}).get("masked")
    if explicit:
        return [(int(m[0]), int(m[1])) for m in explicit]
    # The composed strategy records each cut as a kept decision "masked [start,end): reason".
    found = (_MASKED_REASON.match(str(d.get("reason", ""))) for d in row.get("decisions", []))
    return [(int(m.group(1)), int(m.group(2))) for m in found if m]


def _write_cartridges(rows: Iterator[dict[str, Any]], tmp: Path, documents: dict[str, Any] | None) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = cartridges_schema()
    n = 0
    batch: list[dict[str, Any]] = []
    with pq.ParquetWriter(tmp, schema, compression="snappy") as writer:
        for row in rows:
            batch.append(cartridges_row(row, documents))
            if len(batch) >= _PARQUET_BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                n += len(batch)
                batch = []
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            n += len(batch)
    return n


# -- hugging face --------------------------------------------------------------------------------------------


def _write_hf(path: Path, include_rejected: bool, tmp: Path) -> int:
    from .io.dataset import to_hf_dataset

    # Validate first (line numbers, empty input): to_hf_dataset itself does not name bad lines.
    for _ in _rows(path, include_rejected):
        pass
    # Rows are streamed into Arrow files in a scratch folder (memory stays flat), then saved; the scratch goes.
    import datasets
    from datasets.exceptions import DatasetsError

    scratch = tmp.with_name(tmp.name + ".arrow")
    _remove(scratch)
    # No progress bars: stderr carries one line per error, and the count is printed at the end.
    bars_were_off = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        dataset = to_hf_dataset(path, kept_only=not include_rejected, cache_dir=scratch)
        dataset.save_to_disk(str(tmp))
        return len(dataset)
    except DatasetsError as exc:
        # datasets wraps the writer's failure (a full disk among them); the cause is what the user can act on.
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, OSError):
            raise cause from None
        raise InputError(f"{path}: cannot be saved as a dataset ({cause or exc})") from None
    finally:
        _remove(scratch)
        if not bars_were_off:
            datasets.enable_progress_bars()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
