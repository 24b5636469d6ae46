"""One file's documents by format: JSONL records (`id`, `text`), SQuAD paragraphs, an HTML page (its visible
text, with the raw HTML in `meta["html"]`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from robustqa.errors import InputError
from robustqa.io.bounded import loads_json
from robustqa.io.decoding import jsonl_lines
from robustqa.io.html_text import html_to_text
from robustqa.io.jsonl import json_object_line
from robustqa.types import Document


def jsonl_documents(path: Path, file_id: str, gzipped: bool) -> Iterator[Document]:
    any_text = found = False
    for lineno, line in jsonl_lines(path, gzipped):
        any_text = any_text or bool(line)
        if not line.strip():
            continue
        found = True
        yield _jsonl_document(path, file_id, lineno, line)
    if not found:
        raise InputError(f"{path}: file holds only whitespace" if any_text else f"{path}: empty file")


def _jsonl_document(path: Path, file_id: str, lineno: int, line: str) -> Document:
    where = f"{path}:{lineno}"
    obj = json_object_line(line, where, "an object with 'id' and 'text'")
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


def squad_documents(path: Path, file_id: str, text: str) -> list[Document]:
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


def html_document(path: Path, file_id: str, html: str) -> Document:
    if not html.strip():
        raise InputError(f"{path}: empty file")
    text, title = html_to_text(html, str(path))
    if not text:
        raise InputError(f"{path}: HTML page without visible text")
    return Document(file_id, text, {"path": str(path), "format": "html", "html": html, "title": title})
