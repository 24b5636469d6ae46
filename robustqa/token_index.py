"""The tokens of a document, indexed once, so picking a random token window costs nothing like a pass over it.

Planning draws `budget` windows from one document; re-listing (or re-filtering) every token per window made
planning cost budget x document length. Here a document is tokenised once per plan:

- `WordTokens` (regex word pieces, `robustqa.segment.word_spans`'s tokens) finds where tokens start with
  numpy, 1 MB of text at a time, and keeps every 256th start (8 bytes per 256 tokens); a window's first and last
  tokens are found by running the regex from the nearest kept start.
- `OffsetTokens` (a model tokenizer's offset mapping) keeps the tokens that cover a non-whitespace character
  in two integer arrays, filtered once.

Both give exactly the window `robustqa.segment.token_windows` defines: a length uniform in [min, max], a start
uniform over the positions where it fits, the whole text when it is shorter, drawn from `rng` in that order.
"""

from __future__ import annotations

import random
import re
from array import array
from collections.abc import Sequence
from functools import lru_cache
from itertools import islice

# A word (with inner apostrophes) or one punctuation mark: the regex tokens of `robustqa.segment.word_spans`.
WORD = re.compile(r"\w+(?:['\u2019]\w+)*|[^\w\s]")


class TokenIndex:
    """Content tokens of one text: `len()` of them, and the character range of a run of them."""

    def __len__(self) -> int:
        raise NotImplementedError

    def bounds(self, first: int, length: int) -> tuple[int, int]:
        """(start, end) characters of tokens [first, first + length), clipped to the text's tokens."""
        raise NotImplementedError

    def draw(self, min_tokens: int, max_tokens: int, rng: random.Random) -> tuple[int, int]:
        """A random window's (start, end), drawn as `robustqa.segment.token_windows` draws it."""
        if not 0 < min_tokens <= max_tokens:
            raise ValueError(f"need 0 < min_tokens <= max_tokens, got {min_tokens}, {max_tokens}")
        n = len(self)
        length = rng.randint(min_tokens, max_tokens)
        first = rng.randint(0, n - length) if n > length else 0
        return self.bounds(first, length)


class WordTokens(TokenIndex):
    """Regex word pieces, counted with numpy; only every `_EVERY`-th token's start is stored.

    A token starts where a run of word characters starts, unless an apostrophe joins it to the run before
    ("don't" is one token), and at every other punctuation character: exactly where `WORD` starts a match. The
    character classes are Python's own (`\\w` is `str.isalnum()` or "_", `\\s` is `str.isspace()`), so the
    count is the regex's count; a window's tokens are then found by running `WORD` from the nearest stored start.
    """

    def __init__(self, text: str) -> None:
        import numpy as np

        self.text = text
        checkpoints, total = [], 0
        for start in range(0, len(text), _CHUNK):
            starts = _token_starts(text, start, min(start + _CHUNK, len(text))) + start
            checkpoints.append(starts[(-total) % _EVERY :: _EVERY])
            total += len(starts)
        self.checkpoints = np.concatenate(checkpoints) if checkpoints else np.zeros(0, dtype=np.int64)
        self.count = total

    def __len__(self) -> int:
        return self.count

    def bounds(self, first: int, length: int) -> tuple[int, int]:
        last = min(first + length, self.count) - 1
        if not 0 <= first <= last:
            raise ValueError(f"no tokens in [{first}, {first + length})")
        matches = WORD.finditer(self.text, int(self.checkpoints[first // _EVERY]))
        start_match = next(islice(matches, first % _EVERY, None))
        end_match = start_match if last == first else next(islice(matches, last - first - 1, None))
        return start_match.start(), end_match.end()


_CHUNK = 1 << 20  # characters classified at once
_EVERY = 256  # a token start is stored for every this many tokens
_SPACE_CLASS, _WORD_CLASS, _MARK_CLASS = 0, 1, 2
_APOSTROPHES = (ord("'"), 0x2019)


def _classes(text: str, start: int, end: int):
    """(character class: space, word or mark, as uint8; code point, as uint32) of text[start:end]; positions
    outside the text are spaces."""
    import numpy as np

    lo, hi = max(start, 0), min(end, len(text))
    points = np.frombuffer(text[lo:hi].encode("utf-32-le", "surrogatepass"), dtype="<u4")
    out = _ascii_classes()[np.minimum(points, 127)]
    wide = points > 127
    if wide.any():
        unique, where = np.unique(points[wide], return_inverse=True)
        table = np.array([_class_of(chr(int(u))) for u in unique], dtype=np.uint8)
        out[wide] = table[where]
    pad_left, pad_right = lo - start, end - hi
    if pad_left or pad_right:
        out = np.concatenate([np.zeros(pad_left, np.uint8), out, np.zeros(pad_right, np.uint8)])
    return out, np.concatenate([np.zeros(lo - start, np.uint32), points, np.zeros(end - hi, np.uint32)])


def _class_of(ch: str) -> int:
    if ch.isalnum() or ch == "_":
        return _WORD_CLASS
    return _SPACE_CLASS if ch.isspace() else _MARK_CLASS


@lru_cache(maxsize=1)
def _ascii_classes():
    import numpy as np

    return np.array([_class_of(chr(i)) for i in range(128)], dtype=np.uint8)


def _token_starts(text: str, start: int, end: int):
    """Offsets (from `start`) in text[start:end] where `WORD` starts a match, as an int64 array."""
    import numpy as np

    # Two characters of context before (is the previous character a joining apostrophe?) and one after.
    cls, points = _classes(text, start - 2, end + 1)
    word = cls == _WORD_CLASS
    apostrophe = (points == _APOSTROPHES[0]) | (points == _APOSTROPHES[1])
    joins = np.zeros_like(word)
    joins[1:-1] = apostrophe[1:-1] & word[:-2] & word[2:]
    here = slice(2, len(cls) - 1)
    before = slice(1, len(cls) - 2)
    run_start = word[here] & ~word[before] & ~joins[before]
    mark = (cls[here] == _MARK_CLASS) & ~joins[here]
    return np.flatnonzero(run_start | mark).astype(np.int64)


class OffsetTokens(TokenIndex):
    """Token character ranges from a tokenizer, kept compactly once whitespace-only tokens are dropped."""

    def __init__(self, text: str, offsets: Sequence[tuple[int, int]], doc_id: str = "") -> None:
        self.starts, self.ends = array("q"), array("q")
        size = len(text)
        for start, end in offsets:
            if not 0 <= start <= end <= size:
                raise ValueError(f"token offset ({start}, {end}) outside {doc_id!r} ({size} chars)")
            if text[start:end].strip():
                self.starts.append(start)
                self.ends.append(end)

    def __len__(self) -> int:
        return len(self.starts)

    def bounds(self, first: int, length: int) -> tuple[int, int]:
        stop = min(first + length, len(self.starts))
        if not 0 <= first < stop:
            raise ValueError(f"no tokens in [{first}, {first + length})")
        # min/max, not first/last: byte-level tokenizers may give the pieces of one character the same range.
        return min(self.starts[first:stop]), max(self.ends[first:stop])
