"""results.json: per-student summaries, groups (mean and spread over seeds) and paired differences."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .corpus import Corpus
from .experiment import Experiment
from .generation import GenerationResult
from .stats import paired_bootstrap

DIFF_METRICS = ("em", "f1", "nll", "leaked")


def _group_summary(entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean over seeds of each student's summary, with the spread across seeds."""
    import numpy as np

    def stats(values):
        values = [v for v in values if v is not None]
        if not values:
            return {"mean": None, "sd": None}
        return {
            "mean": float(np.mean(values)),
            "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        }

    out: dict[str, Any] = {"seeds": [e["seed"] for e in entries]}
    for metric in ("em", "f1", "nll"):
        out[metric] = stats([e["summary"][metric] for e in entries])
    out["leaked"] = stats([e["leakage"]["summary"]["leaked"] for e in entries])
    out["by_position"] = {
        pos: {m: stats([e["summary"]["by_position"][pos][m] for e in entries]) for m in ("em", "f1", "nll")}
        for pos in ("early", "middle", "late")
    }
    out["train_exposure"] = stats([e["train_exposure"]["leaked"] for e in entries])
    out["final_loss"] = stats([e["train"]["final_loss"] for e in entries])
    return out


def _matrix(entries: Sequence[dict[str, Any]], metric: str) -> list[list[float]]:
    ordered = sorted(entries, key=lambda e: e["seed"])
    if metric == "leaked":
        return [[r["leaked"] for r in e["leakage"]["rows"]] for e in ordered]
    return [[float("nan") if r[metric] is None else r[metric] for r in e["questions"]] for e in ordered]


def assemble_results(
    experiment: Experiment,
    corpus: Corpus,
    generations: Sequence[GenerationResult],
    students: Sequence[dict[str, Any]],
    floor: dict[str, Any] | None,
    ceilings: dict[str, dict[str, Any]],
    k: int,
    timing: dict[str, float],
) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in students:
        groups.setdefault(f"{entry['model']}/{entry['strategy']}", []).append(entry)
    reference = experiment.strategy_specs[0].key
    control_key = (experiment.control_spec.strategy or reference) + "-control"
    differences = []
    for spec in experiment.model_specs:
        ref = groups.get(f"{spec.name}/{reference}", [])
        ctrl = groups.get(f"{spec.name}/{control_key}", [])
        for strat in experiment.strategy_specs:
            mine = groups.get(f"{spec.name}/{strat.key}", [])
            comparisons = [(reference, ref)] if strat.key != reference else []
            comparisons += [(control_key, ctrl)] if ctrl else []
            for other_key, other in comparisons:
                for metric in DIFF_METRICS:
                    stats = paired_bootstrap(
                        _matrix(mine, metric),
                        _matrix(other, metric),
                        experiment.bootstrap_samples,
                        experiment.bootstrap_seed,
                    )
                    differences.append({"model": spec.name, "a": strat.key, "b": other_key, "metric": metric, **stats})
    baselines: dict[str, Any] = {"base": None, "teacher_open_book": {}}
    if floor is not None:
        baselines["base"] = {"summary": floor["summary"], "leakage": floor["leakage"]["summary"]}
    for name, ceiling in ceilings.items():
        baselines["teacher_open_book"][name] = {
            "summary": ceiling["summary"],
            "leakage": ceiling["leakage"]["summary"],
        }
    return {
        "experiment": experiment.to_dict(),
        "documents": {
            "n": len(corpus.documents),
            "ids": [d.id for d in corpus.documents],
            "planted": len(corpus.planted),
            "planted_attacks": [
                {"doc_id": p.doc_id, "attack_id": p.attack_id, "form": p.form, "position": p.position}
                for p in corpus.planted.values()
            ],
        },
        "questions": {
            "n": len(corpus.questions),
            "about_planted": sum(q.doc_id in corpus.planted for q in corpus.questions),
            "by_position": {p: sum(q.position == p for q in corpus.questions) for p in ("early", "middle", "late")},
        },
        "budget": {"requested": experiment.budget, "kept_per_student": k},
        "generation": [g.to_dict() for g in generations],
        "students": [
            {
                "key": e["key"],
                "model": e["model"],
                "strategy": e["strategy"],
                "seed": e["seed"],
                "kind": e["kind"],
                "train": e["train"],
                "train_exposure": e["train_exposure"],
                "summary": e["summary"],
                "leakage": e["leakage"]["summary"],
            }
            for e in students
        ],
        "groups": {name: _group_summary(entries) for name, entries in groups.items()},
        "baselines": baselines,
        "differences": differences,
        "timing": {key: round(value, 1) for key, value in timing.items()},
    }
