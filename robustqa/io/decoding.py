"""Bytes to text for the loaders: gzip, byte-order marks, strict UTF-8 (or UTF-16 with a BOM), an HTML page's
declared charset, and JSONL read line by line. Every error is an InputError naming the file (and line or byte)."""

from __future__ import annotations

import codecs
import gzip
import io
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from robustqa.errors import InputError


def read_bytes(path: Path, gzipped: bool) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not gzipped:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: not a valid gzip file ({exc})") from None


_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


def decode_text(path: Path, raw: bytes, fallback: str | None = None) -> str:
    """UTF-8 text (a BOM is honoured and dropped); `fallback` is a declared charset for non-UTF-8 bytes."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            try:
                return raw[len(bom) :].decode(encoding)
            except UnicodeDecodeError as exc:
                reason = f"{exc.reason} at byte offset {exc.start}"
                raise InputError(f"{path}: not valid {encoding} ({reason})") from None
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise InputError(f"{path}: binary file (NUL byte at byte offset {nul}), not text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if fallback is not None:
            try:
                return raw.decode(fallback)
            except UnicodeDecodeError:
                pass
        line = raw.count(b"\n", 0, exc.start) + 1
        declared = f"; its declared charset {fallback} fails too" if fallback else ""
        raise InputError(
            f"{path}: not UTF-8 text ({exc.reason} at byte offset {exc.start}, line {line}{declared})"
        ) from None


def jsonl_lines(path: Path, gzipped: bool) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line, split at line feeds only (as `str.split` at them), decoded strictly
    one line at a time: UTF-8 (a BOM is dropped) or UTF-16 with a BOM. Errors name the file, line and byte
    offset."""
    try:
        fh = gzip.open(path, "rb") if gzipped else open(path, "rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    with fh:
        try:
            head = fh.peek(4)[:4]
            for bom, encoding in _BOMS[1:]:
                if head.startswith(bom):
                    yield from _utf16_lines(path, fh, encoding, len(bom))
                    return
            offset = 0
            for lineno, raw in enumerate(fh, start=1):
                start = len(codecs.BOM_UTF8) if lineno == 1 and raw.startswith(codecs.BOM_UTF8) else 0
                nul = raw.find(b"\x00")
                if nul >= 0:
                    raise InputError(f"{path}: binary file (NUL byte at byte offset {offset + nul}), not text")
                try:
                    line = raw[start:].decode("utf-8")
                except UnicodeDecodeError as exc:
                    where = f"byte offset {offset + start + exc.start}, line {lineno}"
                    raise InputError(f"{path}: not UTF-8 text ({exc.reason} at {where})") from None
                offset += len(raw)
                yield lineno, line
        except (OSError, EOFError, zlib.error) as exc:
            if not gzipped:
                raise InputError(f"{path}: cannot read ({exc})") from None
            raise InputError(f"{path}: not a valid gzip file ({exc})") from None


def _utf16_lines(path: Path, fh: IO[bytes], encoding: str, bom: int) -> Iterator[tuple[int, str]]:
    fh.read(bom)
    text = io.TextIOWrapper(fh, encoding=encoding, errors="strict", newline="\n")
    lineno = 0
    try:
        for lineno, line in enumerate(text, start=1):
            yield lineno, line
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not valid {encoding} ({exc.reason} after line {lineno})") from None
    finally:
        text.detach()


_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
# WHATWG: these labels mean windows-1252 in browsers.
_CHARSET_ALIASES = {"iso-8859-1": "cp1252", "latin1": "cp1252", "us-ascii": "cp1252", "ascii": "cp1252"}


def declared_charset(raw: bytes) -> str | None:
    match = _CHARSET.search(raw[:4096])
    if not match:
        return None
    name = match.group(1).decode("ascii").lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None
