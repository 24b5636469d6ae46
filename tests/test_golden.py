"""Generation against recorded outputs: the same seeds must give the same records, byte for byte.

The scripted LM below answers like a cooperative model (a question built from the marked target, an answer
copied from the context's best-matching sentence), so pairs get past the format check and every filter of the
robust strategy decides on real text. Refresh the recordings after an intended change with
`python tests/test_golden.py` and review the diff.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "data" / "golden"
DOCS = [
    HERE.parent / "examples" / "declaration_of_independence.md",
    HERE / "data" / "web" / "html" / "3cb22bfabed8de715c0813a7bb5052363c96bd71ccce3bb2dfb3ab9d1d7a9bbc.html.gz",
]
RUNS = {
    "naive": ("naive", {}),
    "stratified": ("stratified", {}),
    "robust": ("robust", {"use_embeddings": False, "attempts": 2}),
    # The composition before answer spans: targeted questions, k sampled answers, consistency and the verifier.
    "robust_abstractive": (
        "robust",
        {
            "use_embeddings": False,
            "attempts": 2,
            "answer_mode": "abstractive",
            "question_writer": "targeted",
            "consistency_k": 3,
            "window": 2,
            "max_answer_tokens": 128,
        },
    ),  # fmt: skip
}
_WORD = re.compile(r"\w+")


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text) if len(w) > 3}


def _cooperative():
    """Question writer: ask about the target's first words; answerer: the context sentence sharing most words
    with the question, but two answers in every seven invent specifics (so samples disagree and the verifier rejects
    some); anything else (naive's call A): the prompt's last words."""
    answers = 0

    def reply(req) -> str:
        nonlocal answers
        return _reply(req, invent=(answers := answers + 1) % 7 in (2, 3))

    return reply


def _reply(req, invent: bool) -> str:
    last = req.messages[-1][1]
    cloze = re.match(r"Sentence: (.*)\nThe blank is (.*)\.\n", last)
    if cloze:  # the answer-aware writer's cloze prompt: the blank becomes the question word, but numbers defeat it
        if cloze.group(2) in ("a number", "a date or year"):
            return "Sure! Here is a question about the number."
        return " ".join(cloze.group(1).replace("____", "what").split()[:24]).rstrip(".") + "?"
    planned = re.match(r"Text: (.*)\nAnswer: (.*)\n", last)
    if planned:  # the answer-aware writer: a question from the sentence's first words, which may say the answer
        return f"What does the text say about {' '.join(planned.group(1).split()[:5])}?"
    marked = re.findall(r"<target>(.*?)</target>", last, re.S)
    if marked:  # the longest: the prompt's own instructions mention the tags too
        return f"What does the document say about {' '.join(max(marked, key=len).split()[:6])}?"
    system = next((c for role, c in req.messages if role == "system"), "")
    info = re.search(r"<info>(.*)</info>", system, re.S)
    if info:
        if invent:
            return "Professor Quimby settled it in 1931 with 4,000 soldiers."
        asked = _words(last)
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", info.group(1)) if s.strip()]
        return max(sentences, key=lambda s: len(asked & _words(s))).strip()
    return " ".join(last.split()[-12:]) or "ok"


def generate(name: str, out_dir: Path) -> Path:
    from robustqa.config import GenerateConfig
    from robustqa.io.loaders import DocumentSource
    from robustqa.lm.fake import FakeLM
    from robustqa.runner import generate_records

    strategy, params = RUNS[name]
    cfg = GenerateConfig(strategy=strategy, strategy_params=params, budget=8, seed=7, backend="fake", cache=None)
    strat = cfg.build_strategy()
    lm = FakeLM(default=_cooperative())
    out = out_dir / f"{name}.jsonl"
    generate_records(
        DocumentSource(DOCS), strat, lm, cfg.budget, cfg.seed, out,
        overwrite=True, batch_size=4, fingerprint=cfg.fingerprint(strat, lm.model_id), progress=False,
    )  # fmt: skip
    return out


@pytest.mark.parametrize("name", sorted(RUNS))
def test_generation_matches_the_recorded_outputs(name, tmp_path):
    out = generate(name, tmp_path)
    for path in (out, out.with_name(f"{name}.rejected.jsonl")):
        expected = GOLDEN / path.name
        assert path.read_bytes() == expected.read_bytes(), f"{path.name} differs from {expected}"


def test_the_recordings_exercise_the_filters():
    """A recording where everything is rejected at the format check would guard nothing."""
    kept = {name: (GOLDEN / f"{name}.jsonl").read_text(encoding="utf-8").count("\n") for name in RUNS}
    abstractive = (GOLDEN / "robust_abstractive.jsonl").read_text(encoding="utf-8")
    assert all(kept.values()), kept
    assert "invented specifics" in abstractive and "answer replaced by the majority" in abstractive
    robust = [json.loads(line) for line in (GOLDEN / "robust.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {r["meta"]["question_source"] for r in robust} == {"model", "template"}
    assert len({r["meta"]["answer_source"] for r in robust}) >= 2


if __name__ == "__main__":
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for run in sys.argv[1:] or sorted(RUNS):
        out = generate(run, GOLDEN)
        out.with_name(f"{run}.manifest.json").unlink()  # it holds the time of writing
        print(out)
