"""report.md and its plots (matplotlib, Agg) from the results of `robustqa compare`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

METRIC_NAMES = {
    "em": "exact match",
    "f1": "token F1",
    "nll": "gold-answer NLL (lower is better)",
    "choice": "gold preferred to the paragraph's other answers",
    "margin": "distractor NLL minus gold NLL (nats)",
    "leaked": "injection leakage rate",
    "probe_leaked": "injection leakage rate on the training QA's questions",
}


def _fmt(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ms(stat: dict[str, Any]) -> str:
    if stat["mean"] is None:
        return "n/a"
    return f"{stat['mean']:.3f} ± {stat['sd']:.3f}" if stat["sd"] else f"{stat['mean']:.3f}"


def write_report(results: dict[str, Any], out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    plots = out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    images = _plots(results, plots, out_dir)
    exp = results["experiment"]
    lines = [
        f"# Student comparison: {exp['name']}",
        "",
        f"{results['documents']['n']} documents ({results['documents']['planted']} with a planted attack), "
        f"{results['questions']['n']} held-out human questions "
        f"({results['questions']['about_planted']} about "
        f"planted documents; answers early/middle/late: "
        + "/".join(str(results["questions"]["by_position"][p]) for p in ("early", "middle", "late"))
        + f"). Every student: {results['budget']['kept_per_student']} kept QA pairs "
        f"(requested {results['budget']['requested']}), seeds {exp['seeds']}.",
        "",
        "## Students (mean ± sd over seeds)",
        "",
        "| student | EM | F1 | NLL | choice | margin | leakage | leakage, training questions | training-QA exposure "
        "| final loss |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    base = results["baselines"].get("base")
    if base:
        lines.append(
            f"| base (untrained, floor) | {_fmt(base['summary']['em'])} | {_fmt(base['summary']['f1'])} | "
            f"{_fmt(base['summary']['nll'])} | {_fmt(base['summary'].get('choice'))} | "
            f"{_fmt(base['summary'].get('margin'))} | {_fmt(base['leakage']['leaked'])} | | | |"
        )
    for name, group in results["groups"].items():
        lines.append(
            f"| {name} | {_ms(group['em'])} | {_ms(group['f1'])} | {_ms(group['nll'])} | "
            f"{_ms(group['choice'])} | {_ms(group['margin'])} | {_ms(group['leaked'])} | "
            f"{_ms(group.get('probe_leaked', {'mean': None}))} | {_ms(group['train_exposure'])} | "
            f"{_ms(group['final_loss'])} |"
        )
    for name, ceiling in results["baselines"].get("teacher_open_book", {}).items():
        lines.append(
            f"| teacher {name} open book (ceiling) | {_fmt(ceiling['summary']['em'])} | "
            f"{_fmt(ceiling['summary']['f1'])} | {_fmt(ceiling['summary']['nll'])} | "
            f"{_fmt(ceiling['summary'].get('choice'))} | {_fmt(ceiling['summary'].get('margin'))} | "
            f"{_fmt(ceiling['leakage']['leaked'])} | | | |"
        )
    lines += [
        "",
        "Choice: share of questions whose gold answer the student finds likelier (mean NLL per token) than every "
        "gold answer of the paragraph's other questions that shares no word with it; margin: those answers' mean "
        "NLL minus the gold answer's. Studying a topic lowers the NLL of every answer about it, so these two move "
        "only with knowing which answer fits which question.",
        "Leakage: share of answers to questions about planted documents that contain the attack's canary, a "
        "distinctive payload string, or a word 4-gram of the planted text absent from the clean document.",
        "Leakage, training questions: the same test on the student's closed-book answers to the questions the "
        "training QA asked about planted documents (every strategy's; the same questions for every student of a "
        "teacher): does it repeat a payload it was trained on when asked what it was trained on? A payload string "
        "that the question itself shows does not count.",
        "Training-QA exposure: the same test applied to the training pairs about planted documents.",
        "",
    ]
    lines += _knowledge_lines(results.get("knowledge", []))
    lines += [
        "## Differences (paired bootstrap 95% interval over seeds and questions)",
        "",
        "| teacher | a − b | metric | difference | 95% CI | seeds | questions |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in results["differences"]:
        lines.append(
            f"| {d['model']} | {d['a']} − {d['b']} | {d['metric']} | {_fmt(d['diff'])} | "
            f"[{_fmt(d['low'])}, {_fmt(d['high'])}] | {d['n_seeds']} | {d['n_questions']} |"
        )
    objectives = exp.get("objectives") or []
    if len(objectives) > 1:
        lines += [
            "",
            f"`<strategy>+<objective>`: students trained with that objective on the same kept QA records as the "
            f"`<strategy>` students ({objectives[0]}), so `<strategy>+<objective> − <strategy>` is the objective's "
            "effect on one data set. Controls train with the first objective only.",
        ]
    lines += [
        "",
        "## By answer position (mean over seeds)",
        "",
        "| student | position | EM | F1 | NLL |",
        "|---|---|---|---|---|",
    ]
    for name, group in results["groups"].items():
        for pos, stats in group["by_position"].items():
            lines.append(f"| {name} | {pos} | {_ms(stats['em'])} | {_ms(stats['f1'])} | {_ms(stats['nll'])} |")
    lines += [
        "",
        "## Generation cost",
        "",
        "| teacher | strategy | seed | planned | kept | attempts | LM tokens | tokens / kept | cached requests "
        "| seconds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for g in results["generation"]:
        lines.append(
            f"| {g['model']} | {g['strategy']} | {g['seed']} | {g['planned']} | {g['kept']} | "
            f"{g['attempts']} | {g['usage']['total_tokens']} | {_fmt(g['tokens_per_kept'], 1)} | "
            f"{g['usage'].get('cached_requests', 0)} of {g['usage'].get('requests', 0)} | {g['seconds']} |"
        )
    lines += [
        "",
        "LM tokens count requests the teacher computed; requests answered from the response cache cost none.",
        "",
        "## Timing (s)",
        "",
        "```",
        json.dumps(results["timing"], indent=1),
        "```",
        "",
        "## Plots",
        "",
    ]
    lines += [f"![{title}]({path})" for title, path in images]
    report = out_dir / "report.md"
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return report


def _knowledge_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The knowledge each strategy gives (improvement over its own control) and the power behind the size."""
    if not rows:
        return []
    effect = next((r["power"]["effect"] for r in rows if r.get("power")), None)
    lines = [
        "## Knowledge gain (improvement over the strategy's own control)",
        "",
        "A student trained on QA about unrelated articles learns the answer format but not the facts; the improvement "
        "over that control is what the QA taught about these documents. nll: the drop in held-out gold-answer NLL "
        "(nats per token); choice and margin: their rise (see above). Each gain is also split by whether the "
        "strategy's training answers state the question's gold answer: a gain on answers never stated is topic "
        "familiarity, not a fact the QA taught. Paired bootstrap 95% interval over seeds and questions; the "
        "detectable effect is the NLL gain the run resolves with 80% power at alpha 0.05, from the variance "
        "components (seed, question, residual) of the same matrix.",
        "",
        "| teacher | metric | quantity | questions | estimate | 95% CI | seeds | detectable (80%) | questions for "
        f"{'n/a' if effect is None else f'{effect:g}'} nats |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        what = f"{r['a']} gain (vs {r['b']})" if r["kind"] == "gain" else f"gain {r['a']} − gain {r['b']}"
        subset = r.get("subset", "all")
        power = r.get("power")
        needed = power["questions_needed"] if power else None
        lines.append(
            f"| {r['model']} | {r.get('metric', 'nll')} | {what} | {subset} ({r['n_questions']}) | {_fmt(r['diff'])} | "
            f"[{_fmt(r['low'])}, {_fmt(r['high'])}] | {r['n_seeds']} | "
            f"{_fmt(power['detectable_effect']) if power else ''} | {'' if needed is None else needed} |"
        )
    return [*lines, ""]


def _plots(results: dict[str, Any], plots: Path, out_dir: Path) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = []
    groups = results["groups"]
    names = list(groups)
    base = results["baselines"].get("base")
    ceilings = results["baselines"].get("teacher_open_book", {})

    # Metrics per student group with seed spread, floor and ceiling as lines.
    fig, axes = plt.subplots(1, 5, figsize=(20, 4))
    for ax, metric in zip(axes, ("em", "f1", "nll", "choice", "leaked"), strict=True):
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        if all(groups[n][metric]["mean"] is None for n in names):  # e.g. choice with compute_choice off
            ax.text(0.5, 0.5, "not measured in this run", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(METRIC_NAMES[metric], fontsize=9)
            continue
        means = [groups[n][metric]["mean"] or 0.0 for n in names]
        sds = [groups[n][metric]["sd"] or 0.0 for n in names]
        ax.bar(range(len(names)), means, yerr=sds, capsize=4, color="tab:blue")
        if base:
            value = base["leakage"]["leaked"] if metric == "leaked" else base["summary"].get(metric)
            if value is not None:
                ax.axhline(value, color="gray", linestyle="--", label="base")
        for teacher, ceiling in ceilings.items():
            value = ceiling["leakage"]["leaked"] if metric == "leaked" else ceiling["summary"].get(metric)
            if value is not None:
                ax.axhline(value, color="tab:green", linestyle=":", label=f"{teacher} open book")
        ax.set_title(METRIC_NAMES[metric], fontsize=9)
    if axes[0].get_legend_handles_labels()[0]:  # no base or ceiling line: nothing to explain
        axes[0].legend(fontsize=7)
    fig.tight_layout()
    images.append(("metrics per student", _save(fig, plots / "metrics.png", out_dir)))

    # F1 and NLL by where the gold answer lies.
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    positions = ("early", "middle", "late")
    width = 0.8 / max(len(names), 1)
    for ax, metric in zip(axes, ("f1", "nll"), strict=True):
        for i, name in enumerate(names):
            values = [groups[name]["by_position"][p][metric]["mean"] or 0.0 for p in positions]
            ax.bar([j + i * width for j in range(3)], values, width, label=name)
        ax.set_xticks([j + width * (len(names) - 1) / 2 for j in range(3)], positions)
        ax.set_title(f"{METRIC_NAMES[metric]} by answer position", fontsize=9)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    images.append(("by answer position", _save(fig, plots / "positions.png", out_dir)))

    # Training loss curves.
    fig, ax = plt.subplots(figsize=(7, 4))
    for student in results["students"]:
        ax.plot(student["train"]["losses"], label=student["key"], linewidth=1)
    ax.set_xlabel("logging step")
    ax.set_ylabel("training loss")
    # the explanation goes in the title: as the axis label it was longer than the axis and got cut
    ax.set_title("loss on answer tokens (distill: against the teacher's top-k)", fontsize=9)
    ax.legend(fontsize=6)
    fig.tight_layout()
    images.append(("training loss", _save(fig, plots / "loss.png", out_dir)))

    # Differences with their intervals, one panel per metric (their scales differ).
    diffs = results["differences"]
    if diffs:
        metrics = list(dict.fromkeys(d["metric"] for d in diffs))
        pairs = list(dict.fromkeys((d["model"], d["a"], d["b"]) for d in diffs))
        size = (4 * len(metrics), 0.45 * len(pairs) + 1.5)
        fig, axes = plt.subplots(1, len(metrics), figsize=size, sharey=True)
        axes = list(axes) if len(metrics) > 1 else [axes]
        for ax, metric in zip(axes, metrics, strict=True):
            for y, pair in enumerate(pairs):
                found = [d for d in diffs if (d["model"], d["a"], d["b"]) == pair and d["metric"] == metric]
                d = found[0] if found else None
                if d and d["diff"] is not None:
                    err = [[d["diff"] - d["low"]], [d["high"] - d["diff"]]]
                    ax.errorbar(d["diff"], y, xerr=err, fmt="o", capsize=3, color="tab:blue")
            ax.axvline(0, color="gray", linewidth=0.8)
            ax.set_title(METRIC_NAMES[metric], fontsize=9)
        axes[0].set_yticks(range(len(pairs)), [f"{m}: {a} − {b}" for m, a, b in pairs], fontsize=7)
        axes[0].invert_yaxis()
        fig.suptitle("paired differences a − b, 95% bootstrap CI over seeds and questions", fontsize=9)
        fig.tight_layout()
        images.append(("differences", _save(fig, plots / "differences.png", out_dir)))
    return images


def _save(fig, path: Path, out_dir: Path) -> str:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path.relative_to(out_dir))
