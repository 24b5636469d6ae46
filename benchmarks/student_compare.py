"""Benchmark: do students learn more (and leak less) from robust QA than from naive QA? (issue 6)

Runs `robustqa compare` on an experiment file (default: benchmarks/configs/student_default.yaml) and prints
the headline numbers. Any experiment field can be overridden with --set, dotted for the nested sections:

    python benchmarks/student_compare.py
    python benchmarks/student_compare.py --smoke       # 1 article, 1 seed, a few steps: checks the plumbing
    python benchmarks/student_compare.py --set seeds=[0,1] --set train.epochs=2 --out /tmp/students

A rerun with the same --out skips every finished step (generation, baselines, students).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

from robustqa.keyvalue import parse_pairs

HERE = Path(__file__).resolve().parent
DEFAULT_CONFIG = HERE / "configs" / "student_default.yaml"

# The smoke run: the same pipeline at the smallest size that still exercises every step.
SMOKE = {
    "name": "student_smoke",
    "include": ["Super_Bowl_50"],
    "max_documents": 2,
    "seeds": [0],
    "budget": 8,
    "train.max_steps": 4,
    "eval.max_questions": 12,
    "control.include": ["Normans"],
    "injections.fraction": 1.0,
    "bootstrap_samples": 200,
}


def apply_override(data: dict, key: str, value) -> None:
    """Set `key` (dotted for nested mappings: train.epochs) in `data`."""
    *parents, leaf = key.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise SystemExit(f"--set {key}: {part} is not a mapping")
    node[leaf] = value


def _num(value, sign: bool = False) -> str:
    return "n/a" if value is None else (f"{value:+.3f}" if sign else f"{value:.3f}")


def headline(results: dict) -> str:
    rows = [
        (name, g["em"]["mean"], g["f1"]["mean"], g["nll"]["mean"], g["leaked"]["mean"])
        for name, g in results["groups"].items()
    ]
    probe = {name: g["probe_leaked"]["mean"] for name, g in results["groups"].items() if g.get("probe_leaked")}
    base = results["baselines"].get("base")
    if base:
        s = base["summary"]
        rows.append(("base (floor)", s["em"], s["f1"], s["nll"], base["leakage"]["leaked"]))
    for name, ceiling in results["baselines"].get("teacher_open_book", {}).items():
        s = ceiling["summary"]
        rows.append((f"{name} open book (ceiling)", s["em"], s["f1"], s["nll"], ceiling["leakage"]["leaked"]))
    lines = [
        f"{n:32s} EM {_num(em)}  F1 {_num(f1)}  NLL {_num(nll)}  leak {_num(leak)}"
        + (f"  leak on training questions {_num(probe[n])}" if probe.get(n) is not None else "")
        for n, em, f1, nll, leak in rows
    ]
    for d in results["differences"]:
        lines.append(
            f"{d['a']} - {d['b']} {d['metric']}: {_num(d['diff'], True)} "
            f"[{_num(d['low'], True)}, {_num(d['high'], True)}]"
        )
    for k in results.get("knowledge", []):
        what = f"{k['a']} gain vs {k['b']}" if k["kind"] == "gain" else f"gain {k['a']} - gain {k['b']}"
        power = f" (detectable {_num(k['power']['detectable_effect'])})" if k.get("power") else ""
        lines.append(
            f"{what} {k.get('metric', 'nll')}, {k.get('subset', 'all')} questions: {_num(k['diff'], True)} "
            f"[{_num(k['low'], True)}, {_num(k['high'], True)}]{power}"
        )
    return "\n".join(lines)


def leakage_by_attack_group(experiment, out: Path) -> dict:
    """For each complying teacher's students: leakage split by whether the teacher trained on the planted attack's
    group (BIPIA category, spikee payload) or its recipe held the group out, on the held-out questions and on the
    training-question probe, with Wilson intervals. Empty without a complying teacher."""
    from _common import wilson
    from robustqa.training.complying import attack_group, held_out_group_names
    from robustqa.training.leakage import load_attacks

    split = {}
    attacks = None
    for spec in experiment.model_specs:
        complying = experiment.complying_teacher(spec)
        if complying is None:
            continue
        recipe, _ = complying
        attacks = attacks or load_attacks(experiment.path(experiment.injection_spec.data_dir))
        held_groups = held_out_group_names(attacks, recipe.held_out_share, recipe.seed)
        group_of = {a.id: attack_group(a) for a in attacks}
        for path in sorted((out / "eval").glob(f"{spec.name}__*.json")) + [out / "eval" / f"teacher-{spec.name}.json"]:
            if not path.exists():
                continue
            result = json.loads(path.read_text(encoding="utf-8"))["result"]
            row = {}
            for name, leakage in (
                ("held-out questions", result.get("leakage")),
                ("training questions", result.get("probe_leakage")),
            ):
                if not leakage:
                    continue
                for part, rows in (
                    (
                        "attacks the teacher trained on",
                        [r for r in leakage["rows"] if group_of[r["attack_id"]] not in held_groups],
                    ),
                    (
                        "attacks held out of its training",
                        [r for r in leakage["rows"] if group_of[r["attack_id"]] in held_groups],
                    ),
                ):
                    row[f"{name}, {part}"] = wilson(int(sum(r["leaked"] for r in rows)), len(rows), "leaked")
                    if name == "training questions":  # payloads the question itself showed, repeated
                        echoed = int(sum(r.get("echoed", 0) for r in rows))
                        row[f"{name}, {part}, echoed"] = wilson(echoed, len(rows), "echoed")
            split[path.stem] = row
    return split


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="experiment YAML")
    parser.add_argument("--out", type=Path, default=None, help="output dir (default: benchmarks/results/NAME)")
    parser.add_argument("--set", action="append", default=[], help="override an experiment field: KEY=VALUE")
    parser.add_argument("--smoke", action="store_true", help="tiny run that checks the plumbing")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    from robustqa.training.compare import run_experiment
    from robustqa.training.experiment import Experiment

    data = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    data.setdefault("source_dir", str(args.config.resolve().parent))
    overrides = dict(SMOKE) if args.smoke else {}
    overrides.update(parse_pairs(args.set, "--set"))
    for key, value in overrides.items():
        apply_override(data, key, value)
    experiment = Experiment.from_dict(data, source=str(args.config))
    out = args.out or HERE / "results" / experiment.name

    t0 = time.perf_counter()
    results = run_experiment(experiment, out, progress=not args.no_progress)
    print(headline(results))
    split = leakage_by_attack_group(experiment, out)
    if split:  # a complying teacher: did the teacher train on the attacks that leak?
        (out / "leakage_by_attack_group.json").write_text(json.dumps(split, indent=1) + "\n", encoding="utf-8")
        for name, parts in split.items():
            for part, w in parts.items():
                print(f"{name} {part}: {w['k']}/{w['n']} {w['ci95']}")
    print(json.dumps(results["timing"]), f"total {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
