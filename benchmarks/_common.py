"""What the benchmark scripts share, so none imports another: the run header (name, date, duration, command
line, machine), Wilson intervals, writing the result file, where the third-party data lies (`--data DIR`),
strategies from `name@key=value` specs, and the scripted FakeLMs of their plumbing runs.

The scripts import it as a neighbour (`from _common import ...`): `python benchmarks/x.py` puts this folder
first on sys.path; a script loaded by file path appends it (never prepends: benchmarks/coverage.py would
shadow the `coverage` package).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from robustqa.config import GenerateConfig
from robustqa.keyvalue import parse_spec
from robustqa.lm.base import LM, ChatRequest
from robustqa.lm.factory import make_lm
from robustqa.lm.fake import FakeLM
from robustqa.paths import portable_path
from robustqa.segment import sentences
from robustqa.strategy import Strategy

REPO = Path(__file__).resolve().parents[1]
# The full third-party data (its README names each source); this project's machines keep it beside the repo.
DEFAULT_DATA = REPO.parent / "shared" / "data"


def add_data_argument(parser: argparse.ArgumentParser, needed: str = "the files it reads") -> None:
    """`--data DIR`: the folder holding the third-party data, laid out as ../shared/data (and tests/data)."""
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help=f"the third-party data folder ({needed}; default: ../shared/data)",
    )


def shown_path(path: str | Path) -> str:
    """A path as a result file records it: relative to the repository (where the scripts are run from)."""
    return portable_path(path, REPO)


def data_file(data: Path, *parts: str) -> Path:
    """`data/parts...`, or exit with a one-line error naming the missing path."""
    path = data.joinpath(*parts)
    if not path.exists():
        raise SystemExit(f"data not found: {path} (pass --data DIR, the folder of the third-party data)")
    return path


# Attack text counts as quarantined (detected) when this share of its non-space characters is cut.
DETECTED_SHARE = 0.9


def notinject(data: Path = DEFAULT_DATA) -> list[str]:
    """NotInject's benign prompts that look like instructions (the over-blocking test set)."""
    rows = json.loads((data / "injections" / "notinject" / "NotInject_one.json").read_text(encoding="utf-8"))
    return [row["prompt"] for row in rows]


def benign_lookalikes(data: Path = DEFAULT_DATA) -> list[str]:
    """spikee's benign look-alikes of attacks (emails and notes that merely resemble them)."""
    path = data / "injections" / "spikee" / "benign_lookalikes.jsonl"
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line]


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second (the `date` and `finished` fields)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class RunStart:
    """Taken when a run starts, so the header reports the start's date and load, not the end's."""

    date: str = field(default_factory=utc_now, metadata={"help": "UTC start time, ISO 8601"})
    t0: float = field(default_factory=time.perf_counter, metadata={"help": "perf_counter() at the start"})
    load_average: list[float] = field(
        default_factory=lambda: list(os.getloadavg()), metadata={"help": "1, 5, 15 min load at the start"}
    )

    def seconds(self) -> float:
        """Seconds since the start, to a tenth."""
        return round(time.perf_counter() - self.t0, 1)


def command_line(script: str, argv: Sequence[str] | None) -> str:
    """The command that reproduces the run: the real one from the shell, or `benchmarks/<script>` with the
    arguments `main(argv)` was called with (in tests, sys.argv is pytest's)."""
    args = [str(a) for a in (sys.argv if argv is None else [f"benchmarks/{script}", *argv])]
    shown = [shown_path(a) if os.path.isabs(a) else a for a in args]
    # `--keep DIR` only says where scratch copies of the QA went (it changes no figure): a DIR outside the
    # repository is this machine's own folder (/tmp/...) and is left out.
    outside = {i for i, a in enumerate(shown) if i and args[i - 1] == "--keep" and a.startswith(("../", "/"))}
    kept = [a for i, a in enumerate(shown) if i not in outside and i + 1 not in outside]
    return "python " + " ".join(kept)


def machine_info(load_average_at_start: list[float] | None = None, **versions: str) -> dict[str, Any]:
    """Platform, python, usable CPUs, any library `versions` given, and the load average at the start (now,
    when not given)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": cpus,
        **versions,
        "load_average_at_start": list(os.getloadavg()) if load_average_at_start is None else load_average_at_start,
    }


def run_header(name: str, script: str, argv: Sequence[str] | None, start: RunStart, smoke: bool = False) -> dict:
    """The fields every result file starts with: benchmark, smoke, date, finished, seconds, command, machine."""
    return {
        "benchmark": name,
        "smoke": bool(smoke),
        "date": start.date,
        "finished": utc_now(),
        "seconds": start.seconds(),
        "command": command_line(script, argv),
        "machine": machine_info(start.load_average),
    }


def wilson(k: int, n: int, key: str = "share") -> dict[str, Any]:
    """k of n with k/n under `key` and its Wilson 95% interval; the share and interval are None when n = 0."""
    from scipy.stats import binomtest  # slow import, needed only once figures are ready

    if n == 0:
        return {"k": 0, "n": 0, key: None, "ci95": None}
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return {"k": k, "n": n, key: round(k / n, 4), "ci95": [round(float(ci.low), 4), round(float(ci.high), 4)]}


def write_result(path: Path, result: dict[str, Any]) -> None:
    """Write `result` as indented UTF-8 JSON (values JSON cannot hold, such as paths, as strings), making the
    folder first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


