"""Main text of an HTML page (trafilatura) mapped back to character offsets of the document's visible text.

The loader gives an HTML document the visible text of the whole page; trafilatura finds the main text from the
raw HTML. Both are word sequences of the same page, so the extracted words are aligned to the page's words in
order (difflib), and runs of at least `min_words` matching words become character ranges of the page text.
What no run covers is boilerplate.
"""

from __future__ import annotations

import logging
import re
from difflib import SequenceMatcher

from robustqa.errors import ConfigError

log = logging.getLogger(__name__)

_WORD = re.compile(r"\w+")


def extract_main_text(html: str, favor_precision: bool = False) -> str | None:
    """trafilatura's main text of the page (tables in, comments out), or None when it finds none."""
    try:
        import trafilatura
    except ImportError as exc:  # trafilatura's justext needs lxml's separate html-clean package
        raise ConfigError(
            f"the sanitizer's HTML extractor needs trafilatura with lxml_html_clean installed ({exc}); "
            "`pip install lxml_html_clean`, or set use_html_extractor: false"
        ) from exc
    try:
        return trafilatura.extract(
            html,
            output_format="txt",
            include_comments=False,
            include_tables=True,
            favor_precision=favor_precision,
        )
    except Exception as exc:  # trafilatura raises assorted lxml errors on broken pages; the caller falls back
        log.warning("trafilatura failed: %s", exc)
        return None


def align_words(text: str, extracted: str, min_words: int = 3) -> list[tuple[int, int]]:
    """Character ranges of `text` whose words match runs of `extracted`'s words (case-insensitive, in order).

    Runs shorter than `min_words` are chance matches ("the", "of the"), not shared text.
    """
    page = [(m.start(), m.end(), m.group().lower()) for m in _WORD.finditer(text)]
    words = [m.group().lower() for m in _WORD.finditer(extracted)]
    if not page or not words:
        return []
    matcher = SequenceMatcher(None, [w for _, _, w in page], words, autojunk=False)
    return [(page[i][0], page[i + size - 1][1]) for i, _, size in matcher.get_matching_blocks() if size >= min_words]


def covered_fraction(start: int, end: int, ranges: list[tuple[int, int]]) -> float:
    """Share of the characters of [start, end) that lie inside `ranges` (sorted, non-overlapping)."""
    total = end - start
    if total <= 0:
        return 0.0
    inside = sum(max(0, min(end, r_end) - max(start, r_start)) for r_start, r_end in ranges)
    return min(1.0, inside / total)
