"""Document ids must be unique: one streaming check for every reader of documents (the loaders, the runner's
first pass, the audit's corpus), holding 8 bytes per id, with an error that names where both documents came from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

from robustqa.errors import InputError
from robustqa.types import Document


def unique_documents(docs: Iterable[Document], reread: Callable[[], Iterator[Document]]) -> Iterator[Document]:
    """`docs`, checking that their ids are unique; `reread()` gives the same documents again.

    Seen ids are kept as 63-bit hashes (8 bytes each, not the id and its origin); a repeated hash reads the
    input again to name the first document with that id, or to find it was a hash collision.
    """
    seen = SeenHashes()
    for position, doc in enumerate(docs):
        key = id_hash(doc.id)
        if key in seen:
            first = next((d for d in islice(reread(), position) if d.id == doc.id), None)
            if first is not None:
                raise InputError(duplicate_message(first, doc))
        seen.add(key)
        yield doc


def id_hash(doc_id: str) -> int:
    digest = hashlib.blake2b(doc_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1  # fits an int64


class SeenHashes:
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


def duplicate_message(first: Document, doc: Document) -> str:
    line, first_line = doc.meta.get("line"), first.meta.get("line")
    if line and first_line and doc.meta.get("path") == first.meta.get("path"):
        return f"{doc.meta['path']}:{line}: duplicate document id {doc.id!r} (first on line {first_line})"
    return f"duplicate document id {doc.id!r}: {_origin(first)} and {_origin(doc)}"


def _origin(doc: Document) -> str:
    path, line = doc.meta.get("path"), doc.meta.get("line")
    if path is None:
        return "a document given in memory"
    return f"{path}:{line}" if line else str(path)
