"""Boilerplate in plain text and Markdown: rules over lines, each with a name and a reason.

A line is boilerplate when it is markup residue (HTML comments, scripts, leftover tags and entities, CSS/JS),
a link list or table of links, a banner (cookie consent, subscribe/share/follow, copyright), or
navigation (short menu-like lines in a run, breadcrumbs, single navigation words). Fenced code blocks are
content and are left alone; so are Markdown headings.
"""

from __future__ import annotations

import re

from lxml.html import defs as html_defs

from robustqa.components import SpanFlag

_LINE = re.compile(r"[^\n]*")
_FENCE = re.compile(r"^[ \t]{0,3}(```|~~~)")
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}\s")
_LIST_MARKER = re.compile(r"^\s*(?:[-*+\u2022]|\d{1,3}[.)])\s+")

# Whole regions: HTML comments and script/style blocks, possibly over several lines.
_REGIONS = re.compile(r"<!--.*?(?:-->|$)|<(script|style)\b.*?(?:</\1\s*>|$)", re.S | re.I)
# A real HTML tag (lxml's list of tag names), not an angle-bracketed title like <The Palace>.
_TAG = re.compile(
    r"</?(?:" + "|".join(sorted(html_defs.tags, key=len, reverse=True)) + r")\b(?:\s+[\w:-]+(?:\s*=\s*(?:\"[^\"]*\"|"
    r"'[^']*'|[^\s>]+))?)*\s*/?>",
    re.I,
)
_ENTITY = re.compile(r"&(?:[A-Za-z]{2,8}|#\d{2,6}|#x[0-9A-Fa-f]{2,6});")
_CODE_HINT = re.compile(
    r"[{};]\s*$|^\s*[{}]|function\s*\(|=>|\b(?:var|let|const)\s+\w+\s*=|\bwindow\.|\bdocument\.\w+|@media|"
    r"!important|\w+\s*:\s*[^;]+;\s*\w+\s*:"
)
_CODE_CHARS = re.compile(r"[{}();=<>\[\]]")
_MD_LINK = re.compile(r"!?\[[^\]]*\]\([^)]*\)")
_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.I)

# Phrases that only banners, consent boxes and share bars use.
_BANNER = re.compile(
    r"\b(?:we use cookies|(?:accept|allow|reject|manage)(?: all)? cookies|"
    r"cookie (?:policy|settings|preferences)|"
    r"by (?:continuing|using) (?:to (?:use|browse) )?(?:this|our) (?:site|website)|all rights reserved|"
    r"(?:subscribe|sign up) (?:to|for) (?:our|the) (?:newsletter|mailing list)|follow us (?:on|at)|"
    r"share (?:this|on) (?:article|story|post|page|facebook|twitter|linkedin)|skip to (?:main )?content|"
    r"back to top|you (?:may|might) also like|recommended for you|log ?in to comment|"
    r"leave a (?:comment|reply))\b"
    r"|\u00a9|\(c\) \d{4}",
    re.I,
)
# A line that opens with a call to subscribe ("Subscribe to the X YouTube Channel for ..."): only at the start,
# since "subscribe to the theory that the channel ..." is prose.
_CALL_TO_SUBSCRIBE = re.compile(
    r"^(?:please )?(?:subscribe|sign up) (?:to|for) (?:our|the|my) (?:[\w'’-]+ ){0,4}"
    r"(?:newsletter|mailing list|channel|podcast|feed|updates|alerts)\b",
    re.I,
)
# Phrases that mark boilerplate only in a short line ("Read more", "Advertisement", "Related articles").
_SHORT_BANNER = re.compile(
    r"\b(?:advertisement|sponsored(?: content)?|read more|click here|"
    r"related (?:articles|stories|posts|content)|"
    r"most (?:popular|read)|trending now|continue reading|see also|more from)\b",
    re.I,
)
# Words that alone make up a navigation line ("Home", "Menu", "Sign in", "Next").
_NAV_WORDS = re.compile(
    r"^(?:home|menu|search|log ?in|log ?out|sign ?in|sign ?up|register|subscribe|contact(?: us)?|"
    r"about(?: us)?|privacy(?: policy)?|terms(?: of (?:use|service))?|sitemap|next|previous|prev|more|"
    r"share|tweet|print|email|"
    r"comments?|related|navigation|toggle navigation|close|open|top|newsletter|cookies?|accept|reject|ok|"
    r"facebook|twitter|instagram|linkedin|youtube|pinterest|whatsapp|reddit|rss|feed|tags?|categories|archives?)"
    r"[\s:|\u00b7\u2022>/\-]*$",
    re.I,
)
# A line that announces a list of other articles ("You may also like...", "Related stories", "Read next").
_LIST_HEADER = re.compile(
    r"^(?:you (?:may|might) also (?:like|enjoy)|recommended(?: for you| reading| stories)?|"
    r"related(?: articles| stories| posts| content| links| coverage)?|more (?:from|on) [\w ]{1,30}|"
    r"more (?:stories|news|articles)|most (?:popular|read)|trending(?: now| stories)?|see also|further reading|"
    r"read (?:more|next)|up next|what to read next)[\s.:…]*$",
    re.I,
)
MAX_HEADLINES = 12  # lines after a list header that can be its headlines
MAX_HEADLINE_WORDS = 14
_BREADCRUMB = re.compile(r"\s(?:\||\u00b7|\u2022|\u203a|\u00bb|>|/)\s")
_TERMINAL = re.compile(r"[.!?:;\"'\u201d)]$")


