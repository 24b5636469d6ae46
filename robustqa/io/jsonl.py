"""QA JSONL: append-only writing that survives a kill, and reading that names the file and line of bad input.

A killed run may leave a half-written last line; `repair_tail` cuts it off before a resume appends, so the file
only ever holds complete records and a resume neither loses nor duplicates any.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from robustqa.errors import InputError
from robustqa.io.bounded import loads_json
from robustqa.io.outputs import require_regular_input


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line; InputError names the file and line of bad JSON."""
    path = Path(path)
    require_regular_input(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a JSONL file")
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            if raw.strip():
                yield lineno, _decode_line(path, lineno, raw)


def complete_lines(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """`iter_jsonl` without an unterminated last line (a write a kill cut short), reading only: what a resume
    counts as finished before `repair_tail` cuts that line off."""
    path = Path(path)
    if not path.exists():
        return
    require_regular_input(path)
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.endswith(b"\n"):
                return
            if raw.strip():
                yield lineno, _decode_line(path, lineno, raw)


def _decode_line(path: Path, lineno: int, raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}:{lineno}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    return json_object_line(text, f"{path}:{lineno}")


def json_object_line(text: str, where: str, expected: str = "a JSON object") -> dict[str, Any]:
    """One JSON line that must hold an object; InputError names `where` (file:line) and what is wrong."""
    try:
        obj = loads_json(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: malformed JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected {expected}, got {type(obj).__name__}")
    return obj


def read_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """The records of a QA JSONL file, as dicts."""
    for _, obj in iter_jsonl(path):
        yield obj


def repair_tail(path: Path) -> int:
    """Truncate an unterminated last line (a write cut short by a kill). Returns the bytes removed."""
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return 0
        # Walk back to the last newline; everything after it is a partial record.
        pos = size
        block = 65536
        while pos > 0:
            step = min(block, pos)
            pos -= step
            fh.seek(pos)
            chunk = fh.read(step)
            idx = chunk.rfind(b"\n")
            if idx >= 0:
                keep = pos + idx + 1
                fh.truncate(keep)
                return size - keep
        fh.truncate(0)
        return size


def existing_ids(path: Path) -> set[str]:
    """Ids of the records already in an output file (after `repair_tail`)."""
    if not path.exists():
        return set()
    return {str(obj["id"]) for _, obj in iter_jsonl(path) if "id" in obj}


class JsonlWriter:
    """Appends one JSON object per line, written, flushed and fsynced per `flush_every` records, so a kill loses at
    most the records of the current batch, and never leaves a partial line that `repair_tail` would not remove.

    A write that fails (a full disk, a file size limit) cuts the file back to its last complete batch before the
    error propagates, so the file only ever holds whole records, and nothing of the failed batch is written later.
    """

    def __init__(self, path: str | Path, flush_every: int = 1) -> None:
        self.path = Path(path)
        self.flush_every = flush_every
        self._fd: int | None = None
        self._lines: list[bytes] = []
        self._good = 0  # the file's size after the last complete batch
        self._failed = False
        self.count = 0

    def __enter__(self) -> JsonlWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._good = os.fstat(self._fd).st_size
        return self

    def write(self, obj: dict[str, Any]) -> None:
        assert self._fd is not None, "use JsonlWriter as a context manager"
        try:
            line = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            # Lone surrogates (a server can send "\ud800") are not UTF-8; escaped they stay valid, exact JSON.
            line = json.dumps(obj, ensure_ascii=True).encode("utf-8")
        self._lines.append(line + b"\n")
        self.count += 1
        if len(self._lines) >= self.flush_every:
            self.flush()

    def write_many(self, objs: Iterable[dict[str, Any]]) -> None:
        for obj in objs:
            self.write(obj)
        self.flush()

    def flush(self) -> None:
        if self._fd is None or not self._lines:
            return
        data = memoryview(b"".join(self._lines))
        self._lines = []
        try:
            while data:
                data = data[os.write(self._fd, data) :]
            os.fsync(self._fd)
        except BaseException:
            self._failed = True
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._good)  # truncating needs no space
            raise
        self._good = os.fstat(self._fd).st_size

    def __exit__(self, *exc: object) -> None:
        if self._fd is None:
            return
        try:
            if not self._failed:  # whole records pending when another error ends the run are kept
                self.flush()
        finally:
            os.close(self._fd)
            self._fd = None
