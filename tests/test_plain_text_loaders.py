"""Plain-text files other than .txt/.md (LaTeX, reStructuredText, source code, ...) load as text, named
explicitly or found in a directory: the docs' own `robustqa generate paper.tex` works."""

from __future__ import annotations

from robustqa.io.loaders import load_document, load_documents


def test_tex_rst_and_py_files_load_as_text(tmp_path):
    texts = {
        "paper.tex": "\\section{Intro} Floods come in spring.",
        "notes.rst": "Title\n=====\n\nBody.",
        "a.py": "x = 1\n",
    }
    for name, text in texts.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (doc,) = load_document(tmp_path / "paper.tex")
    assert (doc.id, doc.text, doc.meta["format"]) == ("paper", texts["paper.tex"], "text")
    assert {d.id: d.text for d in load_documents([tmp_path])} == {
        "paper": texts["paper.tex"],
        "notes": texts["notes.rst"],
        "a": texts["a.py"],
    }
