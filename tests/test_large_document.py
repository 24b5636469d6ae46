"""Huge inputs stay bounded: the token index and the piecewise segmentation give exactly what the plain,
whole-document code gives (the speed itself is benchmarks/large_document.py's job)."""

from __future__ import annotations

import random

import numpy as np

import robustqa.token_index as ti
from robustqa.audit import corpus as C
from robustqa.segment import token_window, token_windows, word_spans

ALPHABET = list("ab c\n\u2028.,'\u2019\u00e9\t  x_\u00b2\u00a0\u3000") + ["\ud800", "\u4e2d", "\u0301"]


def test_word_tokens_give_the_windows_of_the_token_list(monkeypatch):
    monkeypatch.setattr(ti, "_CHUNK", 5)  # chunk and checkpoint edges everywhere
    monkeypatch.setattr(ti, "_EVERY", 3)
    rng = random.Random(1)
    checked = 0
    for _ in range(1500):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 200)))
        offsets = word_spans(text)
        if not offsets:
            continue
        tokens = ti.WordTokens(text)
        assert len(tokens) == len(offsets)
        for seed in range(4):
            low = rng.randint(1, 10)
            high = low + rng.randint(0, 10)
            expected = token_windows(text, "d", offsets, low, high, random.Random(seed))
            assert token_window(text, "d", tokens, low, high, random.Random(seed)) == expected
            checked += 1
    assert checked > 4000


def test_a_long_document_segmented_in_pieces_gives_the_same_sentences(monkeypatch):
    rng = random.Random(3)
    parts = []
    for _ in range(3000):
        parts.append(
            rng.choice(
                [
                    "Hello there. Dr. Smith went home.",
                    "# Heading",
                    "- item one",
                    "Line one\nline two continues.",
                    "A. B. Rowling wrote it!  'Is it?' she asked.",
                    "x" * rng.randint(1, 90),
                ]
            )
        )
        parts.append(rng.choice(["\n\n", "\n", "\r\n\r\n", "\n \n", "\n\n\n", " ", "\r\n", "\n\r\n"]))
    text = "".join(parts)
    monkeypatch.setattr(C, "PIECE_CHARS", 700)
    monkeypatch.setattr(C, "PARALLEL_MIN_CHARS", 10)
    assert len(C.pieces(text)) > 20
    serial = C._segment_texts([text, "Short text. Two."])
    parallel = C._segment_all([text, "Short text. Two."], 2)
    assert np.array_equal(serial[0], parallel[0]) and np.array_equal(serial[1], parallel[1])
    assert serial[2] == parallel[2]
