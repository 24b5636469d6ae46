"""Specifics (numbers and proper names) of a text, as the verifier checks them against the context."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from robustqa.specifics import missing_specifics, specifics, tokens, tokens_present
from robustqa.types import stable_hash, stripped_text_hash


def test_numbers_and_names_inside_sentences_are_specifics():
    text = "The game was played on October 23, 2023 by Josh Norman. He scored 5½ sacks."
    assert specifics(text) == ["October", "23", "2023", "Josh", "Norman", "5½"]


def test_sentence_openers_list_markers_and_emphasis_are_not_specifics():
    text = "1. **The** answer is Lady Gaga.\n2) However, I think so: Quite.\n- Maybe"
    # "The", "However", "Quite" and "Maybe" open a sentence or a list item; "1." and "2)" are list markers.
    assert specifics(text) == ["Lady", "Gaga"]


def test_possessives_claim_the_name_only():
    assert specifics("the Byzantine Empire's role and 2016's record") == ["Byzantine", "Empire", "2016"]


def test_missing_specifics_ignore_case_and_punctuation():
    context = "Rollo's contingents included Danes, Norwegians and Norse–Gaels; in 911 they settled."
    assert missing_specifics("The norse-gaels came with ROLLO in 911.", context) == []
    assert missing_specifics("They came with Rollo in 912 from Iceland.", context) == ["912", "Iceland"]
    assert missing_specifics("a tie, 20–18", "They won 23–16.") == ["20", "18"]


_TEXT = st.text(alphabet=st.sampled_from(list("ab AB1_-.\n\tİé")), max_size=80)


@settings(max_examples=200, deadline=None)
@given(text=_TEXT, wanted=st.sets(st.sampled_from(["a", "ab", "b", "1", "ba", "i", "é", "x"])), chunk=st.integers(1, 9))
def test_tokens_present_in_chunks_equals_the_whole_text_scan(text, wanted, chunk):
    # A chunked scan never cuts a token in two, so it finds what one scan of the whole text finds.
    assert tokens_present(text, set(wanted), chunk_chars=chunk) == set(wanted) & set(tokens(text))


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("ab \n\t\u00a0\u2003é")), max_size=40), chunk=st.integers(1, 7))
def test_the_chunked_text_hash_is_the_hash_of_the_stripped_text(text, chunk):
    assert stripped_text_hash(text, chunk_chars=chunk) == stable_hash(text.strip())
