"""Document loaders: .txt, .md, .html/.htm, .jsonl (`id`, `text`) and SQuAD .json, each optionally gzipped.

A file named explicitly must have a supported extension; inside a directory (walked in sorted order) other
files are skipped and counted in a log message. Ids are stable: the file's path relative to the directory it
was found through (its bare name when named explicitly), without extension; JSONL records keep their own `id`;
SQuAD paragraphs get `<title>/<paragraph index>`. An HTML page becomes the visible text of the whole page,
navigation and footers included (what naive generation sees); `meta["html"]` keeps the raw HTML for
sanitisers.

Bad input raises InputError with one line naming the file (and the line, for JSONL).
"""

from __future__ import annotations

import codecs
import gzip
import json
import logging
import os
import re
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from robustqa.errors import InputError
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
SUPPORTED_EXTENSIONS = tuple(sorted(FORMATS)) + tuple(sorted(ext + ".gz" for ext in FORMATS))


# ------------------------------------------------------------------------------------------------------------
# Finding files


def iter_documents(paths: Sequence[str | Path]) -> Iterator[Document]:
    """Documents of every file and (recursively, in sorted order) directory in `paths`; ids must be unique."""
    if isinstance(paths, (str, Path)):
        paths = [paths]  # one path, not a sequence of one-character paths
    origins: dict[str, str] = {}
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            files = _supported_files(path)
            if not files:
                kinds = ", ".join(SUPPORTED_EXTENSIONS)
                raise InputError(f"{path}: no documents ({kinds}) in this directory")
            pairs = [(f, path) for f in files]
        else:
            pairs = [(path, path.parent)]
        for file, root in pairs:
            for doc in load_document(file, root):
                origin = _origin(doc)
                if doc.id in origins:
                    raise InputError(f"duplicate document id {doc.id!r}: {origins[doc.id]} and {origin}")
                origins[doc.id] = origin
                yield doc


def load_documents(paths: Sequence[str | Path]) -> list[Document]:
    """All documents of `paths` (files and directories), in order."""
    return list(iter_documents(paths))


def _supported_files(root: Path) -> list[Path]:
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
    if skipped or hidden:
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
    path = Path(path).expanduser()
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
    raw = _read_bytes(path, gzipped)
    if fmt == "html":
        text = _decode(path, raw, _declared_charset(raw))
        return [_html_document(path, file_id, text)]
    text = _decode(path, raw)
    if not text.strip():
        raise InputError(f"{path}: empty file" if not text else f"{path}: file holds only whitespace")
    if fmt == "jsonl":
        return _jsonl_documents(path, file_id, text)
    if fmt == "squad":
        return _squad_documents(path, file_id, text)
    return [Document(file_id, text, {"path": str(path), "format": fmt})]


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


def _jsonl_documents(path: Path, file_id: str, text: str) -> list[Document]:
    docs, seen = [], set()
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
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
        doc_id = str(doc_id)
        if doc_id in seen:
            raise InputError(f"{where}: duplicate document id {doc_id!r}")
        seen.add(doc_id)
        fields = {k: v for k, v in obj.items() if k not in (key, "id")}
        meta = {"path": str(path), "format": "jsonl", "line": lineno, "fields": fields}
        docs.append(Document(doc_id, body, meta))
    return docs


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
        data = json.loads(text)
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

    try:
        root = lxml.html.document_fromstring(_XML_DECLARATION.sub("", html, count=1))
    except (etree.ParserError, ValueError) as exc:
        raise InputError(f"{name}: cannot parse HTML ({exc})") from None
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
