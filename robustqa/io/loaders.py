"""Document loaders: .txt, .md, .html/.htm, .jsonl (`id`, `text`) and SQuAD .json, each optionally gzipped;
other plain-text files (.tex, .rst, .py, ... : `PLAIN_TEXT_EXTENSIONS`) load as text.

A file named explicitly must have a supported extension; inside a directory (walked in sorted order) other
files are skipped and counted in a log message. Ids are stable: the file's path relative to the directory it
was found through (its bare name when named explicitly), without extension; JSONL records keep their own `id`;
SQuAD paragraphs get `<title>/<paragraph index>`. An HTML page becomes the visible text of the whole page,
navigation and footers included (what naive generation sees); `meta["html"]` keeps the raw HTML for
sanitisers.

Documents are read lazily, one file at a time (a JSONL corpus line by line), so a corpus is never held whole;
other files are read whole (one file is one document, or one SQuAD file's paragraphs).

Bad input raises InputError with one line naming the file (and the line, for JSONL).
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import json
import logging
import os
import re
import zlib
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import IO, Any

from robustqa.errors import InputError
from robustqa.io.bounded import loads_json
from robustqa.io.outputs import require_regular_input
from robustqa.types import Document

log = logging.getLogger(__name__)

FORMATS = {
    ".txt": "text",
    ".md": "markdown",
    ".html": "html",
    ".htm": "html",
    ".jsonl": "jsonl",
    ".json": "squad",
}
# Other plain-text files (LaTeX, reStructuredText, source code, config and data files) load as text, as
# Cartridges' text and directory resources read them.
PLAIN_TEXT_EXTENSIONS = (
    ".tex .rst .org .adoc .asciidoc .markdown .text .bib .py .c .h .cc .cpp .hpp .java .js .ts .go .rs .rb .sh "
    ".r .jl .sql .csv .tsv .yaml .yml .toml .ini .cfg .xml .log"
).split()
FORMATS.update({ext: "text" for ext in PLAIN_TEXT_EXTENSIONS if ext not in FORMATS})
SUPPORTED_EXTENSIONS = tuple(sorted(FORMATS)) + tuple(sorted(ext + ".gz" for ext in FORMATS))


# ------------------------------------------------------------------------------------------------------------
# Finding files


class DocumentSource:
    """The documents of `paths`, read again (lazily, one file at a time) each time it is iterated.

    What `robustqa.runner.generate_records` streams twice without ever holding the corpus; `list(source)` is
    `load_documents(paths)`. A warning about skipped files is logged on the first iteration only.
    """

    def __init__(self, paths: str | Path | Sequence[str | Path]) -> None:
        self.paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
        self._warned = False

    def __iter__(self) -> Iterator[Document]:
        warn, self._warned = not self._warned, True
        return iter_documents(self.paths, warn_skipped=warn)

    def __repr__(self) -> str:
        return f"DocumentSource({[str(p) for p in self.paths]!r})"


def iter_documents(paths: str | Path | Sequence[str | Path], warn_skipped: bool = True) -> Iterator[Document]:
    """Documents of every file and (recursively, in sorted order) directory in `paths`, read lazily one file
    at a time (JSONL line by line); ids must be unique."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)  # one path, not one-character paths
    yield from _unique(lambda warn: _iter_paths(paths, warn), warn_skipped)


def load_documents(paths: str | Path | Sequence[str | Path]) -> list[Document]:
    """All documents of `paths` (files and directories), in order."""
    return list(iter_documents(paths))


def _iter_paths(paths: Sequence[str | Path], warn_skipped: bool) -> Iterator[Document]:
    for given in paths:
        path = Path(given).expanduser()
        require_regular_input(path)
        if path.is_dir():
            files = _supported_files(path, warn_skipped)
            if not files:
                kinds = ", ".join(SUPPORTED_EXTENSIONS)
                raise InputError(f"{path}: no documents ({kinds}) in this directory")
            for file in files:
                yield from _iter_file(file, path)
        else:
            yield from _iter_file(path, path.parent)


def _unique(read: Callable[[bool], Iterator[Document]], warn_skipped: bool) -> Iterator[Document]:
    """`read(warn_skipped)`'s documents, checking that ids are unique.

    Seen ids are kept as 63-bit hashes (8 bytes each, not the id and its origin); a repeated hash reads the
    input again to name the first document with that id, or to find it was a hash collision.
    """
    seen = _SeenHashes()
    for position, doc in enumerate(read(warn_skipped)):
        key = _id_hash(doc.id)
        if key in seen:
            first = next((d for d in islice(read(False), position) if d.id == doc.id), None)
            if first is not None:
                raise InputError(_duplicate_message(first, doc))
        seen.add(key)
        yield doc


