"""HTML to the visible text of the whole page, as a browser lays it out (blocks on their own lines, invisible
elements dropped), with lxml and `huge_tree` so deep pages are not cut."""

from __future__ import annotations

import re
from typing import Any

from robustqa.errors import InputError

# Elements whose content a browser does not show as text.
_INVISIBLE = set(
    "script style template noscript head meta link base svg math iframe object embed canvas audio video map "
    "select datalist input textarea".split()
)
# Blocks a browser sets apart with a margin (a blank line here) or just starts on a new line.
_PARAGRAPH_BLOCKS = set(
    "p h1 h2 h3 h4 h5 h6 blockquote pre ul ol dl table figure hr header footer nav section article aside "
    "main form fieldset address details body".split()
)
_LINE_BLOCKS = set(
    "div li tr dt dd br figcaption summary caption legend option label center tbody thead tfoot menu dialog "
    "hgroup search".split()
)
_CELLS = {"td", "th"}
_LINE, _PARAGRAPH = 1, 2
_SPACES = re.compile(r"\s+")
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


def html_to_text(html: str, name: str = "<html>") -> tuple[str, str | None]:
    """(visible text of the whole page, title).

    Each block starts a line, paragraph-like blocks are set apart by a blank line, whitespace inside a line is
    collapsed (line breaks in <pre> stay). Text hidden by CSS stays too, as in what crawlers extract.
    """
    import lxml.html
    from lxml import etree

    # libxml2 stops at 256 levels of nesting (2048 with huge_tree) and drops the rest of the page; past the
    # larger limit the page is refused rather than cut short silently.
    parser = lxml.html.HTMLParser(huge_tree=True)
    try:
        root = lxml.html.document_fromstring(_XML_DECLARATION.sub("", html, count=1), parser=parser)
    except (etree.ParserError, ValueError) as exc:
        raise InputError(f"{name}: cannot parse HTML ({exc})") from None
    for entry in parser.error_log:
        if entry.type_name == "ERR_RESOURCE_LIMIT":
            raise InputError(
                f"{name}: HTML nested too deeply to read whole ({entry.message.strip()} at line {entry.line}, "
                f"column {entry.column}); the text after it would be lost"
            )
    title_el = root.find(".//title")
    title = _SPACES.sub(" ", title_el.text_content()).strip() if title_el is not None else None
    pieces: list[str | int] = []
    if title:
        pieces += [title, _PARAGRAPH]
    stack: list[tuple[Any, bool]] = [(root, False)]
    pre_depth = 0
    while stack:
        el, closing = stack.pop()
        tag = el.tag.lower() if isinstance(el.tag, str) else None
        if closing:
            if tag == "pre":
                pre_depth -= 1
            pieces.append(_block_break(tag))
            _add_text(pieces, el.tail, pre_depth)
            continue
        if tag is None or tag in _INVISIBLE:  # comments, processing instructions, scripts...
            _add_text(pieces, el.tail, pre_depth)
            continue
        pieces.append(_block_break(tag))
        if tag == "pre":
            pre_depth += 1
        _add_text(pieces, el.text, pre_depth)
        stack.append((el, True))
        stack.extend((child, False) for child in reversed(el))
    return _assemble(pieces), title


def _block_break(tag: str | None) -> str | int:
    if tag in _PARAGRAPH_BLOCKS:
        return _PARAGRAPH
    if tag in _LINE_BLOCKS:
        return _LINE
    return " " if tag in _CELLS else ""


def _add_text(pieces: list[str | int], text: str | None, pre_depth: int) -> None:
    if not text:
        return
    if not pre_depth:
        pieces.append(text)
        return
    for i, line in enumerate(text.split("\n")):
        if i:
            pieces.append(_LINE)
        pieces.append(line)


def _assemble(pieces: list[str | int]) -> str:
    lines: list[str] = []
    current: list[str] = []
    gap = 0
    for piece in pieces + [_LINE]:
        if isinstance(piece, str):
            current.append(piece)
            continue
        line = _SPACES.sub(" ", "".join(current)).strip()
        current = []
        if line:
            if lines:
                lines.append("\n" * max(gap, 1))
            lines.append(line)
            gap = 0
        gap = max(gap, piece)
    return "".join(lines)