# The rules' hits are span flags whose `filter` names the rule; the old name stays importable.
BoilerplateHit = SpanFlag


def find_boilerplate(text: str, min_menu_run: int = 4, max_menu_words: int = 3) -> list[SpanFlag]:
    """Boilerplate ranges of `text`, sorted, each with the rule that found it."""
    hits = [
        SpanFlag(m.start(), m.end(), "markup", 1.0, "markup residue: HTML comment or script/style block")
        for m in _REGIONS.finditer(text)
    ]
    in_region = [(h.start, h.end) for h in hits]
    lines = _content_lines(text)
    menu_like = [_menu_like(text[s:e], max_menu_words) for s, e in lines]
    run_start = 0
    for k, (start, end) in enumerate(lines):
        if any(r_start < end and r_end > start for r_start, r_end in in_region):
            continue
        hit = _line_rule(text[start:end])
        if hit is not None:
            hits.append(SpanFlag(start, end, *hit))
        # Runs of menu-like lines: navigation bars rendered one item per line.
        if not menu_like[k]:
            run_start = k + 1
        elif k + 1 == len(lines) or not menu_like[k + 1]:
            if k + 1 - run_start >= min_menu_run:
                seen = {(h.start, h.end) for h in hits}
                reason = f"navigation: run of {k + 1 - run_start} short lines"
                hits.extend(
                    SpanFlag(s, e, "navigation", 0.8, reason) for s, e in lines[run_start : k + 1] if (s, e) not in seen
                )
            run_start = k + 1
    hits.extend(_headline_lists(text, lines, {(h.start, h.end) for h in hits}))
    return sorted(hits, key=lambda h: (h.start, h.end))


def _headline_lists(text: str, lines: list[tuple[int, int]], seen: set[tuple[int, int]]) -> list[SpanFlag]:
    """The headlines under a "You may also like" header: the run of short, headline-like lines after it (an
    article's own paragraphs are longer, or end in a full stop after many words)."""
    found = []
    for k, (start, end) in enumerate(lines):
        header = text[start:end].strip()
        if not _LIST_HEADER.match(header):
            continue
        for s, e in lines[k + 1 : k + 1 + MAX_HEADLINES]:
            words = text[s:e].split()
            if len(words) > MAX_HEADLINE_WORDS or (text[s:e].endswith(".") and len(words) > 8):
                break
            if (s, e) not in seen:
                found.append(SpanFlag(s, e, "link_list", 0.8, f"headline listed under {header!r}"))
    return found


def _content_lines(text: str) -> list[tuple[int, int]]:
    """Non-blank lines outside fenced code blocks, whitespace-stripped, as (start, end)."""
    out, fence = [], None
    for m in _LINE.finditer(text):
        line = m.group()
        fence_match = _FENCE.match(line)
        if fence is not None:
            if fence_match and fence_match.group(1) == fence:
                fence = None
            continue
        if fence_match:
            fence = fence_match.group(1)
            continue
        stripped = line.strip()
        if stripped:
            left = m.start() + len(line) - len(line.lstrip())
            out.append((left, left + len(stripped)))
    # finditer yields an empty match after each line; duplicates are impossible since lines are non-empty.
    return out


def _line_rule(line: str) -> tuple[str, float, str] | None:
    body = _LIST_MARKER.sub("", line)
    chars = max(1, len(body.replace(" ", "")))
    markup = sum(len(m.group()) for m in _TAG.finditer(body)) + sum(len(m.group()) for m in _ENTITY.finditer(body))
    if markup and markup / chars >= 0.2:
        return (
            "markup",
            min(1.0, markup / chars),
            f"markup residue: tags/entities are {markup / chars:.0%} of the line",
        )
    code = len(_CODE_CHARS.findall(body))
    if _CODE_HINT.search(body) and code / chars >= 0.06 and not _HEADING.match(line):
        return "markup", min(1.0, 5 * code / chars), "markup residue: CSS/JS code outside a code block"
    links = sum(len(m.group()) for m in _MD_LINK.finditer(body)) + sum(len(m.group()) for m in _URL.finditer(body))
    if links and links / chars >= 0.5:
        return "link_list", min(1.0, links / chars), f"link list: links are {links / chars:.0%} of the line"
    words = len(body.split())
    banner = (_BANNER.search(body) or _CALL_TO_SUBSCRIBE.match(body.strip())) if words <= 40 else None
    banner = banner or (_SHORT_BANNER.search(body) if words <= 12 else None)
    if banner:
        return "banner", 0.9, f"banner: {banner.group()!r} in a {words}-word line"
    if _NAV_WORDS.match(body.strip()):
        return "navigation", 0.9, f"navigation word {body.strip()!r}"
    parts = [p for p in _BREADCRUMB.split(body) if p.strip()]
    if len(parts) >= 3 and all(len(p.split()) <= 4 for p in parts) and not _TERMINAL.search(body):
        return "navigation", 0.8, f"navigation: {len(parts)} short items separated like a menu or breadcrumb"
    return None


def _menu_like(line: str, max_words: int) -> bool:
    """A short line without sentence punctuation that starts with a capital (a menu item, not "2 eggs")."""
    if _HEADING.match(line):
        return False
    body = _LIST_MARKER.sub("", line).strip()
    words = body.split()
    return 0 < len(words) <= max_words and body[0].isupper() and not _TERMINAL.search(body)
