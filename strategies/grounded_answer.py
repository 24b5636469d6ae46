"""`grounded_answer` QA filter: the final answer of a pair, abstractive where it verifies, else a span of the target.

A strong teacher's free answers are better training data than spans, so they are used wherever they verify; a
weak teacher's mostly do not, and then the answer degrades to a span of the document, which cannot be invented.
The first step that succeeds gives the answer, and its name is the record's `meta.answer_source`:

1. `abstractive`: the answerer's answer, when the inner consistency filter (agreement of the k samples) and the
   inner verifier (no invented specifics, claim in the target, support) both keep it;
2. `extractive-snapped`: the samples' claims (their words beyond the question) snapped to the best-matching run
   of the target's words (`answer_spans.snap`); kept when the best match reaches `min_snap` and, with k >= 2
   samples, at least `min_agreement` of the samples snap onto overlapping spans (consistency of snapped spans);
3. `extractive-scored` (backends that can score): the span among the target's candidate spans of the kind the
   question asks for (a name for "who", a number for "how many": `answer_aware_writer.answer_types`) that the
   teacher scores highest as the answer to the question, with the target sentence in context;
4. `extractive-planned`: the span the question was written for (answer-aware and template questions);
5. `target-sentence`: the whole target sentence.
A template question skips 1 to 3: it is answered by its planned span by construction.

Then, for a span answer to a model-written question on a backend that can score, the likelihood check: the span
must be at least `min_pmi` nats more likely as the answer with the target in context than without it (the
pointwise information the document adds; an answer the teacher would give anyway is not learned from the
document). A pair that fails it is rejected, with both log-probabilities in the reason.

The pair's decision records the path taken, why earlier steps failed, and the scores; the inner filters'
decisions ride along in `meta.grounded_answer`. LM calls: the inner verifier's (none with its round trip off),
one scoring batch for step 3 (reused from the question writer's round trip when it ranked the same spans), and
two scoring requests for the likelihood check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from robustqa.components import Candidate, QAFilter
from robustqa.errors import ConfigError
from robustqa.lm.base import LM, ScoreRequest, require_scoring
from robustqa.types import AnswerSpan, Decision, Document

from .answer_aware_writer import SCORE_PROMPT, answer_messages, answer_types, rank_options
from .answer_spans import candidate_spans, overlap, snap
from .consistency import Consistency
from .question_checks import contains_answer
from .text_match import claim_text
from .verifier import Verifier

SOURCES = ("abstractive", "extractive-snapped", "extractive-scored", "extractive-planned", "target-sentence")


class GroundedAnswer(QAFilter):
    """Parameters:
    abstractive: accept the answerer's own answer when it verifies (step 1).
    consistency, verifier: the inner filters of step 1 (components, or mappings of their parameters; None for
        their defaults, the verifier without its round trip).
    snap: try step 2; min_snap: token F1 a snapped span needs; min_agreement: share of samples that must snap
        onto overlapping spans (with 2 or more samples).
    scoring: "auto" (steps 3 and the likelihood check when the backend can score), "require" (fail at start-up
        without scoring) or "off".
    min_pmi: nats the target must add to the span's log-probability (the likelihood check); None switches the
        check off.
    max_candidates: candidate spans per target in step 3.
    score_prompt: system prompt of the scoring requests; must contain `{evidence}`.
    """

    name = "grounded_answer"

    def __init__(
        self,
        abstractive: bool = True,
        consistency: Consistency | Mapping | None = None,
        verifier: Verifier | Mapping | None = None,
        snap: bool = True,
        min_snap: float = 0.6,
        min_agreement: float = 0.5,
        scoring: str = "auto",
        min_pmi: float | None = 1.0,
        max_candidates: int = 6,
        score_prompt: str = SCORE_PROMPT,
    ) -> None:
        self.abstractive = abstractive
        self.consistency = consistency
        self.verifier = verifier
        self.snap = snap
        self.min_snap = min_snap
        self.min_agreement = min_agreement
        self.scoring = scoring
        self.min_pmi = min_pmi
        self.max_candidates = max_candidates
        self.score_prompt = score_prompt

    def validate(self) -> None:
        if self.scoring not in ("auto", "require", "off"):
            raise ConfigError(f"grounded_answer scoring must be auto, require or off, got {self.scoring!r}")

    def check_backend(self, lm: LM) -> None:
        if self.scoring == "require":
            require_scoring(lm, "the grounded_answer filter (scoring: require)")

    def judge(self, candidates: Sequence[Candidate], docs: Mapping[str, Document], lm: LM) -> list[Decision]:
        self.check_backend(lm)
        scoring = self.scoring != "off" and lm.can_score
        notes: list[list[str]] = [[] for _ in candidates]
        resolved = [False] * len(candidates)
        # 1. Abstractive answers that verify.
        # A template question is answered by its planned span by construction: it skips steps 1 to 3.
        free = [k for k, c in enumerate(candidates) if c.question_source != "template"]
        if self.abstractive and free:
            for k, ok in zip(free, self._verified([candidates[k] for k in free], docs, lm), strict=True):
                if ok:
                    candidates[k].answer_source = "abstractive"
                    resolved[k] = True
                else:
                    notes[k].append(f"abstractive rejected ({candidates[k].meta['grounded_answer']['failed']})")
        for k, cand in enumerate(candidates):
            if resolved[k] or cand.item.target is None:
                continue
            # 2. The samples snapped onto the target.
            if self.snap and cand.question_source != "template":
                span, why = self._snapped(cand)
                if span is not None:
                    _use(cand, span, "extractive-snapped")
                    resolved[k] = True
                    notes[k].append(why)
                    continue
                notes[k].append(why)
        # 3. The teacher's choice among the candidate spans.
        if scoring:
            todo = [
                k
                for k, c in enumerate(candidates)
                if not resolved[k] and c.item.target is not None and c.question_source != "template"
            ]
            for k, (span, why) in zip(todo, self._scored([candidates[k] for k in todo], lm), strict=True):
                notes[k].append(why)
                if span is not None:
                    _use(candidates[k], span, "extractive-scored")
                    resolved[k] = True
        # 4./5. The planned span, or the whole sentence.
        for k, cand in enumerate(candidates):
            if resolved[k]:
                continue
            if cand.planned is not None:
                _use(cand, cand.planned, "extractive-planned")
            elif cand.item.target is not None:
                _use(cand, candidate_spans(cand.item.target, 1)[-1], "target-sentence")
            else:
                notes[k].append("no target: nothing to extract")
                continue
            resolved[k] = True
        # The likelihood check of span answers.
        pmi: list[tuple[float, float] | None] = [None] * len(candidates)
        if scoring and self.min_pmi is not None:
            # A template question holds its whole sentence, so the target adds nothing it does not already say:
            # the check would measure the template, not the answer.
            checked = [
                k
                for k, c in enumerate(candidates)
                if resolved[k] and c.answer_span is not None and c.question_source != "template"
            ]
            for k, lps in zip(checked, self._pmi([candidates[k] for k in checked], lm), strict=True):
                pmi[k] = lps
        return [self._decision(c, ok, note, lp) for c, ok, note, lp in zip(candidates, resolved, notes, pmi)]

    # -- steps -----------------------------------------------------------------------------------------------
    def _verified(self, candidates: Sequence[Candidate], docs: Mapping[str, Document], lm: LM) -> list[bool]:
        """Step 1 on copies: the inner filters may replace the answer, which only sticks when both keep it."""
        trial = [replace(c, decisions=[], meta=dict(c.meta)) for c in candidates]
        alive = list(range(len(trial)))
        results: list[list[Decision]] = [[] for _ in trial]
        inner = [_build(Consistency, self.consistency, {}), _build(Verifier, self.verifier, {"round_trip": False})]
        for qa_filter in inner:
            batch = [trial[k] for k in alive]
            if not batch:
                break
            for k, decision in zip(alive, qa_filter.judge(batch, docs, lm), strict=True):
                results[k].append(decision)
            alive = [k for k in alive if results[k][-1].kept]
        ok = []
        for cand, copy, decisions in zip(candidates, trial, results, strict=True):
            passed = bool(decisions) and all(d.kept for d in decisions) and len(decisions) == len(inner)
            info = {"inner": [d.to_dict() for d in decisions]}
            if passed:
                cand.answer = copy.answer
                cand.meta.update({k: v for k, v in copy.meta.items() if k not in cand.meta or k == "verifier"})
            else:
                failed = next((d for d in decisions if not d.kept), None)
                info["failed"] = f"{failed.filter}: {failed.reason}" if failed else "no answer"
                info["abstractive_answer"] = cand.answer
            cand.meta["grounded_answer"] = info
            ok.append(passed)
        return ok

    def _snapped(self, cand: Candidate) -> tuple[AnswerSpan | None, str]:
        assert cand.item.target is not None
        samples = [s for s in cand.samples if s.strip()] or [cand.answer]
        snaps = [snap(claim_text(s, cand.question), cand.item.target) for s in samples]
        usable = [
            (span, f1)
            for span, f1 in snaps
            if span is not None and f1 >= self.min_snap and not contains_answer(cand.question, span.text)
        ]
        if not usable:
            best = max((f1 for _, f1 in snaps), default=0.0)
            return None, f"no snapped span (best match {best:.2f} < {self.min_snap}, or one the question holds)"
        # Consistency of snapped spans: the span most samples snap onto (overlapping spans agree).
        support = [sum(1 for other, _ in usable if overlap(span, other) >= 0.5) for span, _ in usable]
        best = max(range(len(usable)), key=lambda k: (support[k], usable[k][1]))
        span, f1 = usable[best]
        agreement = support[best] / len(samples)
        if len(samples) >= 2 and agreement < self.min_agreement:
            return None, f"snapped spans disagree ({support[best]} of {len(samples)} < {self.min_agreement})"
        cand.meta["snap"] = {"f1": round(f1, 4), "agreement": round(agreement, 4)}
        return replace(
            span, kind="snapped"
        ), f"snapped [{span.start},{span.end}) match {f1:.2f}, agreement {agreement:.2f}"

    def _scored(self, candidates: Sequence[Candidate], lm: LM) -> list[tuple[AnswerSpan | None, str]]:
        out: list[tuple[AnswerSpan | None, str] | None] = [None] * len(candidates)
        todo = []
        for k, cand in enumerate(candidates):
            ranking = _writer_ranking(cand, self.score_prompt)
            if ranking and cand.planned is not None:
                # The answer-aware writer's round trip already ranked these spans for this question.
                cand.meta["scored_spans"] = ranking
                out[k] = (cand.planned, f"the teacher ranks [{cand.planned.start},{cand.planned.end}) first "
                                        "(the question writer's round trip)")  # fmt: skip
            else:
                todo.append(k)
        for k, result in zip(todo, self._rank([candidates[k] for k in todo], lm), strict=True):
            out[k] = result
        return [r for r in out if r is not None]

    def _rank(self, candidates: Sequence[Candidate], lm: LM) -> list[tuple[AnswerSpan | None, str]]:
        if not candidates:
            return []
        requests, options_of = [], []
        for cand in candidates:
            assert cand.item.target is not None
            options = rank_options(cand.planned, candidate_spans(cand.item.target, self.max_candidates), cand.question)
            options = [a for a in options if a.kind in answer_types(cand.question)]
            options_of.append(options)
            messages = answer_messages(self.score_prompt, cand.item.target.text, cand.question)
            requests.extend(ScoreRequest.of(messages, a.text) for a in options)
        scores = iter(lm.score(requests))
        out = []
        for cand, options in zip(candidates, options_of, strict=True):
            ranked = sorted(((next(scores).logprob, a) for a in options), key=lambda x: -x[0])
            if not ranked:
                out.append((None, "no candidate span outside the question"))
                continue
            lp, top = ranked[0]
            cand.meta["scored_spans"] = [{**a.to_dict(), "logprob": round(x, 3)} for x, a in ranked]
            out.append((top, f"the teacher scores [{top.start},{top.end}) highest (log-prob {lp:.2f})"))
        return out

    def _pmi(self, candidates: Sequence[Candidate], lm: LM) -> list[tuple[float, float]]:
        """(log-prob with the target, without it) of each span answer; a log-prob the round trip already
        computed for the same prompt and span is reused."""
        requests, known = [], []
        for cand in candidates:
            assert cand.item.target is not None and cand.answer_span is not None
            without = [{"role": "user", "content": cand.question}]
            requests.append(ScoreRequest.of(without, cand.answer))
            seen = next((r["logprob"] for r in cand.meta.get("scored_spans", []) if _same(r, cand.answer_span)), None)
            known.append(seen)
            if seen is None:
                with_target = answer_messages(self.score_prompt, cand.item.target.text, cand.question)
                requests.append(ScoreRequest.of(with_target, cand.answer))
        scores = iter(lm.score(requests))
        out = []
        for seen in known:
            without_lp = next(scores).logprob
            out.append((next(scores).logprob if seen is None else float(seen), without_lp))
        return out

    def _decision(self, cand: Candidate, resolved: bool, notes: list[str], lps: tuple[float, float] | None):
        if not resolved:
            return Decision(self.name, 0.0, False, "; ".join(notes) or "no answer")
        path = f"answer from {cand.answer_source}"
        if notes:
            path += " (" + "; ".join(notes) + ")"
        cand.meta["answer_source"] = cand.answer_source
        if lps is None:
            if self.min_pmi is None:
                return Decision(self.name, 1.0, True, path)
            if cand.question_source == "template":
                why = "; likelihood check not applicable (a template question holds its sentence)"
            else:
                why = "; likelihood check not measured"
            return Decision(self.name, 1.0, True, path + why)
        with_target, without = lps
        gain = with_target - without
        cand.meta["likelihood"] = {"with_target": round(with_target, 3), "without": round(without, 3)}
        kept = gain >= self.min_pmi
        check = f"likelihood: log-prob {with_target:.2f} with the target, {without:.2f} without, gain {gain:.2f} "
        check += f"{'>=' if kept else '<'} {self.min_pmi}"
        return Decision(self.name, round(gain, 4), kept, f"{path}; {check}")


def _writer_ranking(cand: Candidate, prompt: str) -> list[dict] | None:
    """The answer-aware writer's round-trip ranking for the accepted question, when it scored with the same
    prompt (None without one)."""
    tries = cand.meta.get("question_attempts") or []
    if cand.question_source != "model":
        return None
    accepted = [t for t in tries if t.get("question") == cand.question and t.get("failure") is None]
    if not accepted or accepted[-1].get("round_trip_prompt") != prompt:
        return None
    return accepted[-1].get("round_trip")


def _same(row: Mapping, span: AnswerSpan) -> bool:
    return row.get("start") == span.start and row.get("end") == span.end and row.get("text") == span.text


def _build(cls, spec, defaults: dict):
    """An inner filter from a component, a mapping of its parameters (YAML), or None (its defaults)."""
    if spec is None:
        return cls(**defaults)
    if isinstance(spec, Mapping):
        return cls(**{**defaults, **spec})
    return spec


def _use(cand: Candidate, span: AnswerSpan, source: str) -> None:
    cand.answer = span.text
    cand.answer_span = span
    cand.answer_source = source
