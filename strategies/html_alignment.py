"""Main text of an HTML page (trafilatura) mapped back to character offsets of the document's visible text.

The loader gives an HTML document the visible text of the whole page; trafilatura finds the main text from the
raw HTML. The extracted words are aligned to the page's words (`robustqa.align.align_words`, shared with the
audit); what no aligned run covers is boilerplate.
"""

from __future__ import annotations

import logging

from robustqa.align import align_words  # noqa: F401  (the sanitiser's name for it)
from robustqa.errors import ConfigError

log = logging.getLogger(__name__)


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


def covered_fraction(start: int, end: int, ranges: list[tuple[int, int]]) -> float:
    """Share of the characters of [start, end) that lie inside `ranges` (sorted, non-overlapping)."""
    total = end - start
    if total <= 0:
        return 0.0
    inside = sum(max(0, min(end, r_end) - max(start, r_start)) for r_start, r_end in ranges)
    return min(1.0, inside / total)
