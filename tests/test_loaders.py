"""Document loaders: every format, every kind of bad input, and real web pages and SQuAD files."""

from __future__ import annotations

import gzip
import json
import logging
import re

import pytest

from robustqa.errors import InputError
from robustqa.io.loaders import html_to_text, load_document, load_documents
from robustqa.segment import sentences

PAGE = """<!DOCTYPE html><html><head><title>My  Page</title><meta charset="utf-8">
<style>body { color: red }</style><script>var secret = "not text";</script></head>
<body><nav><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li></ul></nav>
<div class="cookie">We use   cookies. <button>Accept</button></div>
<article><h1>Big   Story</h1><p>First paragraph of the
article, with <b>bold</b> words.</p><p>Second paragraph.</p>
<pre>line one
line two</pre><!-- a comment --><template><p>template text</p></template>
<table><tr><td>cell a</td><td>cell b</td></tr></table></article>
<footer>Copyright 2024 Example Inc.</footer></body></html>"""


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def error_of(path) -> str:
    with pytest.raises(InputError) as info:
        load_documents([path])
    message = str(info.value)
    assert "\n" not in message, "errors are one line"
    return message


# ------------------------------------------------------------------------------------------------------------
# Formats


@pytest.mark.parametrize("name", ["doc.txt", "doc.md", "doc.txt.gz", "doc.md.gz", "DOC.TXT"])
def test_text_and_markdown_as_is(tmp_path, name):
    text = "# Title\r\n\r\n  Body text.\n"
    docs = load_documents([write(tmp_path / name, text)])
    assert len(docs) == 1
    assert docs[0].text == text and docs[0].id == name.split(".")[0]
    assert docs[0].meta["format"] in ("text", "markdown") and docs[0].meta["path"].endswith(name)


def test_utf8_bom_is_dropped(tmp_path):
    assert load_documents([write(tmp_path / "a.txt", b"\xef\xbb\xbfHello")])[0].text == "Hello"


@pytest.mark.parametrize("name", ["page.html", "page.htm", "page.html.gz", "page.htm.gz"])
def test_html_visible_text_with_boilerplate(tmp_path, name):
    doc = load_documents([write(tmp_path / name, PAGE)])[0]
    assert doc.id == "page" and doc.meta["format"] == "html" and doc.meta["html"] == PAGE
    assert doc.meta["title"] == "My Page"
    lines = doc.text.split("\n")
    for line in [
        "My Page",
        "Home",
        "News",
        "We use cookies. Accept",
        "Big Story",
        "Second paragraph.",
        "line one",
        "line two",
        "cell a cell b",
        "Copyright 2024 Example Inc.",
    ]:
        assert line in lines, line
    assert "First paragraph of the article, with bold words." in lines
    for hidden in ["color: red", "secret", "a comment", "template text"]:
        assert hidden not in doc.text
    assert "\n\nSecond paragraph." in doc.text  # paragraphs are set apart by a blank line
    assert not re.search(r"[ \t]{2,}|^ | $", doc.text, re.M)


def test_html_declared_charset_is_honoured(tmp_path):
    html = '<html><head><meta charset="iso-8859-1"></head><body><p>Caf\xe9 cr\xe8me</p></body></html>'
    doc = load_documents([write(tmp_path / "latin.html", html.encode("cp1252"))])[0]
    assert doc.text == "Café crème"


def test_html_without_visible_text(tmp_path):
    assert "without visible text" in error_of(write(tmp_path / "x.html", "<html><script>x=1</script></html>"))


