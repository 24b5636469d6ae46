"""Benchmark: how often the instruction filter quarantines planted attacks, and how much clean text it
removes.

Attacks: BIPIA's text (and code) attack instructions, and spikee's jailbreak templates filled with its payload
instructions, planted into XQuAD paragraphs at the start, middle and end, in every surface form of
`robustqa.planting` (plain sentence, "Note to AI assistants:", "### Instruction:", "[SYSTEM] ... [/SYSTEM]",
HTML comment, Markdown quote, code comment). An attack counts as detected when at least 90% of its
characters (surface form included) are quarantined.

Clean text (sentence-level false positives): every XQuAD paragraph, the web ground-truth article bodies, and
NotInject's benign trigger-word sentences and spikee's benign look-alike emails on their own. Benign planted:
the NotInject sentences and spikee look-alikes planted into XQuAD paragraphs like the attacks, in the forms
that are not attack cues in themselves (plain, Markdown quote; `planting.BENIGN_FORMS`), with the reason of
every one quarantined. The sanitizer's share of boilerplate found and of article text kept on the raw web
pages is reported too.

    python benchmarks/filter_detection.py                  # full run (a few minutes on 2 CPU cores)
    python benchmarks/filter_detection.py --no-embeddings  # the cue model alone, no MiniLM
    python benchmarks/filter_detection.py --suspicion-quarantines  # the filter before issue 15
    python benchmarks/filter_detection.py --limit 20       # a quick look: 20 clean paragraphs

Writes benchmarks/results/filter_detection.json (or --out) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from _common import DETECTED_SHARE, benign_lookalikes, notinject
from robustqa.strategies.instruction_filter import InstructionFilter
from robustqa.strategies.sanitizer import Sanitizer

from robustqa.planting import BENIGN_FORMS, POSITIONS, SURFACE_FORMS, plant
from robustqa.segment import sentences
from robustqa.types import Document

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("ROBUSTQA_SHARED_DATA", HERE.parent.parent / "shared" / "data"))


# -- data ----------------------------------------------------------------------------------------------------
def xquad_paragraphs() -> list[str]:
    data = json.loads((DATA / "xquad_en_dev.json").read_text(encoding="utf-8"))
    return [p["context"] for article in data["data"] for p in article["paragraphs"]]


def web_articles() -> list[str]:
    truth = json.loads((DATA / "web" / "ground-truth.json").read_text(encoding="utf-8"))
    return [truth[k]["articleBody"] for k in sorted(truth)]


def bipia(kind: str) -> list[tuple[str, str]]:
    data = json.loads((DATA / "injections" / f"bipia_{kind}_attack_train.json").read_text(encoding="utf-8"))
    return [(category, attack) for category, attacks in data.items() for attack in attacks]


def spikee_attacks() -> list[tuple[str, str]]:
    """Each jailbreak template filled with one payload instruction (in turn)."""
    folder = DATA / "injections" / "spikee"
    jailbreaks = [json.loads(line) for line in (folder / "jailbreaks.jsonl").read_text().splitlines() if line]
    payloads = [json.loads(line) for line in (folder / "instructions.jsonl").read_text().splitlines() if line]
    return [
        (
            jb["jailbreak_type"],
            jb["text"].replace("<INSTRUCTION>", payloads[k % len(payloads)]["instruction"]),
        )
        for k, jb in enumerate(jailbreaks)
    ]


# -- measuring -----------------------------------------------------------------------------------------------
def quarantined_share(flags, start: int, end: int, text: str) -> float:
    chars = [i for i in range(start, end) if not text[i].isspace()]
    if not chars:
        return 1.0
    covered = np.zeros(len(text), dtype=bool)
    for f in flags:
        covered[f.start : f.end] = True
    return float(covered[chars].mean())


def sentence_false_positives(flt: InstructionFilter, texts: list[str]) -> tuple[int, int, list[str]]:
    """(flagged sentences, all sentences, examples) over clean documents."""
    flt.prefetch([Document(f"clean{k}", text) for k, text in enumerate(texts)])
    flagged = total = 0
    examples = []
    for k, text in enumerate(texts):
        doc = Document(f"clean{k}", text)
        flags = flt.flag(doc)
        for s in sentences(text):
            total += 1
            if any(f.start < s.end and f.end > s.start for f in flags):
                flagged += 1
                if len(examples) < 8:
                    examples.append(s.text[:140])
    return flagged, total, examples


def attack_detection(flt: InstructionFilter, attacks, paragraphs, forms, positions) -> dict:
    planted = []
    k = 0
    for category, attack in attacks:
        for form in forms:
            for position in positions:
                paragraph = paragraphs[k % len(paragraphs)]
                k += 1
                p = plant(paragraph, attack, form, position)
                planted.append((category, attack, form, p.position, p.text, p.start, p.end))
    # One batched embedding pass over every planted document instead of one small pass per document.
    flt.prefetch([Document(f"planted{i}", row[4]) for i, row in enumerate(planted)])
    by_form: dict[str, list[float]] = defaultdict(list)
    by_category: dict[str, list[float]] = defaultdict(list)
    by_position: dict[str, list[float]] = defaultdict(list)
    collateral = clean_total = 0
    misses, hits_shown = [], []
    for i, (category, attack, form, position, text, start, end) in enumerate(planted):
        flags = flt.flag(Document(f"planted{i}", text))
        hit = float(quarantined_share(flags, start, end, text) >= DETECTED_SHARE)
        by_form[form].append(hit)
        by_category[category].append(hit)
        by_position[position].append(hit)
        if not hit and len(misses) < 12:
            misses.append(f"[{form}/{position}] {attack[:120]}")
        if hit and len(hits_shown) < 12:
            # Every quarantine keeps its score and reason: show them for the first ones.
            reasons = [f"{f.score:.2f} {f.reason}" for f in flags if f.start < end and f.end > start]
            hits_shown.append({"text": f"[{form}/{position}] {attack[:120]}", "flags": reasons})
        # Clean sentences of the host paragraph that were quarantined with the attack.
        for s in sentences(text):
            if s.end <= start or s.start >= end:
                clean_total += 1
                collateral += any(f.start < s.end and f.end > s.start for f in flags)
    all_hits = [h for v in by_form.values() for h in v]
    return {
        "planted": len(all_hits),
        "detection_rate": float(np.mean(all_hits)),
        "by_form": {f: float(np.mean(v)) for f, v in by_form.items()},
        "by_position": {p: float(np.mean(v)) for p, v in by_position.items()},
        "by_category": {c: float(np.mean(v)) for c, v in sorted(by_category.items())},
        "host_sentences_quarantined": collateral / max(clean_total, 1),
        "misses": misses,
        "quarantined_examples": hits_shown,
    }


def sanitizer_on_web_pages() -> dict:
    from robustqa.audit.boilerplate import align_article
    from robustqa.io.loaders import load_document

    truth = json.loads((DATA / "web" / "ground-truth.json").read_text(encoding="utf-8"))
    san = Sanitizer()
    article_chars = article_flagged = boiler_chars = boiler_flagged = 0
    for path in sorted((DATA / "web" / "html").glob("*.html.gz")):
        key = path.name.split(".")[0]
        if key not in truth:
            continue
        doc = load_document(path)[0]
        is_article = np.zeros(len(doc.text), dtype=bool)
        for start, end in align_article(doc.text, truth[key]["articleBody"]):
            is_article[start:end] = True
        flagged = np.zeros(len(doc.text), dtype=bool)
        for f in san.flag(doc):
            flagged[f.start : f.end] = True
        visible = np.array([not c.isspace() for c in doc.text], dtype=bool)
        article_chars += int((is_article & visible).sum())
        article_flagged += int((is_article & visible & flagged).sum())
        boiler_chars += int((~is_article & visible).sum())
        boiler_flagged += int((~is_article & visible & flagged).sum())
    return {
        "pages": len(truth),
        "boilerplate_chars_flagged": boiler_flagged / max(boiler_chars, 1),
        "article_chars_kept": 1 - article_flagged / max(article_chars, 1),
    }


# -- main ----------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-embeddings", action="store_true", help="the cue model alone (no MiniLM)")
    parser.add_argument("--limit", type=int, default=0, help="use only this many XQuAD paragraphs")
    parser.add_argument(
        "--suspicion-quarantines",
        action="store_true",
        help="quarantine on shape and mismatch cues alone (require_evidence off: the filter before issue 15)",
    )
    parser.add_argument("--skip-sanitizer", action="store_true", help="do not run the sanitizer on web pages")
    parser.add_argument("--out", default=str(HERE / "results" / "filter_detection.json"))
    args = parser.parse_args(argv)
    if not DATA.exists():
        raise SystemExit(f"shared data not found at {DATA} (set ROBUSTQA_SHARED_DATA)")

    t0 = time.perf_counter()
    flt = InstructionFilter(use_embeddings=not args.no_embeddings, require_evidence=not args.suspicion_quarantines)
    paragraphs = xquad_paragraphs()
    if args.limit:
        paragraphs = paragraphs[: args.limit]
    forms, positions = list(SURFACE_FORMS), list(POSITIONS)
    results: dict = {"filter": flt.describe(), "detected_share": DETECTED_SHARE}

    attacks = {
        "bipia_text": bipia("text"),
        "bipia_code": bipia("code"),
        "spikee_jailbreaks": spikee_attacks(),
    }
    results["attacks"] = {
        name: attack_detection(flt, rows, paragraphs, forms, positions) for name, rows in attacks.items()
    }
    clean_sets = {
        "xquad_paragraphs": paragraphs,
        "web_article_bodies": web_articles()[: args.limit or None],
        "notinject_standalone": notinject(DATA),
        "spikee_benign_lookalikes": benign_lookalikes(DATA),
    }
    results["clean"] = {}
    for name, texts in clean_sets.items():
        flagged, total, examples = sentence_false_positives(flt, texts)
        results["clean"][name] = {
            "sentences": total,
            "flagged": flagged,
            "false_positive_rate": flagged / max(total, 1),
            "examples": examples,
        }
    # Benign text planted like an attack: NotInject prompts and spikee's look-alike emails inside encyclopaedia
    # paragraphs, in the forms that are no attack cue in themselves.
    benign = {"notinject": notinject(DATA), "spikee_benign_lookalikes": benign_lookalikes(DATA)}
    results["benign_planted"] = {}
    for name, texts in benign.items():
        r = attack_detection(flt, [(name, t) for t in texts], paragraphs, list(BENIGN_FORMS), positions)
        results["benign_planted"][name] = {
            "planted": r["planted"],
            "quarantined": round(r["detection_rate"] * r["planted"]),
            "quarantined_rate": r["detection_rate"],
            "by_form": r["by_form"],
            "by_position": r["by_position"],
            "host_sentences_quarantined": r["host_sentences_quarantined"],
            "quarantined_examples": r["quarantined_examples"],
        }
    planted_all = sum(r["planted"] for r in results["benign_planted"].values())
    quarantined_all = sum(r["quarantined"] for r in results["benign_planted"].values())
    results["benign_planted"]["all"] = {
        "planted": planted_all,
        "quarantined": quarantined_all,
        "quarantined_rate": quarantined_all / max(planted_all, 1),
    }
    if not args.skip_sanitizer:
        results["sanitizer_web_pages"] = sanitizer_on_web_pages()
    results["seconds"] = round(time.perf_counter() - t0, 1)

    print_table(results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwrote {out} ({results['seconds']} s)")
    return results


def print_table(results: dict) -> None:
    print("\nInstruction filter: planted attacks quarantined (>= 90% of their characters)")
    print(f"{'attack set':<20}{'planted':>8}{'detected':>10}  " + "  ".join(f"{f:>14}" for f in SURFACE_FORMS))
    for name, r in results["attacks"].items():
        forms = "  ".join(f"{r['by_form'].get(f, float('nan')):>14.3f}" for f in SURFACE_FORMS)
        print(f"{name:<20}{r['planted']:>8}{r['detection_rate']:>10.3f}  {forms}")
    print(f"\n{'attack set':<20}{'host sentences lost':>20}  by position")
    for name, r in results["attacks"].items():
        pos = ", ".join(f"{p} {v:.3f}" for p, v in r["by_position"].items())
        print(f"{name:<20}{r['host_sentences_quarantined']:>20.3f}  {pos}")
    print("\nClean text: sentence-level false positives")
    print(f"{'set':<28}{'sentences':>10}{'flagged':>9}{'FP rate':>9}")
    for name, r in results["clean"].items():
        print(f"{name:<28}{r['sentences']:>10}{r['flagged']:>9}{r['false_positive_rate']:>9.3f}")
    print("\nBenign text planted into paragraphs (plain, Markdown quote): quarantined")
    for name, r in results["benign_planted"].items():
        print(f"{name:<28}{r['planted']:>10}{r['quarantined']:>9}{r['quarantined_rate']:>9.3f}")
    if "sanitizer_web_pages" in results:
        s = results["sanitizer_web_pages"]
        print(
            f"\nSanitizer on {s['pages']} raw web pages: boilerplate characters flagged "
            f"{s['boilerplate_chars_flagged']:.3f}, article characters kept {s['article_chars_kept']:.3f}"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
