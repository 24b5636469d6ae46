"""Rendering what the models see of a document: a character range with flagged spans cut out."""

from __future__ import annotations

from collections.abc import Sequence

from .types import Document, SpanFlag


def masked_ranges(flags: Sequence[SpanFlag], start: int, end: int) -> list[SpanFlag]:
    """The flags that overlap [start, end)."""
    return [f for f in flags if f.start < end and f.end > start]


def render_context(doc: Document, start: int, end: int, masked: Sequence[tuple[int, int]] = ()) -> str:
    """doc.text[start:end] with every masked range removed (a removed range becomes one space or line break)."""
    pieces: list[str] = []
    pos = start
    for m_start, m_end in sorted(masked):
        m_start, m_end = max(m_start, start), min(m_end, end)
        if m_start >= m_end or m_end <= pos:
            continue
        if m_start > pos:
            pieces.append(doc.text[pos:m_start])
        removed = doc.text[max(m_start, pos) : m_end]
        pieces.append("\n" if "\n" in removed else " ")
        pos = m_end
    pieces.append(doc.text[pos:end])
    return "".join(pieces).strip()
