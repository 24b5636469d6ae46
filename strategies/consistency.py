"""`consistency` QA filter: do the k answers sampled from ONE request agree? Keep the majority answer.

The answerer returns k samples per item from one request (`answerer: {name: context, samples: k,
temperature: 0.7}`). Samples are compared on their claims, the content words beyond the question
(`text_match.claim_text`): "The person who performed the anthem is Lady Gaga" and "... is Jared Allen" share
the restated question, not an answer. Two samples agree when their claims are equal, their claims' token F1
reaches `match_f1`, or (with embeddings) the MiniLM cosine of their claims reaches `match_cosine`. The
representative is the sample that agrees with the most samples (the earliest on ties); agreement = that
count / k. The pair is kept when agreement reaches `min_agreement`, and its answer becomes the representative
(the reason says so when it changes). No LM call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from robustqa.components import Candidate, QAFilter
from robustqa.lm.base import LM
from robustqa.types import Decision, Document

from .text_match import claim_text, token_f1


class Consistency(QAFilter):
    """Parameters:
    min_agreement: share of the samples that must agree with the representative.
    match_f1: token F1 at which two samples agree.
    use_embeddings: also let samples agree by MiniLM cosine.
    match_cosine: cosine at which two samples agree (with embeddings).
    """

    name = "consistency"

    def __init__(
        self,
        min_agreement: float = 0.5,
        match_f1: float = 0.5,
        use_embeddings: bool = True,
        match_cosine: float = 0.8,
    ) -> None:
        self.min_agreement = min_agreement
        self.match_f1 = match_f1
        self.use_embeddings = use_embeddings
        self.match_cosine = match_cosine

    def judge(self, candidates: Sequence[Candidate], docs: Mapping[str, Document], lm: LM) -> list[Decision]:
        return [self._judge_one(c) for c in candidates]

    def _judge_one(self, cand: Candidate) -> Decision:
        samples = [s for s in cand.samples if s.strip()]
        if len(samples) < 2:
            return Decision(
                self.name,
                None,
                True,
                "fewer than 2 samples: agreement not measured (set the answerer's samples > 1)",
            )
        agree = self.agreement_matrix(samples, cand.question)
        support = agree.sum(axis=1)
        best = int(np.argmax(support))  # argmax takes the earliest on ties
        agreement = float(support[best]) / len(samples)
        kept = agreement >= self.min_agreement
        members = [int(j) for j in np.flatnonzero(agree[best])]
        cand.meta["consistency"] = {
            "agreement": round(agreement, 4),
            "representative": best,
            "cluster": members,
        }
        reason = f"{int(support[best])} of {len(samples)} samples agree (agreement {agreement:.2f} "
        reason += f"{'>=' if kept else '<'} {self.min_agreement})"
        if kept and samples[best] != cand.answer:
            cand.answer = samples[best]
            reason += f"; answer replaced by the majority representative (sample {best})"
        return Decision(self.name, round(agreement, 4), kept, reason)

    def agreement_matrix(self, samples: Sequence[str], question: str = "") -> np.ndarray:
        """agree[i, j]: do samples i and j claim the same thing? (symmetric, True on the diagonal)"""
        k = len(samples)
        agree = np.eye(k, dtype=bool)
        claims = [claim_text(s, question) for s in samples]
        for i in range(k):
            for j in range(i + 1, k):
                same = claims[i] == claims[j] or token_f1(claims[i], claims[j]) >= self.match_f1
                agree[i, j] = agree[j, i] = same
        if self.use_embeddings:
            from .embeddings import embed

            vectors = embed(claims)
            agree |= (vectors @ vectors.T) >= self.match_cosine
        return agree
