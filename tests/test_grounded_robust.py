"""Robust QA from any teacher: answer spans, snapping, question checks, templates and the fallback decisions.

Everything here runs on the FakeLM; the fake's `overlap_scorer` makes a continuation likelier the more of its words
the prompt holds, which is enough to exercise every scoring path.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from robustqa.strategies.answer_aware_writer import CONTENT_FREE_QUESTION, KIND_WORDS, AnswerAwareQuestionWriter
from robustqa.strategies.answer_spans import candidate_spans, snap
from robustqa.strategies.grounded_answer import GroundedAnswer
from robustqa.strategies.question_checks import QuestionChecks, contains_answer
from robustqa.strategies.question_templates import BLANK, blanked_sentence, can_template, template_question
from robustqa.strategies.robust import make_robust
from robustqa.strategies.text_match import normalize

from robustqa.components import Candidate
from robustqa.errors import ConfigError
from robustqa.lm.base import ScoringUnsupported
from robustqa.lm.fake import FakeLM, overlap_scorer
from robustqa.response import answer_with_evidence
from robustqa.runner import generate_records
from robustqa.types import AnswerSpan, Document, QARecord, Span, WorkItem

TARGET = "The Tamar bridge was opened by Queen Victoria in 1859 after seven years of work."
DOC = Document("d", f"The river is wide here. {TARGET} Trains still cross it every day.")
START = DOC.text.index(TARGET)
SPAN = Span("d", START, START + len(TARGET), TARGET)

# -- answer spans ------------------------------------------------------------------------------------------------


def test_candidates_are_exact_document_spans_specific_first_and_the_sentence_last():
    cands = candidate_spans(SPAN)
    assert [c.kind for c in cands][:2] == ["number", "name"]
    assert cands[0].text == "1859"
    assert any(c.text == "Queen Victoria" for c in cands)
    assert cands[-1].kind == "sentence" and cands[-1].text == TARGET.rstrip(".")
    for c in cands:
        assert DOC.text[c.start : c.end] == c.text


_words = st.lists(
    # Articles normalise away (SQuAD normalisation), so a run of them has nothing to match.
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzÀéß0123456789", min_size=1, max_size=8).filter(lambda w: normalize(w)),
    min_size=1,
    max_size=25,
)
_gaps = st.sampled_from([" ", "  ", ", ", " (", ") ", " - ", "; ", "\n"])


@settings(max_examples=150, deadline=None)
@given(words=_words, gaps=st.lists(_gaps, min_size=25, max_size=25), data=st.data(), offset=st.integers(0, 50))
def test_snapping_the_exact_text_of_a_word_run_returns_its_exact_offsets(words, gaps, data, offset):
    text = "".join(w + g for w, g in zip(words, gaps)).strip()
    target = Span("d", offset, offset + len(text), text)
    i = data.draw(st.integers(0, len(words) - 1))
    j = data.draw(st.integers(i, len(words) - 1))
    starts, pos = [], 0
    for w in words:
        pos = text.index(w, pos)
        starts.append(pos)
        pos += len(w)
    piece = text[starts[i] : starts[j] + len(words[j])]
    span, f1 = snap(piece, target)
    assert span is not None and f1 == pytest.approx(1.0)
    # Offsets are exact for whatever run wins (an equal run elsewhere may tie), and its words are the piece's.
    assert text[span.start - offset : span.end - offset] == span.text
    assert sorted(normalize(span.text).split()) == sorted(normalize(piece).split())  # F1 ties a permutation


def test_snapping_finds_the_best_run_and_says_how_well_it_matched():
    span, f1 = snap("it was Queen Victoria", SPAN)
    assert span is not None and span.text == "Queen Victoria" and DOC.text[span.start : span.end] == "Queen Victoria"
    # "it was queen victoria" against "queen victoria": 2 common of 4 and 2 words; "was opened by Queen Victoria"
    # ties (3 of 4 and 5), and the shorter run wins.
    assert f1 == pytest.approx(2 * 2 / (4 + 2))
    assert snap("nothing similar whatsoever", SPAN) == (None, 0.0)


# -- question checks and templates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "question, answer, reason",
    [
        ("When was the Tamar bridge opened?", "1859", None),
        ("The bridge was opened.", "1859", "not a question"),
        ("Was it?", "1859", "not a question"),
        ("What is the capital of France today?", "1859", "not about the target"),
        ("Was the Tamar bridge opened in 1859?", "1859", "contains its own answer"),
        ("When did Prince Albert open the Tamar bridge?", "1859", "invented specifics"),
    ],
)
def test_question_checks(question, answer, reason):
    failure = QuestionChecks().failure(question, answer, TARGET, DOC.text)
    assert (failure is None) if reason is None else failure.startswith(reason)


def test_near_duplicates_of_earlier_questions_fail():
    checks = QuestionChecks()
    first = "When was the Tamar bridge opened?"
    assert checks.failure("When was the Tamar bridge opened?", "1859", TARGET, DOC.text, [first]).startswith("near")
    assert checks.failure("Who opened the Tamar bridge?", "Queen Victoria", TARGET, DOC.text, [first]) is None
    assert contains_answer("Who opened it, Queen Victoria?", "Queen Victoria")
    assert not contains_answer("Who opened it?", "Queen Victoria")


def test_template_questions_are_grammatical_and_do_not_contain_their_answer():
    year = next(c for c in candidate_spans(SPAN) if c.text == "1859")
    cloze = template_question(SPAN, year)
    assert (
        cloze == f'Which words fill the blank in "The Tamar bridge was opened by Queen Victoria in {BLANK} after '
        'seven years of work."?'
    )
    subject = Span("d", 0, 38, "Peyton Manning was named the MVP.")
    name = AnswerSpan(0, 14, "Peyton Manning", "name")
    assert template_question(subject, name) == "Who was named the MVP?"
    for q, a in [(cloze, "1859"), ("Who was named the MVP?", "Peyton Manning")]:
        assert not contains_answer(q, a)


# -- the answer-aware writer ---------------------------------------------------------------------------------------


def _item(seed: int = 7, round_no: int = 0) -> WorkItem:
    return WorkItem("i", "d", 0, seed, (0, len(DOC.text)), SPAN, meta={"round": round_no})


def _planned(writer: AnswerAwareQuestionWriter, text: str) -> WorkItem:
    """An item whose planned answer is `text` (later rounds on one target plan other spans)."""
    return next(_item(7, r) for r in range(20) if writer._plan(_item(7, r))[0].text == text)


def test_answer_aware_writer_asks_for_the_planned_span_and_keeps_a_good_question():
    planned = AnswerAwareQuestionWriter()._plan(_item())[0]
    question = {
        "1859": "In what year was the Tamar bridge opened?",
        "Queen Victoria": "Who opened the Tamar bridge?",
    }.get(planned.text, f"What about the Tamar bridge and {planned.text}?")
    lm = FakeLM(default=question)
    [written] = AnswerAwareQuestionWriter(round_trip="off").write_questions([_item()], [DOC.text], {"d": DOC}, lm)
    # The default (cloze) prompt blanks the planned answer out of the sentence and names its kind.
    prompt = lm.calls[0].messages[-1][1]
    assert f"Sentence: {blanked_sentence(SPAN, planned)}" in prompt and planned.text not in prompt
    assert f"The blank is {KIND_WORDS[planned.kind]}." in prompt
    assert written.planned == planned
    shown = FakeLM(default=question)
    AnswerAwareQuestionWriter(round_trip="off", prompt_style="answer").write_questions(
        [_item()], [DOC.text], {"d": DOC}, shown
    )
    assert f"Answer: {planned.text}" in shown.calls[0].messages[-1][1] and TARGET in shown.calls[0].messages[-1][1]
    if planned.text in ("1859", "Queen Victoria"):
        assert (written.text, written.source) == (question, "model")
        assert written.meta["round_trip"] == "not measured"


def test_no_template_blanks_a_whole_heading_the_item_gets_no_question_and_says_why():
    heading = "How we picked and tested"  # a heading-like target: its only candidate is the whole sentence
    doc = Document("h", f"{heading}\n\nWe tried nine backpacks on three trips in the Alps last summer.")
    span = Span("h", 0, len(heading), heading)
    whole = AnswerSpan(0, len(heading), heading, "sentence")
    assert not can_template(span, whole) and can_template(SPAN, AnswerSpan(START, START + 10, TARGET[:10], "phrase"))
    item = WorkItem("i", "h", 0, 7, (0, len(doc.text)), span, meta={"round": 0})
    writer = AnswerAwareQuestionWriter(attempts=1, round_trip="off")
    [written] = writer.write_questions([item], [doc.text], {"h": doc}, FakeLM(default="no"))
    if all(not can_template(span, a) for a in candidate_spans(span, writer.max_candidates)):
        assert written.text == "" and written.source == "model" and "too few words" in written.meta["template"]
    else:  # a smaller candidate exists: the template asks about it, never about the whole heading
        assert BLANK in written.text and written.planned.text != heading


def test_zero_attempts_writes_template_questions_without_asking_the_teacher():
    lm = FakeLM(default="Who opened the Tamar bridge?")
    writer = AnswerAwareQuestionWriter(attempts=0)
    rounds = [_item(7, r) for r in range(3)]
    written = writer.write_questions(rounds, [DOC.text] * 3, {"d": DOC}, lm)
    assert [w.source for w in written] == ["template"] * 3 and not lm.calls and not lm.score_calls
    assert all(w.meta["question_attempts"] == [] for w in written)
    assert len({w.planned.text for w in written}) == 3  # later rounds on a target plan other spans
    with pytest.raises(ConfigError, match="attempts 0 needs templates"):
        AnswerAwareQuestionWriter(attempts=0, templates=False).validate()
    with pytest.raises(ConfigError, match=">= 0"):
        AnswerAwareQuestionWriter(attempts=-1).validate()


def test_answer_aware_writer_retries_then_falls_back_to_a_template_and_records_why():
    lm = FakeLM(replies=["Sure! Here is a question.", "What is the capital of France today?"])
    writer = AnswerAwareQuestionWriter(attempts=2, round_trip="off")
    [written] = writer.write_questions([_item()], [DOC.text], {"d": DOC}, lm)
    assert written.source == "template"
    assert written.text == template_question(SPAN, written.planned)
    tries = written.meta["question_attempts"]
    assert [t["failure"].split(":")[0] for t in tries] == ["not a question", "not about the target"]
    # The retry asked, greedily, about the target's next answer span; the template asks about the first.
    assert tries[0]["planned"] != tries[1]["planned"] and written.planned.to_dict() == tries[0]["planned"]
    assert lm.calls[0].params.temperature == 0.0 == lm.calls[1].params.temperature
    # Without replanning the retry samples the same prompt with a derived seed.
    same = FakeLM(replies=["Sure! Here is a question.", "What is the capital of France today?"])
    AnswerAwareQuestionWriter(attempts=2, round_trip="off", replan=False).write_questions(
        [_item()], [DOC.text], {"d": DOC}, same
    )
    assert same.calls[0].messages == same.calls[1].messages
    assert same.calls[0].params.temperature == 0.0 and same.calls[1].params.temperature > 0
    assert same.calls[0].params.seed != same.calls[1].params.seed
    no_templates = AnswerAwareQuestionWriter(attempts=1, templates=False, round_trip="off")
    [empty] = no_templates.write_questions([_item()], [DOC.text], {"d": DOC}, FakeLM(default="no"))
    assert empty.text == "" and empty.meta["question_attempts"]


def test_round_trip_retargets_a_question_that_clearly_asks_for_another_span_and_rejects_an_unclear_one():
    # "Who opened ...?" points at Queen Victoria, not at the planned 1859. (The fidelity checks are off: this is
    # about the round trip.)
    writer = AnswerAwareQuestionWriter(attempts=1, max_candidates=6, retarget_margin=2.0, fidelity=False)
    item = _planned(writer, "1859")
    question = "Who opened the Tamar bridge in the year of its opening?"
    clear = FakeLM(default=question, scorer=_prefers("Victoria"))
    [written] = writer.write_questions([item], [DOC.text], {"d": DOC}, clear)
    assert (written.source, written.planned.text) == ("model", "Queen Victoria")
    tried = written.meta["question_attempts"][0]
    assert tried["retargeted"]["text"] == "Queen Victoria" and tried["round_trip"][0]["text"] == "Queen Victoria"

    # A teacher that barely prefers another name (0.5 nats) over the planned one leaves the question without an
    # answer: the template stands in.
    item = _planned(writer, "Queen Victoria")

    def barely(req):
        n = len(req.continuation.split()) + 1
        return [-1.0 if "Tamar" in req.continuation else -1.5] + [0.0] * (n - 1)

    flat = FakeLM(default="Who opened the old bridge here?", scorer=barely)
    # (and by default no question is retargeted, however clear the preference)
    year = _planned(writer, "1859")
    [default] = AnswerAwareQuestionWriter(attempts=1).write_questions([year], [DOC.text], {"d": DOC}, clear)
    assert default.source == "template"
    assert default.meta["question_attempts"][0]["failure"].startswith("round trip: the question")
    [written] = writer.write_questions([item], [DOC.text], {"d": DOC}, flat)
    assert written.source == "template" and written.planned.text == "Queen Victoria"
    assert written.meta["question_attempts"][0]["failure"].startswith("round trip: the question ranks the planned")
    # A question whose kind no open span has ("how many", with no number left) gets no answer either.
    none = FakeLM(default="How many people opened the Tamar bridge in 1859?", scorer=overlap_scorer)
    [written] = writer.write_questions([item], [DOC.text], {"d": DOC}, none)
    assert written.meta["question_attempts"][0]["failure"].startswith("round trip: no open span of the kind")


def test_round_trip_rejects_a_near_tie_between_the_planned_span_and_another_of_its_kind():
    # "Who ...?" leaves two names open; the teacher prefers the planned one, by 0.5 nats (a tie) or by 2.
    target = "Queen Victoria opened the Tamar bridge in 1859, watched by Prince Albert."
    doc = Document("t", target)
    writer = AnswerAwareQuestionWriter(attempts=1, replan=False)

    def item(r):
        span = Span("t", 0, len(target), target)
        return WorkItem(
            id=f"t{r}", doc_id="t", index=0, seed=3, context=(0, len(target)), target=span, meta={"round": r}
        )

    victoria = next(item(r) for r in range(20) if writer._plan(item(r))[0].text == "Queen Victoria")
    assert any(c.text == "Prince Albert" and c.kind == "name" for c in writer._plan(victoria)[1])

    def lead_of(lead):
        def scorer(req):
            n = len(req.continuation.split()) + (1 if req.end_turn else 0)
            first = {"Queen Victoria": -1.0, "Prince Albert": -1.0 - lead}.get(req.continuation, -9.0)
            return [first] + [0.0] * (n - 1)

        return scorer

    question = "Who opened the Tamar bridge in 1859?"
    [tie] = writer.write_questions([victoria], [target], {"t": doc}, FakeLM(default=question, scorer=lead_of(0.5)))
    assert tie.source == "template"
    assert (
        tie.meta["question_attempts"][0]["failure"]
        == "round trip: the planned answer leads 'Prince Albert' by 0.50 < 1.0"
    )
    [clear] = writer.write_questions([victoria], [target], {"t": doc}, FakeLM(default=question, scorer=lead_of(2.0)))
    assert (clear.source, clear.text, clear.planned.text) == ("model", question, "Queen Victoria")
    lenient = AnswerAwareQuestionWriter(attempts=1, replan=False, min_lead=0.0)
    [kept] = lenient.write_questions([victoria], [target], {"t": doc}, FakeLM(default=question, scorer=lead_of(0.5)))
    assert kept.source == "model"


def test_calibrated_round_trip_needs_the_question_not_the_scorer_prior_to_pick_the_planned_span():
    # Under the question the teacher prefers Queen Victoria by 2 nats; whether that comes from the question is
    # what the content-free question ("N/A") shows.
    target = "Queen Victoria opened the Tamar bridge in 1859, watched by Prince Albert."
    doc = Document("t", target)
    plain = AnswerAwareQuestionWriter(attempts=1, replan=False)
    calibrated = AnswerAwareQuestionWriter(attempts=1, replan=False, calibrate=True)
    span = Span("t", 0, len(target), target)
    items = [WorkItem(id=f"t{r}", doc_id="t", index=0, seed=3, context=(0, len(target)), target=span,
                      meta={"round": r}) for r in range(20)]  # fmt: skip
    victoria = next(i for i in items if plain._plan(i)[0].text == "Queen Victoria")

    def scorer_with_prior(prior):
        def scorer(req):
            n = len(req.continuation.split()) + (1 if req.end_turn else 0)
            free = any(content == CONTENT_FREE_QUESTION for _, content in req.messages)
            table = prior if free else {"Queen Victoria": -1.0, "Prince Albert": -3.0}
            return [table.get(req.continuation, -9.0)] + [0.0] * (n - 1)

        return scorer

    question = "Who opened the Tamar bridge in 1859?"
    same_prior = FakeLM(default=question, scorer=scorer_with_prior({"Queen Victoria": -1.0, "Prince Albert": -3.0}))
    [raw] = plain.write_questions([victoria], [target], {"t": doc}, same_prior)
    assert raw.source == "model"  # the raw ranking passes it
    [flat] = calibrated.write_questions([victoria], [target], {"t": doc}, same_prior)
    assert flat.source == "template"
    assert flat.meta["question_attempts"][0]["failure"].startswith("round trip: the planned answer leads")

    raised = FakeLM(default=question, scorer=scorer_with_prior({"Queen Victoria": -3.0, "Prince Albert": -1.0}))
    [kept] = calibrated.write_questions([victoria], [target], {"t": doc}, raised)
    assert (kept.source, kept.planned.text) == ("model", "Queen Victoria")
    top, second = kept.meta["question_attempts"][0]["round_trip"][:2]
    # logprob stays the log-probability with the question (the grounded answer reuses it); calibrated ranks.
    assert (top["text"], top["logprob"], top["prior"], top["calibrated"]) == ("Queen Victoria", -1.0, -3.0, 2.0)
    assert (second["text"], second["calibrated"]) == ("Prince Albert", -2.0)
    free = [r for r in raised.score_calls if any(c == CONTENT_FREE_QUESTION for _, c in r.messages)]
    assert len(free) * 2 == len(raised.score_calls) == 2 * len(kept.meta["question_attempts"][0]["round_trip"])


def test_a_question_that_copies_the_blank_of_the_cloze_is_rejected():
    lm = FakeLM(default=f"Who opened the Tamar bridge in {BLANK}?")
    [written] = AnswerAwareQuestionWriter(attempts=1, round_trip="off").write_questions(
        [_item()], [DOC.text], {"d": DOC}, lm
    )
    assert written.source == "template"
    assert written.meta["question_attempts"][0]["failure"] == "copies the blank of the cloze prompt"


def test_sentence_openers_are_not_names_and_clock_times_are_whole_numbers():
    text = "Despite Manning's problems, Then Anderson scored with 3:08 left. Initially Rome was small."
    spans = {(a.text, a.kind) for a in candidate_spans(Span("d", 0, len(text), text))}
    assert ("Manning", "name") in spans and not any(k == "name" and t.startswith("Despite") for t, k in spans)
    assert ("3:08", "number") in spans and ("08", "number") not in spans


def _prefers(word: str):
    def scorer(req):
        # Likely only when the prompt shows the word too: the target in context makes the span likelier.
        n = len(req.continuation.split()) + (1 if req.end_turn else 0)
        shown = any(word in content for _, content in req.messages)
        return [-0.1 if word in req.continuation and shown else -5.0] * n

    return scorer


def test_round_trip_require_fails_at_start_up_without_scoring(tmp_path):
    strategy = make_robust(scoring="require", use_embeddings=False)
    with pytest.raises(ScoringUnsupported, match="needs scoring, but the fake backend"):
        generate_records([DOC], strategy, FakeLM(), 2, 0, tmp_path / "out.jsonl", progress=False)
    assert not (tmp_path / "out.jsonl").exists()
    with pytest.raises(ConfigError):
        make_robust(answer_mode="guess")


# -- the grounded answer and its fallbacks -----------------------------------------------------------------------


def _cand(answer: str, samples=None, question="In what year was the Tamar bridge opened?", source="model"):
    planned = next(c for c in candidate_spans(SPAN) if c.text == "1859")
    return Candidate(_item(), DOC.text, question, samples or [answer], answer, question_source=source, planned=planned)


def _grounded(**kw) -> GroundedAnswer:
    kw.setdefault("consistency", {"use_embeddings": False})
    kw.setdefault("verifier", {"semantic": False, "round_trip": False})
    return GroundedAnswer(**kw)


def test_a_verified_abstractive_answer_is_kept_as_it_is():
    cand = _cand("It opened in 1859.", ["It opened in 1859.", "In 1859.", "1859, after seven years."])
    [d] = _grounded(min_pmi=None).judge([cand], {"d": DOC}, FakeLM())
    assert d.kept and cand.answer_source == "abstractive" and cand.answer_span is None
    assert d.reason.startswith("answer from abstractive")


def test_an_invented_answer_falls_back_to_its_snapped_span_and_the_decision_says_so():
    samples = ["It was opened by Queen Victoria in 1862.", "Queen Victoria opened it.", "Queen Victoria, in 1850."]
    cand = _cand(samples[0], samples, question="Who opened the Tamar bridge?")
    [d] = _grounded(min_pmi=None).judge([cand], {"d": DOC}, FakeLM())
    assert d.kept and cand.answer_source == "extractive-snapped"
    assert cand.answer == "Queen Victoria" and DOC.text[cand.answer_span.start : cand.answer_span.end] == cand.answer
    assert "abstractive rejected (verifier: invented specifics" in d.reason
    assert cand.meta["grounded_answer"]["abstractive_answer"] == samples[0]


def test_disagreeing_samples_do_not_snap_and_scoring_chooses_a_span_instead():
    samples = ["Built by Napoleon.", "Cost 9 pounds.", "Opened at dawn."]
    cand = _cand(samples[0], samples)
    lm = FakeLM(scorer=_prefers("1859"))
    [d] = _grounded().judge([cand], {"d": DOC}, lm)
    assert d.kept and cand.answer_source == "extractive-scored" and cand.answer == "1859"
    assert "likelihood: log-prob" in d.reason and cand.meta["likelihood"]["with_target"] is not None
    assert cand.meta["scored_spans"][0]["text"] == "1859"


def test_without_scoring_the_planned_span_answers_and_templates_skip_snapping():
    cand = _cand("No idea, sorry.", ["No idea, sorry."])
    [d] = _grounded().judge([cand], {"d": DOC}, FakeLM())
    assert d.kept and cand.answer_source == "extractive-planned" and cand.answer == "1859"
    assert "likelihood check not measured" in d.reason
    template = _cand("Queen Victoria", ["Queen Victoria"], question=template_question(SPAN, _cand("x").planned),
                     source="template")  # fmt: skip
    [d] = _grounded(abstractive=False).judge([template], {"d": DOC}, FakeLM())
    assert template.answer_source == "extractive-planned" and template.answer == "1859"


def test_the_likelihood_check_rejects_a_span_the_target_does_not_make_likelier():
    cand = _cand("No idea.", ["No idea."])
    flat = FakeLM(scorer=lambda req: [-1.0] * (len(req.continuation.split()) + 1))
    [d] = _grounded().judge([cand], {"d": DOC}, flat)
    assert not d.kept and "gain 0.00 < 1.0" in d.reason


# -- the robust preset end to end ----------------------------------------------------------------------------------


def test_robust_keeps_grounded_pairs_from_a_teacher_that_only_writes_nonsense(tmp_path):
    docs = [DOC, Document("e", "Marie Curie won the Nobel Prize in Physics in 1903. She was born in Warsaw in 1867.")]
    lm = FakeLM(default="Bananas are purple on Tuesdays.", scorer=overlap_scorer)
    out = tmp_path / "r.jsonl"
    summary = generate_records(docs, make_robust(use_embeddings=False), lm, 4, 0, out, progress=False)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    rejected = [json.loads(line) for line in (tmp_path / "r.rejected.jsonl").read_text().splitlines()]
    assert summary.kept == len(rows) > 0 and summary.kept + len(rejected) == summary.planned
    for row in rejected:  # only a target whose one candidate answer is the whole sentence: no template can ask
        target = Span(row["doc_id"], row["target"]["start"], row["target"]["end"], row["target"]["text"])
        assert all(not can_template(target, a) for a in candidate_spans(target, 12))
        [fmt] = [d for d in row["decisions"] if d["filter"] == "format"]
        assert fmt["reason"].startswith("empty question (template none: every candidate answer leaves too few")
    text = {d.id: d.text for d in docs}
    for row in rows:
        assert row["meta"]["question_source"] == "template"
        assert row["meta"]["answer_source"].startswith("extractive")
        span = row["answer_span"]
        assert text[row["doc_id"]][span["start"] : span["end"]] == row["answer"] == span["text"]
        assert row["target"]["start"] <= span["start"] < span["end"] <= row["target"]["end"]


def test_the_likelihood_check_skips_template_questions_which_hold_their_sentence():
    planned = _cand("x").planned
    template = _cand("1859", ["1859"], question=template_question(SPAN, planned), source="template")
    flat = FakeLM(scorer=lambda req: [-1.0] * (len(req.continuation.split()) + 1))
    [d] = _grounded().judge([template], {"d": DOC}, flat)
    assert d.kept and "likelihood check not applicable" in d.reason and not flat.score_calls


def test_answer_plus_evidence_quotes_the_target_after_the_bare_answer_in_messages_only(tmp_path):
    docs = [DOC, Document("e", "Marie Curie won the Nobel Prize in Physics in 1903. She was born in Warsaw in 1867.")]
    lm = FakeLM(default="Bananas are purple on Tuesdays.", scorer=overlap_scorer)
    plain, quoted = tmp_path / "plain.jsonl", tmp_path / "quoted.jsonl"
    generate_records(docs, make_robust(use_embeddings=False), lm, 4, 0, plain, progress=False)
    robust = make_robust(use_embeddings=False, response="answer+evidence")
    generate_records(docs, robust, lm, 4, 0, quoted, progress=False)
    before = [json.loads(line) for line in plain.read_text().splitlines()]
    rows = [json.loads(line) for line in quoted.read_text().splitlines()]
    assert len(rows) == len(before) > 0
    for old, row in zip(before, rows, strict=True):
        # The pair itself is the same: only the assistant turn grows, and the record says where its quote lies.
        assert (row["question"], row["answer"], row["answer_span"]) == (
            old["question"],
            old["answer"],
            old["answer_span"],
        )
        target = row["target"]
        assert row["meta"]["evidence"] == {"start": target["start"], "end": target["end"]}
        assert row["messages"][1]["content"] == f'{row["answer"]}\n\nThe document says: "{target["text"]}"'
        assert "evidence" not in old["meta"] and old["messages"][1]["content"] == old["answer"]
        assert QARecord.from_dict(row).to_dict() == row


def test_evidence_is_not_repeated_after_an_answer_that_already_holds_it():
    assert answer_with_evidence(TARGET, f"  {TARGET}\n") is None
    assert answer_with_evidence("1859", "") is None
    assert answer_with_evidence("1859", "Opened in\n1859.") == '1859\n\nThe document says: "Opened in 1859."'
    with pytest.raises(ConfigError, match="response must be one of"):
        make_robust(response="evidence").validate()
