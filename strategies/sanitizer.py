"""`sanitizer` span filter: finds boilerplate before any question is asked, and flags it with reasons.

- HTML documents (`meta["format"] == "html"` with the raw page in `meta["html"]`): trafilatura extracts the
  main text from the raw HTML; it is aligned back to the document's visible text (`html_alignment`), and
  every sentence mostly outside the aligned main text is flagged.
- Every document (text, Markdown, and HTML pages too): line rules for markup residue, link lists, banners
  and navigation (`boilerplate_rules`).
Flagged ranges are never targets and are masked from what the models see; nothing is deleted from the
document. No LM call.
"""

from __future__ import annotations

from robustqa.components import SpanFilter, SpanFlag
from robustqa.segment import sentences
from robustqa.types import Document

from .boilerplate_rules import find_boilerplate
from .flag_merge import merge_adjacent
from .html_alignment import align_words, covered_fraction, extract_main_text


class Sanitizer(SpanFilter):
    """Parameters:
    use_html_extractor: run trafilatura on HTML documents.
    favor_precision: trafilatura's precision mode (less boilerplate kept, some main text lost).
    min_main_fraction: a sentence with less than this share inside the main text is boilerplate.
    min_aligned_words: shortest run of words that counts as shared between page and main text.
    use_line_rules: apply the text/Markdown boilerplate rules.
    min_menu_run / max_menu_words: this many consecutive lines of at most that many words form a menu.
    """

    name = "sanitizer"

    def __init__(
        self,
        use_html_extractor: bool = True,
        favor_precision: bool = False,
        min_main_fraction: float = 0.5,
        min_aligned_words: int = 3,
        use_line_rules: bool = True,
        min_menu_run: int = 4,
        max_menu_words: int = 3,
    ) -> None:
        self.use_html_extractor = use_html_extractor
        self.favor_precision = favor_precision
        self.min_main_fraction = min_main_fraction
        self.min_aligned_words = min_aligned_words
        self.use_line_rules = use_line_rules
        self.min_menu_run = min_menu_run
        self.max_menu_words = max_menu_words

    def flag(self, doc: Document) -> list[SpanFlag]:
        flags: list[SpanFlag] = []
        if self.use_html_extractor and doc.meta.get("format") == "html" and doc.meta.get("html"):
            flags.extend(self._outside_main_text(doc))
        if self.use_line_rules:
            flags.extend(
                SpanFlag(h.start, h.end, self.name, h.score, h.reason)
                for h in find_boilerplate(doc.text, self.min_menu_run, self.max_menu_words)
            )
        return merge_adjacent(doc.text, flags)

    def _outside_main_text(self, doc: Document) -> list[SpanFlag]:
        main = extract_main_text(doc.meta["html"], self.favor_precision)
        if not main:
            return []  # trafilatura found no main text: only the line rules judge this page
        ranges = align_words(doc.text, main, self.min_aligned_words)
        flags = []
        for span in sentences(doc.text, doc.id):
            inside = covered_fraction(span.start, span.end, ranges)
            if inside < self.min_main_fraction:
                reason = "outside the page's main text (trafilatura)"
                flags.append(SpanFlag(span.start, span.end, self.name, round(1.0 - inside, 3), reason))
        return flags
