"""results.json: per-student summaries, groups (mean and spread over seeds) and paired differences.

A student's `strategy` is its group (`naive`, `naive-control`, `naive+distill`), `data` the QA set it trained on
(the generation run's key) and `objective` its training objective.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .corpus import Corpus
from .experiment import Experiment
from .generation import GenerationResult
from .stats import bootstrap_mean, difference_matrix, paired_bootstrap, power_estimate

DIFF_METRICS = ("em", "f1", "nll", "choice", "margin", "leaked", "probe_leaked")
# A knowledge gain per metric: lower NLL, or more often / by more preferring the gold answer to the paragraph's
# other answers. The sign turns each into "student minus control, better is positive".
GAIN_SIGNS = {"nll": -1.0, "choice": 1.0, "margin": 1.0}
SUBSETS = ("all", "answer in training", "answer not in training")
# The knowledge gain (nats of held-out gold-answer NLL) a comparison should resolve; its power is reported.
KNOWLEDGE_EFFECT = 0.1


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
    for metric in ("em", "f1", "nll", "choice", "margin"):
        out[metric] = stats([e["summary"].get(metric) for e in entries])
    out["leaked"] = stats([e["leakage"]["summary"]["leaked"] for e in entries])
    out["probe_leaked"] = stats([e["probe_leakage"]["summary"]["leaked"] for e in entries if "probe_leakage" in e])
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
    if metric == "probe_leaked":  # the same probe questions, in the same order, for every student of a teacher
        return [[r["leaked"] for r in e["probe_leakage"]["rows"]] for e in ordered]
    return [[float("nan") if r.get(metric) is None else r[metric] for r in e["questions"]] for e in ordered]


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
    differences, knowledge = [], []
    for spec in experiment.model_specs:

        def group(key: str | None, model: str = spec.name) -> list[dict[str, Any]]:
            return groups.get(f"{model}/{key}", []) if key else []

        for a, b in _comparisons(experiment, group):
            for metric in DIFF_METRICS:
                if metric == "probe_leaked" and not all("probe_leakage" in e for e in group(a) + group(b)):
                    continue  # no probe (no planted documents, probe off, or steps of an earlier version)
                stats = paired_bootstrap(
                    _matrix(group(a), metric),
                    _matrix(group(b), metric),
                    experiment.bootstrap_samples,
                    experiment.bootstrap_seed,
                )
                differences.append({"model": spec.name, "a": a, "b": b, "metric": metric, **stats})
        knowledge += _knowledge_rows(experiment, spec.name, group)
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
                "data": e["data"],
                "objective": e["objective"],
                "train_file": e["train_file"],
                "train": e["train"],
                "train_exposure": e["train_exposure"],
                "summary": e["summary"],
                "leakage": e["leakage"]["summary"],
                "probe_leakage": e["probe_leakage"]["summary"] if "probe_leakage" in e else None,
            }
            for e in students
        ],
        "groups": {name: _group_summary(entries) for name, entries in groups.items()},
        "baselines": baselines,
        "differences": differences,
        "knowledge": knowledge,
        "timing": {key: round(value, 1) for key, value in timing.items()},
    }


def _comparisons(experiment: Experiment, group: Callable[[str | None], list[dict[str, Any]]]) -> list[tuple[str, str]]:
    """(a, b) student groups whose difference a - b is reported, per teacher.

    Every strategy against the first (the reference) and against its control; with several `objectives`, every
    further objective's students against the first objective's on the same records (`naive+distill` - `naive`),
    and against the reference strategy's students of the same objective.
    """
    reference = experiment.strategy_specs[0].key
    others = experiment.student_objectives[1:]
    pairs = []
    for strat in experiment.strategy_specs:
        if strat.key != reference:
            pairs.append((strat.key, reference))
        control_key = experiment.control_of(strat.key)
        if group(control_key):
            pairs.append((strat.key, control_key))
        for objective in others:
            mine = experiment.student_key(strat.key, objective)
            pairs.append((mine, strat.key))  # the same records, the first objective
            if strat.key != reference:
                pairs.append((mine, experiment.student_key(reference, objective)))
    return [(a, b) for a, b in pairs if group(a) and group(b)]


def _gain(
    experiment: Experiment, key: str, group: Callable[[str | None], list[dict[str, Any]]], metric: str = "nll"
) -> Any:
    """[seed][question] improvement of a strategy's students over its own control in `metric` (NLL drop, choice or
    margin rise; None without a control)."""
    control = group(experiment.control_of(key))
    mine = group(key)
    if not control or not mine:
        return None
    return GAIN_SIGNS[metric] * difference_matrix(_matrix(mine, metric), _matrix(control, metric))


def _stated(entries: Sequence[dict[str, Any]]) -> list[bool] | None:
    """Per question, whether the students' training answers state its gold answer (None: not recorded)."""
    rows = sorted(entries, key=lambda e: e["seed"])[0]["questions"]
    if any("answer_in_training" not in r for r in rows):
        return None
    return [bool(r["answer_in_training"]) for r in rows]


def _knowledge_rows(
    experiment: Experiment, model: str, group: Callable[[str | None], list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Knowledge gain of every strategy over its own control and each gain minus the reference's gain, per metric.

    With one shared control the gain differences equal plain differences; with a control per strategy they also
    remove the difference in what each strategy's format alone teaches. Each strategy's gains are also split by
    whether its training answers state the question's gold answer: an NLL gain on answers never stated is topic
    familiarity, not a fact the QA taught.
    """
    import numpy as np

    reference = experiment.strategy_specs[0].key
    boot = {"samples": experiment.bootstrap_samples, "seed": experiment.bootstrap_seed}
    rows = []
    for metric in GAIN_SIGNS:
        ref_gain = _gain(experiment, reference, group, metric)
        for strat in experiment.strategy_specs:
            gain = _gain(experiment, strat.key, group, metric)
            if gain is None or np.isnan(gain).all():
                continue
            common = {"model": model, "metric": metric, "a": strat.key}
            subsets = {"all": np.ones(gain.shape[1], dtype=bool)}
            stated = _stated(group(strat.key))
            if stated is not None:
                subsets[SUBSETS[1]] = np.array(stated)
                subsets[SUBSETS[2]] = ~np.array(stated)
            for subset, mask in subsets.items():
                part = gain[:, mask]
                if part.shape[1] < 2:
                    continue
                rows.append(
                    {
                        **common,
                        "kind": "gain",
                        "subset": subset,
                        "b": experiment.control_of(strat.key),
                        **bootstrap_mean(part, **boot),
                        "power": power_estimate(part, effect=KNOWLEDGE_EFFECT) if metric == "nll" else None,
                    }
                )
            if strat.key != reference and ref_gain is not None:
                diff = difference_matrix(gain, ref_gain)
                rows.append(
                    {
                        **common,
                        "kind": "gain_difference",
                        "subset": "all",
                        "b": reference,
                        **bootstrap_mean(diff, **boot),
                        "power": power_estimate(diff, effect=KNOWLEDGE_EFFECT) if metric == "nll" else None,
                    }
                )
    return rows
