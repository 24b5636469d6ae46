"""Word alignment of two texts of the same page: which character ranges of `text` another text repeats.

The sanitiser aligns trafilatura's main text to a page's visible text; the audit aligns a ground-truth article
to it. Both are word sequences of the same page, so the words are aligned in order (difflib), and runs of at
least `min_words` matching words become character ranges of `text`.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

_WORD = re.compile(r"\w+")
# Aligned runs shorter than this many words are chance matches ("the", "of the"), not shared text.
MIN_ALIGNED_WORDS = 3


def align_words(text: str, other: str, min_words: int = MIN_ALIGNED_WORDS) -> list[tuple[int, int]]:
    """Character ranges of `text` whose words match runs of `other`'s words (case-insensitive, in order)."""
    page = [(m.start(), m.end(), m.group().lower()) for m in _WORD.finditer(text)]
    words = [m.group().lower() for m in _WORD.finditer(other)]
    if not page or not words:
        return []
    matcher = SequenceMatcher(None, [w for _, _, w in page], words, autojunk=False)
    return [(page[i][0], page[i + size - 1][1]) for i, _, size in matcher.get_matching_blocks() if size >= min_words]