def _id_hash(doc_id: str) -> int:
    digest = hashlib.blake2b(doc_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1  # fits an int64


class _SeenHashes:
    """A set of int64 hashes at under 20 bytes each: recent ones in a Python set (about 70 bytes each), merged
    into one sorted numpy array (8 bytes each) once they number `_MERGE_EVERY` and an eighth of the array, so
    merges are few (the array grows geometrically) and the set stays small."""

    def __init__(self) -> None:
        self._recent: set[int] = set()
        self._merged: Any = None  # sorted numpy int64 array

    def __contains__(self, key: int) -> bool:
        if key in self._recent:
            return True
        if self._merged is None:
            return False
        i = int(self._merged.searchsorted(key))
        return i < len(self._merged) and int(self._merged[i]) == key

    def add(self, key: int) -> None:
        self._recent.add(key)
        size = 0 if self._merged is None else len(self._merged)
        if len(self._recent) >= max(_MERGE_EVERY, size // 8):
            import numpy as np

            fresh = np.fromiter(self._recent, dtype=np.int64, count=len(self._recent))
            both = fresh if self._merged is None else np.concatenate([self._merged, fresh])
            self._merged = np.sort(both, kind="stable")  # a radix sort for integers: linear time
            self._recent.clear()


_MERGE_EVERY = 1 << 12


def _duplicate_message(first: Document, doc: Document) -> str:
    line, first_line = doc.meta.get("line"), first.meta.get("line")
    if line and first_line and doc.meta.get("path") == first.meta.get("path"):
        return f"{doc.meta['path']}:{line}: duplicate document id {doc.id!r} (first on line {first_line})"
    return f"duplicate document id {doc.id!r}: {_origin(first)} and {_origin(doc)}"


def _supported_files(root: Path, warn_skipped: bool = True) -> list[Path]:
    found, skipped, hidden = [], [], 0
    for dirpath, dirnames, filenames in os.walk(root):
        hidden += sum(d.startswith(".") for d in dirnames)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith("."):
                hidden += 1
            elif _split_name(name) is None:
                skipped.append(Path(dirpath, name))
            else:
                found.append(Path(dirpath, name))
    if (skipped or hidden) and warn_skipped:
        examples = ", ".join(p.relative_to(root).as_posix() for p in sorted(skipped)[:3])
        log.warning(
            "%s: skipped %d file(s) with unsupported extensions%s and %d hidden entr(ies)",
            root,
            len(skipped),
            f" (e.g. {examples})" if examples else "",
            hidden,
        )
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _split_name(name: str) -> tuple[str, str, bool] | None:
    """(name without extension, format, gzipped) or None for an unsupported file name."""
    lower = name.lower()
    gzipped = lower.endswith(".gz")
    if gzipped:
        name, lower = name[:-3], lower[:-3]
    for ext, fmt in FORMATS.items():
        if lower.endswith(ext) and len(lower) > len(ext):
            return name[: -len(ext)], fmt, gzipped
    return None


def _origin(doc: Document) -> str:
    line = doc.meta.get("line")
    return f"{doc.meta.get('path')}:{line}" if line else str(doc.meta.get("path"))


# ------------------------------------------------------------------------------------------------------------
# One file


def load_document(path: str | Path, root: str | Path | None = None) -> list[Document]:
    """The documents of one file (several for JSONL, SQuAD); ids are relative to `root` (or its folder)."""
    return list(_unique(lambda warn: _iter_file(path, root), True))


def _iter_file(path: str | Path, root: str | Path | None = None) -> Iterator[Document]:
    """The documents of one file: JSONL is read line by line, other formats whole (one file = one document,
    or one SQuAD file's paragraphs)."""
    path = Path(path).expanduser()
    require_regular_input(path)
    if path.is_dir():
        raise InputError(f"{path}: is a directory (use load_documents for directories)")
    if not path.exists():
        raise InputError(f"{path}: no such file")
    split = _split_name(path.name)
    if split is None:
        raise InputError(f"{path}: unsupported file type (supported: {', '.join(SUPPORTED_EXTENSIONS)})")
    stem, fmt, gzipped = split
    root = Path(root).expanduser() if root is not None else path.parent
    try:
        relative = path.relative_to(root)
    except ValueError:
        relative = Path(path.name)
    file_id = (relative.parent / stem).as_posix().removeprefix("./")
    if fmt == "jsonl":
        yield from _jsonl_documents(path, file_id, gzipped)
        return
    raw = _read_bytes(path, gzipped)
    if fmt == "html":
        text = _decode(path, raw, _declared_charset(raw))
        del raw
        yield _html_document(path, file_id, text)
        return
    text = _decode(path, raw)
    del raw
    if not text.strip():
        raise InputError(f"{path}: empty file" if not text else f"{path}: file holds only whitespace")
    if fmt == "squad":
        yield from _squad_documents(path, file_id, text)
        return
    yield Document(file_id, text, {"path": str(path), "format": fmt})


def _read_bytes(path: Path, gzipped: bool) -> bytes:
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


def _decode(path: Path, raw: bytes, fallback: str | None = None) -> str:
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


# ------------------------------------------------------------------------------------------------------------
# JSONL and SQuAD


def _jsonl_lines(path: Path, gzipped: bool) -> Iterator[tuple[int, str]]:
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


def _jsonl_documents(path: Path, file_id: str, gzipped: bool) -> Iterator[Document]:
    any_text = found = False
    for lineno, line in _jsonl_lines(path, gzipped):
        any_text = any_text or bool(line)
        if not line.strip():
            continue
        found = True
        yield _jsonl_document(path, file_id, lineno, line)
    if not found:
        raise InputError(f"{path}: file holds only whitespace" if any_text else f"{path}: empty file")


def _jsonl_document(path: Path, file_id: str, lineno: int, line: str) -> Document:
    where = f"{path}:{lineno}"
    try:
        obj = loads_json(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: malformed JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected an object with 'id' and 'text', got {type(obj).__name__}")
    key = "text" if "text" in obj else "context" if "context" in obj else None
    if key is None:
        raise InputError(f"{where}: missing 'text' field (keys: {', '.join(sorted(obj)) or 'none'})")
    body = obj[key]
    if not isinstance(body, str):
        raise InputError(f"{where}: '{key}' must be a string, got {type(body).__name__}")
    if not body.strip():
        raise InputError(f"{where}: '{key}' is empty")
    doc_id = obj.get("id")
    if doc_id is None:
        doc_id = f"{file_id}:{lineno}"
    elif isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)) or not str(doc_id).strip():
        raise InputError(f"{where}: 'id' must be a non-empty string or integer, got {doc_id!r}")
    fields = {k: v for k, v in obj.items() if k not in (key, "id")}
    meta = {"path": str(path), "format": "jsonl", "line": lineno, "fields": fields}
    return Document(str(doc_id), body, meta)


def squad_paragraph_id(article: dict[str, Any], article_index: int, paragraph_index: int) -> str:
    """`<title>/<paragraph index>`; an article without a title (COVID-QA) uses its `document_id`."""
    title = article.get("title")
    if not (isinstance(title, str) and title.strip()):
        paragraphs = article.get("paragraphs") or [{}]
        first = paragraphs[0] if isinstance(paragraphs[0], dict) else {}
        title = f"doc-{first['document_id']}" if "document_id" in first else f"article-{article_index}"
    return f"{title}/{paragraph_index}"


def _squad_documents(path: Path, file_id: str, text: str) -> list[Document]:
    try:
        data = loads_json(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise InputError(f"{path}: malformed JSON ({exc.msg} at {where})") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise InputError(f"{path}: not a SQuAD-format file (expected a top-level object with a 'data' list)")
    docs = []
    for a, article in enumerate(data["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise InputError(f"{path}: data[{a}] has no 'paragraphs' list")
        for p, paragraph in enumerate(paragraphs):
            where = f"{path}: data[{a}].paragraphs[{p}]"
            context = paragraph.get("context") if isinstance(paragraph, dict) else None
            if not isinstance(context, str):
                raise InputError(f"{where} has no 'context' string")
            if not context.strip():
                raise InputError(f"{where} has an empty 'context'")
            qas = paragraph.get("qas", [])
            if not isinstance(qas, list):
                raise InputError(f"{where}: 'qas' must be a list")
            meta = {
                "path": str(path),
                "format": "squad",
                "file": file_id,
                "title": article.get("title"),
                "article": a,
                "paragraph": p,
                "qas": qas,
            }
            if "document_id" in paragraph:
                meta["document_id"] = paragraph["document_id"]
            docs.append(Document(squad_paragraph_id(article, a, p), context, meta))
    if not docs:
        raise InputError(f"{path}: SQuAD file without paragraphs")
    ids = [d.id for d in docs]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise InputError(f"{path}: duplicate paragraph id {dup!r} (two articles with the same title?)")
    return docs


# ------------------------------------------------------------------------------------------------------------
# HTML

# Elements whose content a browser does not show as text.
_INVISIBLE = set(
    "script style template noscript head meta link base svg math iframe object embed canvas audio video map "
    "select datalist input textarea".split()
)
# Blocks a browser sets apart with a margin (a blank line here) or just starts on a new line.
_PARAGRAPH_BLOCKS = set(
    "p h1 h2 h3 h4 h5 h6 blockquote pre ul ol dl table figure hr header footer nav section article aside "
    "main form fieldset address details body".split()
)
_LINE_BLOCKS = set(
    "div li tr dt dd br figcaption summary caption legend option label center tbody thead tfoot menu dialog "
    "hgroup search".split()
)
_CELLS = {"td", "th"}
_LINE, _PARAGRAPH = 1, 2
_SPACES = re.compile(r"\s+")
_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
# WHATWG: these labels mean windows-1252 in browsers.
_CHARSET_ALIASES = {"iso-8859-1": "cp1252", "latin1": "cp1252", "us-ascii": "cp1252", "ascii": "cp1252"}


def _declared_charset(raw: bytes) -> str | None:
    match = _CHARSET.search(raw[:4096])
    if not match:
        return None
    name = match.group(1).decode("ascii").lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _html_document(path: Path, file_id: str, html: str) -> Document:
    if not html.strip():
        raise InputError(f"{path}: empty file")
    text, title = html_to_text(html, str(path))
    if not text:
        raise InputError(f"{path}: HTML page without visible text")
    return Document(file_id, text, {"path": str(path), "format": "html", "html": html, "title": title})


def html_to_text(html: str, name: str = "<html>") -> tuple[str, str | None]:
    """(visible text of the whole page, title).

    Each block starts a line, paragraph-like blocks are set apart by a blank line, whitespace inside a line is
    collapsed (line breaks in <pre> stay). Text hidden by CSS stays too, as in what crawlers extract.
    """
    import lxml.html
    from lxml import etree

    # libxml2 stops at 256 levels of nesting (2048 with huge_tree) and drops the rest of the page; past the
    # larger limit the page is refused rather than cut short silently.
    parser = lxml.html.HTMLParser(huge_tree=True)
    try:
        root = lxml.html.document_fromstring(_XML_DECLARATION.sub("", html, count=1), parser=parser)
    except (etree.ParserError, ValueError) as exc:
        raise InputError(f"{name}: cannot parse HTML ({exc})") from None
    for entry in parser.error_log:
        if entry.type_name == "ERR_RESOURCE_LIMIT":
            raise InputError(
                f"{name}: HTML nested too deeply to read whole ({entry.message.strip()} at line {entry.line}, "
                f"column {entry.column}); the text after it would be lost"
            )
    title_el = root.find(".//title")
    title = _SPACES.sub(" ", title_el.text_content()).strip() if title_el is not None else None
    pieces: list[str | int] = []
    if title:
        pieces += [title, _PARAGRAPH]
    stack: list[tuple[Any, bool]] = [(root, False)]
    pre_depth = 0
    while stack:
        el, closing = stack.pop()
        tag = el.tag.lower() if isinstance(el.tag, str) else None
        if closing:
            if tag == "pre":
                pre_depth -= 1
            pieces.append(_block_break(tag))
            _add_text(pieces, el.tail, pre_depth)
            continue
        if tag is None or tag in _INVISIBLE:  # comments, processing instructions, scripts...
            _add_text(pieces, el.tail, pre_depth)
            continue
        pieces.append(_block_break(tag))
        if tag == "pre":
            pre_depth += 1
        _add_text(pieces, el.text, pre_depth)
        stack.append((el, True))
        stack.extend((child, False) for child in reversed(el))
    return _assemble(pieces), title


def _block_break(tag: str | None) -> str | int:
    if tag in _PARAGRAPH_BLOCKS:
        return _PARAGRAPH
    if tag in _LINE_BLOCKS:
        return _LINE
    return " " if tag in _CELLS else ""


def _add_text(pieces: list[str | int], text: str | None, pre_depth: int) -> None:
    if not text:
        return
    if not pre_depth:
        pieces.append(text)
        return
    for i, line in enumerate(text.split("\n")):
        if i:
            pieces.append(_LINE)
        pieces.append(line)


def _assemble(pieces: list[str | int]) -> str:
    lines: list[str] = []
    current: list[str] = []
    gap = 0
    for piece in pieces + [_LINE]:
        if isinstance(piece, str):
            current.append(piece)
            continue
        line = _SPACES.sub(" ", "".join(current)).strip()
        current = []
        if line:
            if lines:
                lines.append("\n" * max(gap, 1))
            lines.append(line)
            gap = 0
        gap = max(gap, piece)
    return "".join(lines)
