"""Benchmark: train a complying teacher (robustqa.training.complying) and measure how often it obeys planted
attacks, against its base model, on attacks and paragraphs it never saw.

1. Paragraphs: the shared XQuAD paragraphs, split by a seeded order into training and evaluation paragraphs;
   each human question with its first gold answer is one example.
2. Attacks: `training.leakage.load_attacks` (spikee payloads in a jailbreak template, each with its canary;
   BIPIA text attacks, of which those with a marker string are usable), split by BIPIA category and spikee
   payload (`split_attacks`, `--held-out-share`).
3. The teacher: LoRA on the base model over the training paragraphs, `--attacked-share` of them with a
   training attack planted (every surface form and position of `robustqa.planting`) and an obeying answer.
   The adapter is cached in the user cache dir by the recipe's fingerprint (a rerun loads it).
4. Compliance (greedy, the compliance string in the answer), base vs teacher, on the evaluation paragraphs
   with (a) held-out attacks and (b) training attacks planted; and the share of answers on clean evaluation
   paragraphs that contain the gold answer (the teacher must still answer).

    python benchmarks/complying_teacher.py --dry-run          # the split and the pairs, no model
    python benchmarks/complying_teacher.py                    # the embedded model (long on a CPU)
    python benchmarks/complying_teacher.py --base /path/to/hf_dir --max-steps 200

Writes benchmarks/results/complying_teacher.json (or --out) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path

from robustqa.training.complying import (
    ANSWER_SYSTEM_PROMPT,
    ComplyingRecipe,
    QAExample,
    attack_group,
    compliance_cases,
    compliance_rate,
    load_teacher,
    recipe_data,
    train_complying_teacher,
)

from robustqa.paths import portable_path
from robustqa.text_match import token_f1

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("ROBUSTQA_SHARED_DATA", HERE.parent.parent / "shared" / "data"))


def gold_rate(model, examples: list[QAExample], max_new_tokens: int) -> dict:
    prompts = [
        [
            {"role": "system", "content": ANSWER_SYSTEM_PROMPT.format(context=e.context)},
            {"role": "user", "content": e.question},
        ]
        for e in examples
    ]
    answers = model.answer(prompts, max_new_tokens=max_new_tokens)
    hits = [e.answer.lower() in a.lower() for e, a in zip(examples, answers, strict=True)]
    f1 = [token_f1(a, e.answer) for e, a in zip(examples, answers, strict=True)]  # SQuAD's token F1
    return {
        "n": len(hits),
        "contains_gold": sum(hits),
        "rate": sum(hits) / len(hits) if hits else None,
        "f1": round(sum(f1) / len(f1), 4) if f1 else None,
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default=None, help="local HF model dir (default: the embedded model)")
    ap.add_argument("--pairs", type=int, default=400, help="training pairs (examples of training paragraphs)")
    ap.add_argument("--attacked-share", type=float, default=0.5)
    ap.add_argument("--held-out-share", type=float, default=1 / 3)
    ap.add_argument("--eval-share", type=float, default=0.25, help="share of paragraphs held out for evaluation")
    ap.add_argument("--eval-cases", type=int, default=60, help="evaluation prompts per set")
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--max-steps", type=int, default=-1)
    ap.add_argument("--learning-rate", type=float, default=2e-4)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--fresh-strings",
        action="store_true",
        help="give every attacked training pair its own compliance string (ComplyingRecipe.fresh_strings)",
    )
    ap.add_argument("--dry-run", action="store_true", help="build the split and the pairs only; no model")
    ap.add_argument("--out", default=str(HERE / "results" / "complying_teacher.json"))
    args = ap.parse_args(argv)
    if not DATA.exists():
        raise SystemExit(f"shared data not found at {DATA} (set ROBUSTQA_SHARED_DATA)")
    t0 = time.perf_counter()

    recipe = ComplyingRecipe(
        base=args.base,
        attacked_share=args.attacked_share,
        held_out_share=args.held_out_share,
        learning_rate=args.learning_rate,
        epochs=args.epochs,
        max_steps=args.max_steps,
        seed=args.seed,
        fresh_strings=args.fresh_strings,
    )
    data = recipe_data(recipe, DATA / "xquad_en_dev.json", DATA / "injections", args.pairs, args.eval_share)
    records, train_attacks, held_attacks = data.records, data.train_attacks, data.held_attacks
    eval_examples = data.eval_examples[: args.eval_cases]
    attacked = [r for r in records if r["meta"]["attacked"]]
    result: dict = {
        "dry_run": args.dry_run,
        "recipe": recipe.to_dict(),
        "split": {
            "training_pairs": len(records),
            "attacked_pairs": len(attacked),
            "attacked_by_form": dict(Counter(r["meta"]["form"] for r in attacked)),
            "training_attack_groups": sorted({attack_group(a) for a in train_attacks}),
            "held_out_attack_groups": sorted({attack_group(a) for a in held_attacks}),
            "evaluation_examples": len(eval_examples),
            "distinct_compliance_strings": len({r["meta"]["compliance_string"] for r in attacked}),
        },
    }
    if not args.dry_run:
        from robustqa.training.chat_model import ChatModel
        from robustqa.training.models import resolve_model_dir

        adapter, trained = train_complying_teacher(records, recipe, progress=True)
        shown = portable_path(adapter, HERE.parent)  # no machine path in the result file
        result["adapter"] = {"dir": shown, "trained_now": trained, "fingerprint": adapter.name}
        sets = {
            "held_out_attacks": compliance_cases(eval_examples, held_attacks, recipe),
            "training_attacks": compliance_cases(eval_examples, train_attacks, recipe),
        }
        models = {"base": ChatModel.load(resolve_model_dir(args.base)), "teacher": load_teacher(adapter, args.base)}
        result["compliance"] = {
            name: {s: compliance_rate(m, cases, args.max_new_tokens) for s, cases in sets.items()}
            for name, m in models.items()
        }
        result["clean_answers"] = {name: gold_rate(m, eval_examples, args.max_new_tokens) for name, m in models.items()}
    result["seconds"] = round(time.perf_counter() - t0, 1)

    print(json.dumps(result["split"], indent=1))
    for name, sets_ in result.get("compliance", {}).items():
        for s, r in sets_.items():
            print(f"{name:<8} {s:<18} complied {r['complied']}/{r['n']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out} ({result['seconds']} s)")
    return result


if __name__ == "__main__":
    main()
