"""Document loaders, finding files and giving ids: .txt, .md, .html/.htm, .jsonl (`id`, `text`) and SQuAD
.json, each optionally gzipped; other plain-text files (.tex, .rst, .py, ... : `PLAIN_TEXT_EXTENSIONS`) load as text.

A file named explicitly must have a supported extension; inside a directory (walked in sorted order) other
files are skipped and counted in a log message. Ids are stable: the file's path relative to the directory it
was found through (its bare name when named explicitly), without extension; JSONL records keep their own `id`;
SQuAD paragraphs get `<title>/<paragraph index>`. An HTML page becomes the visible text of the whole page,
navigation and footers included (what naive generation sees); `meta["html"]` keeps the raw HTML for
sanitisers.

Documents are read lazily, one file at a time (a JSONL corpus line by line), so a corpus is never held whole;
other files are read whole (one file is one document, or one SQuAD file's paragraphs).

Bad input raises InputError with one line naming the file (and the line, for JSONL). Decoding lives in
`robustqa.io.decoding`, the per-format readers in `robustqa.io.formats`, HTML to text in `robustqa.io.html_text`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from robustqa.doc_ids import unique_documents
from robustqa.errors import InputError
from robustqa.io.decoding import declared_charset, decode_text, read_bytes
from robustqa.io.formats import html_document, jsonl_documents, squad_documents, squad_paragraph_id
from robustqa.io.html_text import html_to_text
from robustqa.io.outputs import require_regular_input
from robustqa.types import Document

# Re-exported: callers read HTML and SQuAD ids through the loaders.
__all__ = [
    "FORMATS",
    "PLAIN_TEXT_EXTENSIONS",
    "SUPPORTED_EXTENSIONS",
    "DocumentSource",
    "html_to_text",
    "iter_documents",
    "load_document",
    "load_documents",
    "squad_paragraph_id",
]

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
    yield from unique_documents(_iter_paths(paths, warn_skipped), lambda: _iter_paths(paths, False))


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


def load_document(path: str | Path, root: str | Path | None = None) -> list[Document]:
    """The documents of one file (several for JSONL, SQuAD); ids are relative to `root` (or its folder)."""
    return list(unique_documents(_iter_file(path, root), lambda: _iter_file(path, root)))


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
        yield from jsonl_documents(path, file_id, gzipped)
        return
    raw = read_bytes(path, gzipped)
    if fmt == "html":
        text = decode_text(path, raw, declared_charset(raw))
        del raw
        yield html_document(path, file_id, text)
        return
    text = decode_text(path, raw)
    del raw
    if not text.strip():
        raise InputError(f"{path}: empty file" if not text else f"{path}: file holds only whitespace")
    if fmt == "squad":
        yield from squad_documents(path, file_id, text)
        return
    yield Document(file_id, text, {"path": str(path), "format": fmt})
