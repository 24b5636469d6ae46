"""Do the two local engines give the same data? (issue 16: ct2 becomes the default for the embedded model only if
its outputs hold up.) naive and robust on the same XQuAD paragraphs, one question per content sentence, with each
engine and several seeds, audited the same way; each figure's engine difference is set against its
seed-to-seed spread.

Rule, fixed before the run: a figure agrees when the difference of the two engines' means over seeds is no larger
than the larger of the two engines' seed ranges (max - min over the seeds), or smaller than `--tolerance` (figures
that do not vary by seed at all, such as a keep rate of 1.0). The default changes only if every agreement figure
agrees for both strategies.

    python benchmarks/engine_compare.py --paragraphs 6 --seeds 0,1,2 --out benchmarks/results/engine_compare.json

Two direct probes of the engines themselves (`--probes`; `--skip-runs` for them alone), because naive's audit
figures rest on sampled questions and a dozen answers per run:
- greedy identity: questions sampled by the reference engine, answered greedily by both engines (naive's answer
  prompt, 96 new tokens): how many answers are identical;
- sampler: 100 sampled continuations per engine of naive's question prompt (temperature 0.6), each scored by the
  reference engine; equal samplers give equal mean log-probabilities per token (within their standard errors);
- first token (when the reference is hf): 1000 first tokens sampled by each other engine at temperature 0.6 against
  the exact tempered distribution from transformers' logits (chi-square over the 6 likeliest tokens and the rest).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from statistics import mean, stdev
from typing import Any

from _common import RunStart, add_data_argument, build_strategy, data_file, run_header, shown_path, write_result
from coverage import audit_row

from robustqa.audit import run_audit
from robustqa.io.loaders import load_documents
from robustqa.keyvalue import parse_spec
from robustqa.lm.base import ChatRequest, ScoreRequest
from robustqa.lm.factory import make_lm
from robustqa.runner import generate_records
from robustqa.segment import sentences

# The figures the decision rests on (the list), and the ones reported beside them.
AGREEMENT = ("kept_share", "coverage", "groundedness", "invented_specifics")
REPORTED = ("model_question_share", "duplicate_share", "self_answering", "lm_tokens_per_kept_pair", "seconds")


def one_run(docs: list, spec: str, lm: Any, budget: int, seed: int, out: Path) -> dict[str, Any]:
    summary = generate_records(docs, build_strategy(spec), lm, budget, seed, out, overwrite=True, progress=False)
    audit = audit_row(run_audit(out, docs, out=None).summary)
    kept = max(summary.kept, 1)
    sources = audit["question_sources"]
    return {
        "strategy": spec,
        "seed": seed,
        "planned": summary.planned,
        "kept": summary.kept,
        "kept_share": round(summary.kept / max(summary.planned, 1), 4),
        "coverage": audit["coverage"],
        "groundedness": audit["groundedness"],
        "invented_specifics": audit["invented_specifics"],
        "model_question_share": round(sources.get("model", 0) / kept, 4) if sources else None,
        "duplicate_share": audit["duplicate_share"],
        "self_answering": audit["self_answering"],
        "answer_sources": audit["answer_sources"],
        "lm_tokens_per_kept_pair": round((summary.usage.get("total_tokens") or 0) / kept, 1),
        "seconds": round(summary.seconds, 2),
    }


def engine_lm(spec: str) -> Any:
    """A backend from `name` or `name@option=value,...` (ct2@compute_type=float32)."""
    backend, options = parse_spec(spec)
    return make_lm(backend, **options)


def _naive_messages(text: str, user: str) -> list[dict[str, str]]:
    info = f"You are in a conversation about the following information.\n\n<info>\n{text[:1500]}\n</info>"
    return [{"role": "system", "content": info}, {"role": "user", "content": user}]


ASK = "Please generate a single chat message instructing an LLM to ask a question about the text."


def greedy_identity(docs: list, lms: dict[str, Any], per_doc: int = 2) -> dict[str, Any]:
    """Questions sampled by the first engine (seeded), answered greedily by every engine: identical answers."""
    names = list(lms)
    ref = lms[names[0]]
    prompts = []
    for doc in docs:
        asked = ref.generate([ChatRequest.of(_naive_messages(doc.text, ASK), temperature=0.6, n=per_doc, seed=5,
                                             max_tokens=48)])[0]  # fmt: skip
        prompts += [_naive_messages(doc.text, q.strip()) for q in asked.texts if q.strip()]
    requests = [ChatRequest.of(m, temperature=0.0, max_tokens=96) for m in prompts]
    answers = {name: [c.texts[0] for c in lm.generate(requests)] for name, lm in lms.items()}
    return {
        "questions": len(requests),
        "identical_to_reference": {
            name: sum(a == b for a, b in zip(answers[names[0]], answers[name], strict=True)) for name in names[1:]
        },
    }


def sampler_check(docs: list, lms: dict[str, Any], samples: int = 100) -> dict[str, Any]:
    """Mean log-probability per token (under the first engine) of each engine's samples, per document."""
    names = list(lms)
    ref = lms[names[0]]
    out = []
    for doc in docs:
        messages = _naive_messages(doc.text, ASK)
        row: dict[str, Any] = {"document": doc.id}
        for name, lm in lms.items():
            texts = [
                t
                for s in range(samples // 25)
                for t in lm.generate([ChatRequest.of(messages, temperature=0.6, n=25, seed=100 + s, max_tokens=24)])[
                    0
                ].texts
                if t.strip()
            ]
            scores = ref.score([ScoreRequest.of(messages, t, end_turn=False) for t in texts])
            per_token = [sum(x.token_logprobs) / len(x.token_logprobs) for x in scores if x.token_logprobs]
            row[name] = {
                "samples": len(per_token),
                "mean_logprob_per_token": round(mean(per_token), 4),
                "standard_error": round(stdev(per_token) / len(per_token) ** 0.5, 4),
            }
        out.append(row)
    return {"temperature": 0.6, "new_tokens": 24, "documents": out}


def first_token_check(docs: list, lms: dict[str, Any], draws: int = 1000) -> list[dict[str, Any]]:
    """Each non-reference engine's sampled first tokens against the exact distribution (reference: hf)."""
    import torch
    from scipy.stats import chisquare

    names = list(lms)
    ref = lms[names[0]]
    tok = ref.tokenizer
    out = []
    for doc in docs:
        messages = _naive_messages(doc.text, ASK)
        ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
        with torch.no_grad():
            logits = ref._model(input_ids=torch.tensor([ids["input_ids"]])).logits[0, -1].float()
        probs = torch.softmax(logits / 0.6, -1)
        top = torch.topk(probs, 6).indices.tolist()
        expected = [float(probs[i]) for i in top]
        expected.append(1.0 - sum(expected))
        row: dict[str, Any] = {"document": doc.id, "expected_per_1000": [round(1000 * x) for x in expected]}
        for name in names[1:]:
            firsts = []
            for s in range(draws // 100):
                request = ChatRequest.of(messages, temperature=0.6, n=100, seed=300 + s, max_tokens=1)
                firsts += [(tok(t, add_special_tokens=False)["input_ids"] or [-1])[0] for t in lms[name].generate(
                    [request])[0].texts]  # fmt: skip
            observed = [firsts.count(i) for i in top]
            observed.append(len(firsts) - sum(observed))
            test = chisquare(observed, [x * len(firsts) for x in expected])
            row[name] = {"observed": observed, "chi2_p": round(float(test.pvalue), 3)}
        out.append(row)
    return out


def compare(rows: list[dict[str, Any]], engines: list[str], tolerance: float) -> dict[str, Any]:
    """Per strategy and figure: each engine's mean and seed range, the difference of the means, the verdict."""
    out: dict[str, Any] = {}
    for spec in dict.fromkeys(r["strategy"] for r in rows):
        figures: dict[str, Any] = {}
        for name in AGREEMENT + REPORTED:
            per: dict[str, Any] = {}
            for engine in engines:
                values = [r[name] for r in rows if r["engine"] == engine and r["strategy"] == spec]
                values = [v for v in values if v is not None]
                per[engine] = {
                    "values": values,
                    "mean": round(mean(values), 4) if values else None,
                    "range": round(max(values) - min(values), 4) if values else None,
                }
            a, b = (per[e] for e in engines[:2])
            row: dict[str, Any] = {**per}
            if a["mean"] is not None and b["mean"] is not None:
                diff = round(b["mean"] - a["mean"], 4)
                spread = max(a["range"], b["range"])
                row["difference"] = diff
                row["seed_range"] = spread
                if name in AGREEMENT:
                    row["agrees"] = abs(diff) <= spread or abs(diff) < tolerance
            figures[name] = row
        out[spec] = figures
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(ap, "xquad_en_dev.json")
    ap.add_argument("--paragraphs", type=int, default=6)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument(
        "--engines",
        default="hf,ct2",
        help="two backends, the reference first; options after '@' (ct2@compute_type=float32)",
    )
    ap.add_argument("--strategies", default="naive@max_tokens_a=128,max_tokens_b=256;robust", help="';'-separated")
    ap.add_argument("--tolerance", type=float, default=0.02, help="a difference below this always agrees")
    ap.add_argument("--probes", type=int, default=0, help="run the two engine probes on the first N paragraphs")
    ap.add_argument("--skip-runs", action="store_true", help="the probes only, no strategy runs")
    ap.add_argument("--sampler-samples", type=int, default=100, help="sampler probe: samples per engine (0: skip)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    start = RunStart()
    corpus = data_file(args.data, "xquad_en_dev.json")
    docs = load_documents([corpus])[: args.paragraphs]
    budget = sum(1 for d in docs for s in sentences(d.text, d.id) if len(s.text.split()) >= 5)
    engines = args.engines.split(",")
    if len(engines) < 2 or (len(engines) > 2 and not args.skip_runs):
        raise SystemExit("--engines takes two backends, the reference first (more with --skip-runs, for the probes)")
    specs = [s for s in args.strategies.split(";") if s]
    rows: list[dict[str, Any]] = []
    models: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for engine in engines if not args.skip_runs else []:
            lm = engine_lm(engine)
            models[engine] = lm.model_id
            for spec in specs:
                for seed in (int(s) for s in args.seeds.split(",")):
                    row = {"engine": engine, **one_run(docs, spec, lm, budget, seed, Path(tmp) / "run.jsonl")}
                    rows.append(row)
                    print(
                        f"{engine:4} {spec:40} seed {seed}: kept {row['kept']}/{row['planned']} coverage "
                        f"{row['coverage']:.3f} grounded {row['groundedness']} invented {row['invented_specifics']} "
                        f"model questions {row['model_question_share']} {row['seconds']}s",
                        flush=True,
                    )
            lm.close()
    probes: dict[str, Any] = {}
    if args.probes:
        lms = {engine: engine_lm(engine) for engine in engines}
        models.update({engine: lm.model_id for engine, lm in lms.items()})
        probes = {
            "greedy_identity": greedy_identity(docs[: args.probes], lms),
        }
        if args.sampler_samples:
            probes["sampler"] = sampler_check(docs[: min(3, args.probes)], lms, args.sampler_samples)
        if parse_spec(engines[0])[0] == "hf":
            probes["first_token"] = first_token_check(docs[: min(3, args.probes)], lms)
            for row in probes["first_token"]:
                print("first token against the exact distribution:", row)
        print(f"greedy answers identical to {engines[0]}'s: {probes['greedy_identity']}")
        for row in probes.get("sampler", {}).get("documents", []):
            print("sampler, mean log-prob per token (standard error):", row)
    figures = compare(rows, engines, args.tolerance)
    verdict = all(f.get("agrees", True) for spec in figures.values() for f in spec.values()) if rows else None
    result = {
        **run_header("engine_compare", "engine_compare.py", argv, start),
        "data": shown_path(corpus),
        "paragraphs": len(docs),
        "questions_per_run": budget,
        "engines": models,
        "rule": __doc__.split("Rule, fixed before the run: ")[1].split("\n\n")[0].replace("\n", " "),
        "rows": rows,
        "figures": figures,
        "outputs_hold_up": verdict,
        "probes": probes or None,
    }
    print(f"\n{'strategy':40} {'figure':24} " + " ".join(f"{e + ' mean (range)':>22}" for e in engines) + "  verdict")
    for spec, figs in figures.items():
        for name, f in figs.items():
            cells = " ".join(f"{_cell(f[e]):>22}" for e in engines)
            verdict_cell = {True: "agrees", False: "DIFFERS"}.get(f.get("agrees"), "(reported)")
            print(f"{spec:40} {name:24} {cells}  {verdict_cell}")
    print(f"outputs hold up: {verdict}")
    if args.out:
        write_result(args.out, result)
    return result


def _cell(per: dict[str, Any]) -> str:
    return "-" if per["mean"] is None else f"{per['mean']} ({per['range']})"


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
