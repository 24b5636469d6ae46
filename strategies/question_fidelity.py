"""Is a question written for a planned span about that span? Checks that need no model.

A 135M teacher asked to turn a cloze into a question mostly writes "What was the name of the X ...": fluent,
but often about another part of the sentence than the blank, or about something the sentence never says ("the
monastery where Luther wrote ..." for "In November, Luther wrote ..."). Its own round-trip scores cannot tell
(they ranked "November" first for that question), so three checks read the words instead:

- `novel_words`: content words of the question (stemmed) that the sentence lacks, beyond the few generic words
  a question needs ("name", "person", "year"). A question that brings its own nouns asks about its own world.
- `blank_context`: a question about the blank keeps some of the words next to it: one of the `window` nearest
  content words on either side of the planned span must be in the question (stemmed). Either side, not both: "In
  what year was the bridge opened?" rightly drops "by Queen Victoria" before the blank.
- `repeated_phrase`: a degenerate question that says one phrase twice ("the known trade between ... the known
  trade between ...").

Porter stemming (nltk's, which needs no data) lets "scored" match "scoring"; a table of common irregular verbs
lets "wrote" match "did ... write", the form a question turns the sentence's verb into.
"""

from __future__ import annotations

from functools import lru_cache

from nltk.stem import PorterStemmer

from robustqa.text_match import stop_words, tokens
from robustqa.types import AnswerSpan, Span

_STEMMER = PorterStemmer()
# Words a question may add to its sentence: what it asks for, not what it claims.
GENERIC_WORDS = (
    "name", "named", "person", "people", "man", "woman", "term", "word", "thing", "place", "event", "year",
    "date", "day", "month", "time", "number", "called", "known", "type", "kind", "title", "group", "happen",
    "happened", "percentage", "amount", "total", "refer", "refers", "mean", "means", "did", "does",
)  # fmt: skip


# base past participle: the common English irregular verbs (a question says "did ... write" for "wrote").
_IRREGULAR = """
arise arose arisen; awake awoke awoken; bear bore born; beat beat beaten; become became become; begin began begun;
bend bent bent; bet bet bet; bind bound bound; bite bit bitten; bleed bled bled; blow blew blown; break broke broken;
breed bred bred; bring brought brought; build built built; burn burnt burnt; buy bought bought; catch caught caught;
choose chose chosen; cling clung clung; come came come; cost cost cost; creep crept crept; cut cut cut;
deal dealt dealt; dig dug dug; do did done; draw drew drawn; drink drank drunk; drive drove driven; eat ate eaten;
fall fell fallen; feed fed fed; feel felt felt; fight fought fought; find found found; flee fled fled;
fly flew flown; forbid forbade forbidden; forget forgot forgotten; forgive forgave forgiven; freeze froze frozen;
get got gotten; give gave given; go went gone; grind ground ground; grow grew grown; hang hung hung; have had had;
hear heard heard; hide hid hidden; hit hit hit; hold held held; hurt hurt hurt; keep kept kept; kneel knelt knelt;
know knew known; lay laid laid; lead led led; lean leant leant; leap leapt leapt; learn learnt learnt;
leave left left; lend lent lent; let let let; lie lay lain; light lit lit; lose lost lost; make made made;
mean meant meant; meet met met; pay paid paid; put put put; quit quit quit; read read read; ride rode ridden;
ring rang rung; rise rose risen; run ran run; say said said; see saw seen; seek sought sought; sell sold sold;
send sent sent; set set set; shake shook shaken; shed shed shed; shine shone shone; shoot shot shot;
show showed shown; shrink shrank shrunk; shut shut shut; sing sang sung; sink sank sunk; sit sat sat;
sleep slept slept; slide slid slid; speak spoke spoken; speed sped sped; spend spent spent; spin spun spun;
split split split; spread spread spread; spring sprang sprung; stand stood stood; steal stole stolen;
stick stuck stuck; sting stung stung; strike struck struck; strive strove striven; swear swore sworn;
sweep swept swept; swim swam swum; swing swung swung; take took taken; teach taught taught; tear tore torn;
tell told told; think thought thought; throw threw thrown; tread trod trodden; understand understood understood;
undertake undertook undertaken; wake woke woken; wear wore worn; weave wove woven; weep wept wept; win won won;
wind wound wound; withdraw withdrew withdrawn; write wrote written; overcome overcame overcome;
overthrow overthrew overthrown; foresee foresaw foreseen; uphold upheld upheld; withstand withstood withstood
"""
_BASE_OF = {form: verb.split()[0] for verb in _IRREGULAR.split(";") for form in verb.split()}


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return _STEMMER.stem(_BASE_OF.get(word, word))


_GENERIC = frozenset(_stem(w) for w in GENERIC_WORDS)


def content_stems(text: str) -> list[str]:
    """Stems of the content words of `text`, in order."""
    return [_stem(t) for t in tokens(text) if t not in stop_words()]


def novel_words(question: str, sentence: str) -> list[str]:
    """The question's content stems that neither the sentence nor the generic question words hold."""
    have = set(content_stems(sentence))
    return [w for w in dict.fromkeys(content_stems(question)) if w not in have and w not in _GENERIC]


def blank_context(question: str, target: Span, answer: AnswerSpan, window: int = 2) -> str | None:
    """None when the question keeps a word next to the blank (or the blank has none); else the words it could
    have kept."""
    start, end = answer.start - target.start, answer.end - target.start
    near = content_stems(target.text[:start])[-window:] + content_stems(target.text[end:])[:window]
    if not near or set(near) & set(content_stems(question)):
        return None
    return "loses the words next to its answer: none of " + ", ".join(repr(w) for w in dict.fromkeys(near))


def repeated_phrase(question: str, n: int = 3) -> str | None:
    """The first word n-gram the question says twice, or None."""
    words = tokens(question)
    seen = set()
    for k in range(len(words) - n + 1):
        gram = tuple(words[k : k + n])
        if gram in seen:
            return " ".join(gram)
        seen.add(gram)
    return None


def closeness(question: str, target: Span | None, answer: AnswerSpan, window: int = 3) -> int:
    """How many of the `window` content words on each side of the blank the question keeps (ranks drawn
    questions: the closest is tried first)."""
    if target is None:
        return 0
    start, end = answer.start - target.start, answer.end - target.start
    near = set(content_stems(target.text[:start])[-window:]) | set(content_stems(target.text[end:])[:window])
    return len(near & set(content_stems(question)))


def fidelity_failure(question: str, target: Span, answer: AnswerSpan, window: int = 2) -> str | None:
    """Why `question` is not about the planned `answer` of `target` (None when every check passes)."""
    novel = novel_words(question, target.text)
    if novel:
        return "asks about words the sentence lacks: " + ", ".join(repr(w) for w in novel[:5])
    repeated = repeated_phrase(question)
    if repeated:
        return f"says {repeated!r} twice"
    return blank_context(question, target, answer, window)
