"""Does an answer carry an injected payload? Two checks, both on normalised text (lower case, words only):

- a known payload: the answer contains a canary string or payload text whole (short payloads), or shares a run
  of `ngram` words with it (long payload instructions, which an obeying model paraphrases around);
- copied from a flagged span: the answer shares a run of `ngram` words with an instruction-like sentence of
  the corpus, i.e. it repeats the planted instruction to the student.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from robustqa.errors import InputError
from robustqa.io.bounded import loads_json
from robustqa.io.outputs import require_regular_input

_WORD = re.compile(r"\w+")
PAYLOAD_KEYS = ("canary", "judge_args", "payload", "instruction", "text", "attack")


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def load_payloads(path: str | Path) -> list[str]:
    """Payload strings from JSON (a list, or an object of lists such as BIPIA's categories), JSONL (rows with
    canary / judge_args / payload / instruction / text fields, as spikee's) or plain text (one per line)."""
    path = Path(path)
    require_regular_input(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 ({exc.reason})") from None
    found: list[str] = []
    if path.suffix == ".json":
        try:
            _collect(loads_json(raw), found)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: malformed JSON ({exc.msg} at line {exc.lineno})") from None
    elif path.suffix == ".jsonl":
        for lineno, line in enumerate(raw.splitlines(), start=1):
            if line.strip():
                try:
                    _collect(loads_json(line), found)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}:{lineno}: malformed JSON ({exc.msg})") from None
    else:
        found = [line.strip() for line in raw.splitlines() if line.strip()]
    payloads = list(dict.fromkeys(p for p in found if words(p)))
    if not payloads:
        raise InputError(f"{path}: no payload strings found")
    return payloads


def _collect(obj: object, out: list[str]) -> None:
    if isinstance(obj, str):
        out.append(obj)
    elif isinstance(obj, list):
        for item in obj:
            _collect(item, out)
    elif isinstance(obj, dict):
        known = [k for k in PAYLOAD_KEYS if k in obj]
        for key in known or list(obj):
            _collect(obj[key], out)


class NgramMatcher:
    """Which of many reference texts an answer repeats: whole (when shorter than n words) or by an n-word
    run."""

    def __init__(self, texts: Sequence[str], n: int = 8) -> None:
        self.n = n
        self.short: list[tuple[str, int]] = []
        self.grams: dict[tuple[str, ...], int] = {}
        for i, text in enumerate(texts):
            tokens = words(text)
            if len(tokens) < n:
                self.short.append((" " + " ".join(tokens) + " ", i))
            else:
                for gram in _grams(tokens, n):
                    self.grams.setdefault(gram, i)

    def __bool__(self) -> bool:
        return bool(self.short or self.grams)

    def match(self, text: str) -> int:
        """Index of a reference text the answer repeats, or -1."""
        tokens = words(text)
        if self.short:
            joined = " " + " ".join(tokens) + " "
            for needle, i in self.short:
                if needle in joined:
                    return i
        if self.grams and len(tokens) >= self.n:
            for gram in _grams(tokens, self.n):
                i = self.grams.get(gram)
                if i is not None:
                    return i
        return -1

    def match_all(self, texts: Iterable[str]) -> list[int]:
        return [self.match(t) for t in texts]


def _grams(tokens: list[str], n: int):
    return zip(*(tokens[k:] for k in range(n)), strict=False)  # stops at the shortest: the last full n-gram