def test_jsonl(tmp_path):
    rows = [
        {"id": "a", "text": "Alpha text.", "url": "http://x"},
        {"id": 7, "context": "Seven."},
        {"text": "No id."},
    ]
    path = write(tmp_path / "sub" / "c.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    docs = load_documents([tmp_path])
    assert [d.id for d in docs] == ["a", "7", "sub/c:3"]
    assert [d.text for d in docs] == ["Alpha text.", "Seven.", "No id."]
    assert docs[0].meta["fields"] == {"url": "http://x"} and docs[2].meta["line"] == 3
    assert docs[0].meta["path"] == str(path)


def test_squad(tmp_path):
    squad = {
        "data": [
            {
                "title": "Art",
                "paragraphs": [{"context": "P0.", "qas": [{"question": "Q?"}]}, {"context": "P1."}],
            },
            {"paragraphs": [{"context": "Paper.", "document_id": 630, "qas": []}]},
            {"paragraphs": [{"context": "Untitled."}]},
        ]
    }
    docs = load_documents([write(tmp_path / "s.json", json.dumps(squad))])
    assert [d.id for d in docs] == ["Art/0", "Art/1", "doc-630/0", "article-2/0"]
    assert docs[0].meta["qas"] == [{"question": "Q?"}] and docs[1].meta["qas"] == []
    assert docs[0].meta["format"] == "squad" and docs[2].meta["document_id"] == 630


def test_directory_walk_sorted_relative_ids_and_skips(tmp_path, caplog):
    write(tmp_path / "b.txt", "B")
    write(tmp_path / "a" / "z.md", "Z")
    write(tmp_path / "a" / "y.html.gz", "<p>Y</p>")
    write(tmp_path / "notes.pdf", "%PDF")
    write(tmp_path / "image.png", "png")
    write(tmp_path / ".hidden.txt", "H")
    write(tmp_path / ".git" / "c.txt", "C")
    with caplog.at_level(logging.WARNING, logger="robustqa.io.loaders"):
        docs = load_documents([tmp_path])
    assert [d.id for d in docs] == ["a/y", "a/z", "b"]
    assert "skipped 2 file(s)" in caplog.text and "notes.pdf" in caplog.text
    # The same file named explicitly gets its bare name as id.
    assert [d.id for d in load_documents([tmp_path / "a" / "z.md"])] == ["z"]
    assert load_document(tmp_path / "a" / "z.md", root=tmp_path)[0].id == "a/z"


def test_huge_single_line_files_load(tmp_path):
    line = "word " * 1_000_000  # 5 MB, no line break
    assert len(load_documents([write(tmp_path / "big.txt", line)])[0].text) == len(line)
    docs = load_documents([write(tmp_path / "big.jsonl", json.dumps({"id": "x", "text": line}))])
    assert docs[0].text == line


# ------------------------------------------------------------------------------------------------------------
# Bad input


def test_missing_path(tmp_path):
    assert "no such file" in error_of(tmp_path / "nope.txt")


def test_unsupported_file_named_explicitly(tmp_path):
    assert "unsupported file type" in error_of(write(tmp_path / "doc.pdf", "x"))


def test_directory_without_documents(tmp_path):
    write(tmp_path / "x.pdf", "x")
    assert "no documents" in error_of(tmp_path)


@pytest.mark.parametrize("name", ["e.txt", "e.md", "e.jsonl", "e.json", "e.html", "e.txt.gz"])
@pytest.mark.parametrize("content", ["", " \n\t\n"])
def test_empty_or_whitespace_files(tmp_path, name, content):
    message = error_of(write(tmp_path / name, content))
    assert "e." in message and ("empty" in message or "only whitespace" in message or "visible" in message)


def test_binary_file(tmp_path):
    message = error_of(write(tmp_path / "bin.txt", b"PK\x03\x04\x00\x00abc"))
    assert "bin.txt" in message and "binary" in message and "byte offset 4" in message


def test_non_utf8_bytes_named_with_offset(tmp_path):
    message = error_of(write(tmp_path / "latin.txt", "line one\nCaf\xe9".encode("latin-1")))
    assert "latin.txt" in message and "not UTF-8" in message and "byte offset 12" in message
    assert "line 2" in message


def test_corrupt_gzip(tmp_path):
    (tmp_path / "bad.txt.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    assert "not a valid gzip file" in error_of(tmp_path / "bad.txt.gz")


@pytest.mark.parametrize(
    "lines, expected",
    [
        (['{"id": "a", "text": "ok"}', '{"id": "b", "text": '], r"bad\.jsonl:2: malformed JSON"),
        (
            ['{"id": "a", "text": "ok"}', "", '{"id": "b", "body": "x"}'],
            r"bad\.jsonl:3: missing 'text' field",
        ),
        (['["a", "b"]'], r"bad\.jsonl:1: expected an object"),
        (['{"id": "a", "text": 5}'], r"bad\.jsonl:1: 'text' must be a string"),
        (['{"id": "a", "text": "  "}'], r"bad\.jsonl:1: 'text' is empty"),
        (['{"id": ["x"], "text": "t"}'], r"bad\.jsonl:1: 'id' must be"),
        (
            ['{"id": "a", "text": "t"}', '{"id": "a", "text": "u"}'],
            r"bad\.jsonl:2: duplicate document id 'a'",
        ),
    ],
)
def test_bad_jsonl(tmp_path, lines, expected):
    assert re.search(expected, error_of(write(tmp_path / "bad.jsonl", "\n".join(lines))))


@pytest.mark.parametrize(
    "content, expected",
    [
        ("{not json", "malformed JSON"),
        ('{"version": 1}', "not a SQuAD-format file"),
        ('{"data": [{"title": "t"}]}', r"data\[0\] has no 'paragraphs'"),
        (
            '{"data": [{"title": "t", "paragraphs": [{"qas": []}]}]}',
            r"data\[0\]\.paragraphs\[0\] has no 'context'",
        ),
        ('{"data": [{"title": "t", "paragraphs": [{"context": " "}]}]}', "empty 'context'"),
        ('{"data": []}', "without paragraphs"),
        (json.dumps({"data": [{"title": "t", "paragraphs": [{"context": c}]} for c in "ab"]}), "duplicate"),
    ],
)
def test_bad_squad(tmp_path, content, expected):
    message = error_of(write(tmp_path / "s.json", content))
    assert "s.json" in message and re.search(expected, message)


def test_duplicate_ids_across_the_corpus(tmp_path):
    write(tmp_path / "one" / "doc.txt", "A")
    write(tmp_path / "two" / "doc.md", "B")
    message = error_of_many([tmp_path / "one", tmp_path / "two"])
    assert "duplicate document id 'doc'" in message and "doc.txt" in message and "doc.md" in message
    write(tmp_path / "r.jsonl", '{"id": "doc", "text": "C"}')
    assert "r.jsonl:1" in error_of_many([tmp_path / "one", tmp_path / "r.jsonl"])


def error_of_many(paths) -> str:
    with pytest.raises(InputError) as info:
        load_documents(paths)
    return str(info.value)


# ------------------------------------------------------------------------------------------------------------
# Real data


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_real_web_pages_keep_article_and_boilerplate(fixture_data):
    truth = json.loads((fixture_data / "web" / "ground-truth.json").read_text(encoding="utf-8"))
    pages = sorted((fixture_data / "web" / "html").glob("*.html.gz"))[:3]
    for doc in load_documents(pages):
        body = truth[doc.id]["articleBody"]
        first = sentences(body)[0].text
        assert _norm(first) in _norm(doc.text), doc.id
        boilerplate = [line for line in doc.text.split("\n") if len(line) >= 20 and _norm(line) not in _norm(body)]
        assert boilerplate, doc.id
        assert len(doc.text) > len(body) and "<" in doc.meta["html"]


def test_real_web_directory_loads(fixture_data):
    truth = json.loads((fixture_data / "web" / "ground-truth.json").read_text(encoding="utf-8"))
    docs = load_documents([fixture_data / "web" / "html"])
    assert sorted(d.id for d in docs) == sorted(truth) and [d.id for d in docs] == sorted(truth)
    # The article's opening words are in the rendered page for nearly every page (a few ground truths differ
    # from the page's own text, e.g. hover cards inserted after a name).
    found = sum(_norm(truth[d.id]["articleBody"])[:60] in _norm(d.text) for d in docs)
    assert found / len(docs) >= 0.9, found


def test_real_squad_files(fixture_data):
    xquad = load_documents([fixture_data / "xquad_en_dev.json"])
    assert len(xquad) == 20 and xquad[0].id == "Super_Bowl_50/0"
    assert sum(len(d.meta["qas"]) for d in xquad) == 123
    covid = load_documents([fixture_data / "covidqa" / "covidqa_dev.json"])
    assert len(covid) == 3 and all(re.fullmatch(r"doc-\d+/0", d.id) for d in covid)
    assert sum(len(d.meta["qas"]) for d in covid) == 12


def test_html_to_text_rejects_unparseable():
    with pytest.raises(InputError, match="cannot parse"):
        html_to_text("<!-- only a comment -->", "c.html")
