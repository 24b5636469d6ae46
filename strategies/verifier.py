"""`verifier` QA filter: is the answer supported by the item's target span? Scores first, keeps second.

Three scores in [0, 1], each optional:
- lexical: share of the answer's content words found in the evidence (the target span; the context when the
  item has no target), `text_match.containment`;
- semantic: MiniLM cosine of "question answer" to the evidence (clipped at 0);
- round trip: the question is answered again from the evidence ALONE (one LM request per pair, greedy), and
  the two answers are compared (token F1, or their MiniLM cosine when higher).
First, the question must share at least `min_question_overlap` content words with the evidence (a generic
question is not about the target); such pairs are rejected before any model call. Then the pair is kept when
the mean of the enabled scores reaches `min_support`. Every score lands in the Decision's reason and in the
record's meta["verifier"]. LM calls: 1 per judged pair with `round_trip` (grounded questions only), else 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from robustqa.components import Candidate, QAFilter
from robustqa.errors import ConfigError
from robustqa.lm.base import LM, ChatRequest
from robustqa.types import Decision, Document

from .text_match import containment, content_tokens, token_f1, tokens

ROUND_TRIP_PROMPT = (
    'Answer the question using only this text. If the text does not answer it, reply "not in the text".\n\n'
    "<text>\n{evidence}\n</text>"
)
NOT_ANSWERED = (
    "not in the text",
    "does not answer",
    "doesn't answer",
    "cannot be answered",
    "no information",
)


class Verifier(QAFilter):
    """Parameters:
    min_support: the mean of the enabled scores needed to keep a pair.
    min_question_overlap: content words the question must share with the evidence (0 switches it off); a
        question that shares fewer is not about the target and is rejected without any model call.
    lexical / semantic / round_trip: which scores to compute.
    round_trip_max_tokens: length limit of the re-answer.
    round_trip_prompt: system prompt of the re-answer; must contain `{evidence}`.
    """

    name = "verifier"

    def __init__(
        self,
        min_support: float = 0.5,
        min_question_overlap: int = 1,
        lexical: bool = True,
        semantic: bool = True,
        round_trip: bool = True,
        round_trip_max_tokens: int = 64,
        round_trip_prompt: str = ROUND_TRIP_PROMPT,
    ) -> None:
        self.min_support = min_support
        self.min_question_overlap = min_question_overlap
        self.lexical = lexical
        self.semantic = semantic
        self.round_trip = round_trip
        self.round_trip_max_tokens = round_trip_max_tokens
        self.round_trip_prompt = round_trip_prompt

    def judge(self, candidates: Sequence[Candidate], docs: Mapping[str, Document], lm: LM) -> list[Decision]:
        if not (self.lexical or self.semantic or self.round_trip):
            raise ConfigError("verifier needs at least one of lexical, semantic, round_trip")
        evidence = [_evidence(c) for c in candidates]
        decisions: list[Decision | None] = [None] * len(candidates)
        # 1. The question must be about the evidence: a generic question ("What is the answer to this
        #    question?") is rejected before any model call is spent on it.
        judged = []
        for i, (cand, ev) in enumerate(zip(candidates, evidence, strict=True)):
            shared = shared_content_words(cand.question, ev)
            cand.meta.setdefault("verifier", {})["question_overlap"] = shared
            if shared < self.min_question_overlap:
                reason = f"question not about the target: {shared} content word(s) shared with it"
                decisions[i] = Decision(self.name, 0.0, False, f"{reason} (< {self.min_question_overlap})")
            else:
                judged.append(i)
        # 2. Support scores of the answers.
        scores = self._scores([candidates[i] for i in judged], [evidence[i] for i in judged], lm)
        for i, row in zip(judged, scores, strict=True):
            support = sum(row.values()) / len(row)
            kept = support >= self.min_support
            candidates[i].meta["verifier"].update({k: round(v, 4) for k, v in row.items()})
            parts = ", ".join(f"{k} {v:.2f}" for k, v in row.items())
            verdict = "supported" if kept else "unsupported"
            reason = f"{verdict}: support {support:.2f} ({parts}) {'>=' if kept else '<'} {self.min_support}"
            decisions[i] = Decision(self.name, round(support, 4), kept, reason)
        return [d for d in decisions if d is not None]

    def _scores(self, candidates: Sequence[Candidate], evidence: Sequence[str], lm: LM) -> list[dict[str, float]]:
        scores: list[dict[str, float]] = [{} for _ in candidates]
        if not candidates:
            return scores
        if self.lexical:
            for row, cand, ev in zip(scores, candidates, evidence, strict=True):
                row["lexical"] = containment(cand.answer, ev)
        if self.semantic:
            from .embeddings import pairwise_cosine

            pairs = [f"{c.question} {c.answer}" for c in candidates]
            for row, cosine in zip(scores, pairwise_cosine(pairs, list(evidence)), strict=True):
                row["semantic"] = max(0.0, float(cosine))
        if self.round_trip:
            again = self._reanswer(candidates, evidence, lm)
            agreement = _agreement([c.answer for c in candidates], again, self.semantic)
            for row, cand, text, score in zip(scores, candidates, again, agreement, strict=True):
                row["round_trip"] = score
                cand.meta["verifier"]["round_trip_answer"] = text
        return scores

    def _reanswer(self, candidates: Sequence[Candidate], evidence: Sequence[str], lm: LM) -> list[str]:
        requests = [
            ChatRequest.of(
                [
                    {"role": "system", "content": self.round_trip_prompt.format(evidence=ev)},
                    {"role": "user", "content": cand.question},
                ],
                temperature=0.0,
                max_tokens=self.round_trip_max_tokens,
                seed=cand.item.seed,
            )
            for cand, ev in zip(candidates, evidence, strict=True)
        ]
        return [c.texts[0].strip() for c in lm.generate(requests)]


def shared_content_words(question: str, evidence: str) -> int:
    """How many distinct content words of the question occur in the evidence."""
    available = set(tokens(evidence))
    return len({t for t in content_tokens(question) if t in available})


def _evidence(cand: Candidate) -> str:
    if cand.item.target is not None:
        return cand.item.target.text
    return cand.context


def _agreement(answers: Sequence[str], again: Sequence[str], semantic: bool) -> list[float]:
    """How well each re-answer agrees with the answer: token F1 (or the cosine if higher); 0 for a refusal."""
    scores = [0.0 if _refused(b) else token_f1(b, a) for a, b in zip(answers, again, strict=True)]
    if semantic:
        from .embeddings import pairwise_cosine

        cosines = pairwise_cosine(list(answers), list(again))
        scores = [0.0 if _refused(b) else max(s, float(c)) for s, c, b in zip(scores, cosines, again, strict=True)]
    return [min(1.0, max(0.0, s)) for s in scores]


def _refused(text: str) -> bool:
    low = text.lower()
    return not low.strip() or any(phrase in low for phrase in NOT_ANSWERED)
