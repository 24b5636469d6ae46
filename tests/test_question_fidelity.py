"""The checks that a model question is about the span it was written for (strategies/question_fidelity.py).

The sentences and questions are the 135M teacher's own failures on XQuAD (benchmarks/README.md, issue 13)."""

from robustqa.strategies.answer_aware_writer import AnswerAwareQuestionWriter
from robustqa.strategies.question_fidelity import (
    blank_context,
    closeness,
    fidelity_failure,
    novel_words,
    repeated_phrase,
)

from robustqa.lm.fake import FakeLM
from robustqa.types import AnswerSpan, Document, Span, WorkItem

LUTHER = "In November, Luther wrote The Judgement of Martin Luther on Monastic Vows."
BRONCOS = (
    "The Broncos defeated the Pittsburgh Steelers in the divisional round, 23–16, by scoring 11 points in the final "
    "three minutes of the game."
)


def _span(sentence: str, answer: str, offset: int = 100) -> tuple[Span, AnswerSpan]:
    start = sentence.index(answer)
    target = Span("d", offset, offset + len(sentence), sentence)
    return target, AnswerSpan(offset + start, offset + start + len(answer), answer, "name")


def test_a_question_that_brings_its_own_nouns_is_about_another_world():
    assert novel_words("What was the name of the monastery where Luther wrote The Judgement?", LUTHER) == ["monasteri"]
    # Generic question words and other forms of the sentence's words are not new ("scored" for "scoring").
    assert novel_words("What was the number of points scored by the Broncos in the final minutes?", BRONCOS) == []
    assert novel_words("In what year was it?", "It was 1859.") == []


def test_a_question_about_the_blank_keeps_a_word_next_to_it():
    target, eleven = _span(BRONCOS, "11")
    assert blank_context("How many points did the Broncos score in the final three minutes?", target, eleven) is None
    why = blank_context("Who did the Broncos defeat in the divisional round?", target, eleven)
    assert why is not None and "'score'" in why and "'point'" in why
    # Either side is enough: "In what year ...?" rightly drops "by Queen Victoria" before the blank.
    sentence = "The Tamar bridge was opened by Queen Victoria in 1859 after seven years of work."
    target, year = _span(sentence, "1859")
    assert blank_context("In what year was the Tamar bridge opened after seven years?", target, year) is None
    # A blank with no content word near it asks nothing of the question.
    target, whole = _span("It was 1859.", "1859")
    assert blank_context("When was it?", target, whole) is None


def test_a_degenerate_question_says_a_phrase_twice():
    question = "What was the known trade between the known trade between Amalfi and Bari?"
    assert repeated_phrase(question) == "known trade between"
    assert repeated_phrase("Who led the team in sacks with 11?") is None


def test_fidelity_failure_names_the_first_check_that_fails_and_closeness_ranks_questions():
    target, november = _span(LUTHER, "November")
    assert fidelity_failure("When did Luther write The Judgement of Martin Luther?", target, november) is None
    why = fidelity_failure("What was the name of the monastery where Luther wrote it?", target, november)
    assert why is not None and why.startswith("asks about words the sentence lacks")
    assert closeness("When did Luther write The Judgement?", target, november) > closeness(
        "When was The Judgement on Monastic Vows?", target, november
    )
    assert closeness("anything", None, november) == 0


def test_the_writer_with_fidelity_and_samples_checks_every_draw_and_keeps_the_one_about_its_blank():
    sentence = "The Tamar bridge was opened by Queen Victoria in 1859 after seven years of work."
    doc = Document("d", f"The river is wide here. {sentence}")
    target = Span("d", doc.text.index(sentence), len(doc.text), sentence)
    writer = AnswerAwareQuestionWriter(attempts=1, round_trip="off", fidelity=True, samples=3)
    item = next(
        WorkItem("i", "d", 0, 7, (0, len(doc.text)), target, meta={"round": r})
        for r in range(20)
        if writer._plan(WorkItem("i", "d", 0, 7, (0, len(doc.text)), target, meta={"round": r}))[0].text == "1859"
    )
    # The greedy draw invents a monastery; of the two samples, the first drops every word next to the blank.
    lm = FakeLM(
        replies=[
            "In what year did the monastery open the Tamar bridge?",
            "Who opened the Tamar bridge?",
            "In what year was the Tamar bridge opened after seven years?",
        ]
    )
    [written] = writer.write_questions([item], [doc.text], {"d": doc}, lm)
    assert (written.text, written.source) == ("In what year was the Tamar bridge opened after seven years?", "model")
    assert [c.params.n for c in lm.calls] == [1, 2]  # the greedy draw, then the samples from one request
    failures = [t["failure"] for t in written.meta["question_attempts"]]
    assert failures[0].startswith("asks about words the sentence lacks: 'monasteri'")
    assert failures[1].startswith("loses the words next to its answer") and failures[2] is None
    # Off (the default), the greedy question is used as it is.
    [plain] = AnswerAwareQuestionWriter(attempts=1, round_trip="off").write_questions(
        [item], [doc.text], {"d": doc}, FakeLM(replies=["In what year did the monastery open the Tamar bridge?"])
    )
    assert plain.source == "model" and "monastery" in plain.text