def spread(items: Sequence[Any], n: int) -> list[Any]:
    """`n` items evenly spaced over `items` (all of them when n >= len(items)), in order."""
    if n >= len(items):
        return list(items)
    if n <= 0:
        return []
    return [items[i] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


def build_strategy(spec: str) -> Strategy:
    """A registered strategy from `name` or `name@key=value,key=value` (values parsed as YAML scalars), built
    through the registry as `robustqa generate` builds it."""
    name, params = parse_spec(spec)
    return GenerateConfig(strategy=name, strategy_params=params).build_strategy()


FAKE_QUESTION = "What does the text say about "
_BLOCKS = (("<target>", "</target>"), ("<info>", "</info>"), ("<text>", "</text>"))


def _block(messages: Sequence[tuple[str, str]]) -> str:
    """The document text a prompt shows: the marked target, else the <info> or <text> excerpt."""
    joined = "\n".join(content for _, content in messages)
    for open_tag, close_tag in _BLOCKS:
        # The longest block: prompts also name the tags in their instructions ("marked with <target> and
        # </target>").
        found = re.findall(re.escape(open_tag) + r"(.*?)" + re.escape(close_tag), joined, re.S)
        if found:
            return max(found, key=len)
    return joined


def page_echo_fake() -> FakeLM:
    """FakeLM for plumbing runs. Asked for a question, it asks about one sentence of the document text it is
    shown (the target when one is marked, else a sentence picked by a hash of the prompt); asked a question
    (one of its own), it answers with the shown sentence sharing most words with it. Deterministic."""

    def units(text: str) -> list[str]:
        found = [s.text for s in sentences(text) if len(re.findall(r"\w+", s.text)) >= 3]
        return found or [text.strip() or "nothing"]

    def reply(req: ChatRequest) -> str:
        question = req.messages[-1][1].strip()
        shown = units(_block(req.messages))
        if question.startswith(FAKE_QUESTION):
            asked = set(re.findall(r"\w+", question.lower()))
            return max(shown, key=lambda s: len(asked & set(re.findall(r"\w+", s.lower()))))
        prompt = "\n".join(content for _, content in req.messages)
        pick = shown[zlib.crc32(prompt.encode("utf-8")) % len(shown)]
        return f"{FAKE_QUESTION}{pick.rstrip('.?!')}?"

    return FakeLM(default=reply, model_id="fake-page-echo")


def make_benchmark_lm(kind: str, model: str | None = None) -> LM:
    """`fake` (plumbing), or `hf` / `ct2` (the embedded SmolLM2-135M-Instruct, or a local model directory, on
    transformers / CTranslate2)."""
    return page_echo_fake() if kind == "fake" else make_lm(kind, model=model)


def sentence_echo_fake() -> FakeLM:
    """FakeLM whose replies are sentences of the prompt (deterministic), so filters and the audit have something to
    attribute; it costs nothing, which isolates the framework's own time. Figures from it check plumbing only.
    Asked to write a question, it asks about the first words of one sentence; asked a question, it answers with
    the sentence of its context that shares the most words with the question (so the answer claims the rest of
    that sentence, as a grounded answer would)."""

    def pieces(text: str) -> list[str]:
        return [p.strip() for p in text.replace("\n", " ").split(". ") if len(p.split()) >= 5]

    def reply(req: ChatRequest) -> str:
        user = req.messages[-1][1]
        task = user.strip().split("\n\n")[-1].lower()  # the instruction comes last
        if "question" in task and "write" in task:
            if "<target>" in user:  # the targeted writer marks the sentence to ask about
                user = user.rsplit("<target>", 1)[1].split("</target>", 1)[0] + ". "
            found = pieces(user) or pieces(req.messages[0][1])
            if not found:
                return "What is described here?"
            pick = found[zlib.crc32(user.encode()) % len(found)]
            return f"What does the text say about {' '.join(pick.split()[:5]).rstrip('.?,')}?"
        context = " ".join(content for role, content in req.messages[:-1] if role == "system") or user
        found = pieces(context)
        if not found:
            return "What is described here?"
        asked = set(user.lower().split())
        return max(found, key=lambda piece: (len(asked & set(piece.lower().split())), -found.index(piece)))

    return FakeLM(default=reply, model_id="fake-sentence-echo")
