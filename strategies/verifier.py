"""`verifier` QA filter: is the answer supported by the item's target span? Scores first, keeps second.

What an answer claims is its content words minus the words of the question: a small model restates the
question at length, and the echo says nothing about whether the answer is right (`text_match.claim_tokens`).

Hard checks, each rejecting before any model call:
1. the question shares at least `min_question_overlap` content words with the evidence (the target span;
   the context when the item has no target): a generic question is not about the target;
2. `specifics`: every number and proper name of the question and the answer occurs in the context the
   answerer saw (`robustqa.specifics`): "October 23, 2023" or "Josh Norman" in an answer about a
   paragraph that names neither is invented;
3. the answer claims something (a content word beyond the question), and at least `min_lexical` of its claim
   occurs in the evidence.
Then three scores in [0, 1], each optional, and the pair is kept when their weighted mean reaches `min_support`:
- lexical: share of the claim found in the evidence;
- semantic: MiniLM cosine of "question answer" to the evidence (clipped at 0);
- round trip: the question is answered again from the evidence ALONE (one LM request per pair, greedy), and
  the two claims are compared (token F1, or the MiniLM cosine of the claims when higher). When the answering
  model re-answers, it tends to repeat its own invention, so this agreement is weak evidence: it counts with
  `round_trip_weight` (lexical and semantic count 1).
Every score and check lands in the Decision's reason and in the record's meta["verifier"]. LM calls: 1 per
pair that passed the hard checks, with `round_trip`; else 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from robustqa.components import Candidate, QAFilter
from robustqa.errors import ConfigError
from robustqa.lm.base import LM, ChatRequest
from robustqa.specifics import missing_specifics
from robustqa.types import Decision, Document

from .text_match import claim_f1, claim_text, claim_tokens, content_tokens, share_in, tokens

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
    min_support: the weighted mean of the enabled scores needed to keep a pair.
    min_question_overlap: content words the question must share with the evidence (0 switches it off); a
        question that shares fewer is not about the target and is rejected without any model call.
    specifics: reject a pair whose question or answer has a number or proper name absent from the context.
    min_lexical: share of the answer's claim that must occur in the evidence (0 switches the check off;
        an answer that claims nothing beyond its question is then still rejected).
    lexical / semantic / round_trip: which scores to compute.
    round_trip_weight: weight of the round-trip score in the mean (lexical and semantic weigh 1).
    round_trip_max_tokens: length limit of the re-answer.
    round_trip_prompt: system prompt of the re-answer; must contain `{evidence}`.
    """

    name = "verifier"

    def __init__(
        self,
        min_support: float = 0.5,
        min_question_overlap: int = 1,
        specifics: bool = True,
        min_lexical: float = 0.5,
        lexical: bool = True,
        semantic: bool = True,
        round_trip: bool = True,
        round_trip_weight: float = 0.5,
        round_trip_max_tokens: int = 64,
        round_trip_prompt: str = ROUND_TRIP_PROMPT,
    ) -> None:
        self.min_support = min_support
        self.min_question_overlap = min_question_overlap
        self.specifics = specifics
        self.min_lexical = min_lexical
        self.lexical = lexical
        self.semantic = semantic
        self.round_trip = round_trip
        self.round_trip_weight = round_trip_weight
        self.round_trip_max_tokens = round_trip_max_tokens
        self.round_trip_prompt = round_trip_prompt

    def validate(self) -> None:
        if not (self.lexical or self.semantic or self.round_trip):
            raise ConfigError("verifier needs at least one of lexical, semantic, round_trip")

    def judge(self, candidates: Sequence[Candidate], docs: Mapping[str, Document], lm: LM) -> list[Decision]:
        evidence = [_evidence(c) for c in candidates]
        decisions: list[Decision | None] = [None] * len(candidates)
        # 1. Hard checks, before any model call is spent on the pair.
        judged = []
        for i, (cand, ev) in enumerate(zip(candidates, evidence, strict=True)):
            failure = self._hard_check(cand, ev)
            if failure is not None:
                decisions[i] = Decision(self.name, 0.0, False, failure)
            else:
                judged.append(i)
        # 2. Support scores of the answers.
        scores = self._scores([candidates[i] for i in judged], [evidence[i] for i in judged], lm)
        for i, row in zip(judged, scores, strict=True):
            support = self._support(row)
            kept = support >= self.min_support
            candidates[i].meta["verifier"].update({k: round(v, 4) for k, v in row.items()})
            parts = ", ".join(f"{k} {v:.2f}" for k, v in row.items())
            verdict = "supported" if kept else "unsupported"
            reason = f"{verdict}: support {support:.2f} ({parts}) {'>=' if kept else '<'} {self.min_support}"
            decisions[i] = Decision(self.name, round(support, 4), kept, reason)
        return [d for d in decisions if d is not None]

    def _hard_check(self, cand: Candidate, evidence: str) -> str | None:
        """Why the pair fails a hard check (None when it passes all); the facts go to meta["verifier"]."""
        meta = cand.meta.setdefault("verifier", {})
        shared = shared_content_words(cand.question, evidence)
        meta["question_overlap"] = shared
        if shared < self.min_question_overlap:
            need = self.min_question_overlap
            return f"question not about the target: {shared} content word(s) shared with it (< {need})"
        if self.specifics:
            invented = missing_specifics(f"{cand.question}\n{cand.answer}", cand.context)
            meta["missing_specifics"] = invented
            if invented:
                shown = ", ".join(repr(w) for w in invented[:5])
                return f"invented specifics: {shown} not in the context"
        claim = claim_tokens(cand.answer, cand.question)
        if not claim:
            return "answer claims nothing beyond its question"
        found = share_in(claim, evidence)
        meta["claim_in_evidence"] = round(found, 4)
        if found < self.min_lexical:
            return f"answer not in the target: {found:.2f} of its claim found (< {self.min_lexical})"
        return None

    def _support(self, row: Mapping[str, float]) -> float:
        weights = {k: (self.round_trip_weight if k == "round_trip" else 1.0) for k in row}
        total = sum(weights.values())
        return sum(row[k] * weights[k] for k in row) / total if total > 0 else 0.0

    def _scores(self, candidates: Sequence[Candidate], evidence: Sequence[str], lm: LM) -> list[dict[str, float]]:
        scores: list[dict[str, float]] = [{} for _ in candidates]
        if not candidates:
            return scores
        if self.lexical:
            for row, cand, ev in zip(scores, candidates, evidence, strict=True):
                row["lexical"] = share_in(claim_tokens(cand.answer, cand.question), ev)
        if self.semantic:
            from .embeddings import pairwise_cosine

            pairs = [f"{c.question} {c.answer}" for c in candidates]
            for row, cosine in zip(scores, pairwise_cosine(pairs, list(evidence)), strict=True):
                row["semantic"] = max(0.0, float(cosine))
        if self.round_trip:
            again = self._reanswer(candidates, evidence, lm)
            agreement = _agreement(candidates, again, self.semantic)
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


def _agreement(candidates: Sequence[Candidate], again: Sequence[str], semantic: bool) -> list[float]:
    """How well each re-answer's claim agrees with the answer's: token F1 (or the claims' cosine if higher);
    0 for a refusal."""
    scores = [0.0 if _refused(b) else claim_f1(c.answer, b, c.question) for c, b in zip(candidates, again, strict=True)]
    if semantic:
        from .embeddings import pairwise_cosine

        mine = [claim_text(c.answer, c.question) for c in candidates]
        theirs = [claim_text(b, c.question) for c, b in zip(candidates, again, strict=True)]
        cosines = pairwise_cosine(mine, theirs)
        scores = [0.0 if _refused(b) else max(s, float(c)) for s, c, b in zip(scores, cosines, again, strict=True)]
    return [min(1.0, max(0.0, s)) for s in scores]


def _refused(text: str) -> bool:
    low = text.lower()
    return not low.strip() or any(phrase in low for phrase in NOT_ANSWERED)
