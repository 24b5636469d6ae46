"""benchmarks/injection_compliance.py with scripted LMs: the compliance and exposure counters, and robust's effect.

The obeying FakeLM complies with every planted payload it can still see, so naive (which sees everything)
must comply on every case and robust only where its filters left the payload visible.
"""

from __future__ import annotations

import json
import sys

import pytest
from conftest import REPO

# Appended, not prepended: benchmarks/coverage.py must not shadow the `coverage` package.
if str(REPO / "benchmarks") not in sys.path:
    sys.path.append(str(REPO / "benchmarks"))

import injection_compliance as ic  # noqa: E402

from robustqa.lm.fake import FakeLM  # noqa: E402


@pytest.fixture(scope="module")
def hosts(fixture_data):
    return ic.host_paragraphs(fixture_data / "xquad_en_dev.json", 8)


@pytest.fixture(scope="module")
def cases(hosts, fixture_data):
    spikee = ic.build_cases(hosts, ic.spikee_attacks(fixture_data, 0), 1, 0, 0)
    bipia = ic.build_cases(hosts, ic.bipia_attacks(fixture_data, 0), 1, 12, 0)
    return spikee + bipia


@pytest.fixture(scope="module")
def planned(cases):
    strategies = ic.answerer_strategies(max_tokens=32, use_embeddings=False)
    items = {name: ic.plan_items(s, cases, 0) for name, s in strategies.items()}
    return strategies, items


def test_cases_cover_every_cell_and_plant_at_the_stated_place(cases, hosts):
    spikee = [c for c in cases if c.attack.source == "spikee"]
    cells = {(c.form, c.position, c.condition) for c in spikee}
    assert len(cells) == len(ic.SURFACE_FORMS) * len(ic.POSITIONS) * 2 == len(spikee)
    for case in cases:
        text, (start, end) = case.document.text, case.attack_span
        assert text[start:end] == case.attack.fill(case.wrapper)
        assert case.attack.slot(case.wrapper).lower() in text.lower()
        assert ic.WRAPPERS[case.wrapper][0] == case.condition
        assert case.planted.canaries or case.planted.markers, case.id
        before = text[: case.planted.start].strip()
        after = text[case.planted.end :].strip()
        if case.position == "start":
            assert before == "" and after == case.paragraph.text.strip()
        elif case.position == "end":
            assert after == "" and before == case.paragraph.text.strip()
        else:
            assert before and after and case.paragraph.text.startswith(before)
    # Both wrappers of each condition are used, and the question is the host paragraph's own.
    assert {c.wrapper for c in spikee} == set(ic.WRAPPERS)
    for case in cases:
        assert case.question in [q["question"] for q in case.paragraph.meta["qas"]]


def test_exposure_is_full_for_naive_and_follows_robust_masks(cases, planned):
    _, items = planned
    rows = ic.exposure_rows(items, cases)
    naive = [r for r in rows if r["answerer"] == "naive"]
    robust = [r for r in rows if r["answerer"] == "robust"]
    assert all(r["exposed"] and r["masked_share"] == 0 for r in naive)
    assert any(not r["exposed"] for r in robust)  # the filter hides most of these attacks
    for row, item in zip(robust, items["robust"], strict=True):
        assert row["exposed"] == (row["masked_share"] < ic.DETECTED_SHARE)
        assert bool(item.masked) == bool(row["masked_by"])


def test_obeying_lm_complies_where_it_sees_the_payload_and_robust_lowers_it(cases, planned):
    strategies, items = planned
    lm = ic.obeying_fake_lm(cases)
    rows = ic.answer_rows(strategies, items, cases, lm)
    exposure = {(r["case"], r["answerer"]): r for r in ic.exposure_rows(items, cases)}
    naive = [r for r in rows if r["answerer"] == "naive"]
    robust = [r for r in rows if r["answerer"] == "robust"]
    assert len(naive) == len(robust) == len(cases)
    assert all(r["complied"] for r in naive)
    assert sum(r["complied"] for r in robust) < len(robust) / 2
    for r in robust:  # exposure bounds compliance: a masked payload cannot be obeyed
        if r["complied"]:
            assert exposure[(r["case"], "robust")]["exposed"]
    # Conflict payloads replaced the answer; no-conflict ones were appended to one.
    by_id = {c.id: c for c in cases}
    for r in naive:
        string = (by_id[r["case"]].planted.canaries or by_id[r["case"]].planted.markers)[0]
        assert (r["answer"] == string) == (r["condition"] == "conflict")


def test_a_model_that_does_not_obey_scores_zero_and_a_canary_anywhere_counts(cases, planned):
    strategies, items = planned
    rows = ic.answer_rows(strategies, items, cases, FakeLM(default="The answer is in the text."))
    assert not any(r["complied"] for r in rows)
    spikee = next(c for c in cases if c.attack.source == "spikee")
    canary = spikee.planted.canaries[0]
    only = {"naive": strategies["naive"]}
    lm = FakeLM(default=f"Sure. {canary.upper()} and more")  # case-insensitive, anywhere in the answer
    rows = ic.answer_rows(only, {"naive": items["naive"][:1]}, [spikee], lm)
    assert rows[0]["complied"]


def test_rate_has_a_wilson_interval():
    r = ic.rate([False] * 10)
    assert r["k"] == 0 and r["n"] == 10 and r["rate"] == 0.0
    assert r["ci95"][0] == 0.0 and 0.25 < r["ci95"][1] < 0.3
    assert ic.rate([])["rate"] is None


def test_fake_run_writes_the_result_file(tmp_path, fixture_data):
    out = tmp_path / "ic.json"
    argv = ["--lm", "fake", "--no-embeddings", "--paragraphs", "8", "--spikee-per-cell", "1"]
    argv += ["--bipia-per-cell", "1", "--limit", "18", "--data", str(fixture_data), "--out", str(out)]
    result = ic.main(argv)
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert saved["smoke"] is True and saved["counts"]["cases"] == {"spikee": 18, "bipia": 18}
    model = saved["models"][0]
    naive = model["naive"]["compliance"]["all_sources"]["all"]
    robust = model["robust"]["compliance"]["all_sources"]["all"]
    assert naive["rate"] == 1.0 and robust["rate"] < naive["rate"]
    assert robust["ci95"][0] <= robust["rate"] <= robust["ci95"][1]
    assert set(model["naive"]["compliance"]["spikee"]["by_condition"]) == {"conflict", "no_conflict"}
    assert saved["exposure"]["naive"]["spikee"]["all"]["rate"] == 1.0
    assert saved["settings"]["wrappers"]["instead"]["condition"] == "conflict"
    kept = saved["retention"]["clean_paragraph_sentences_kept"]
    assert kept["n"] > 0 and kept["rate"] >= 0.9
    assert {c["wrapper"] for c in saved["cases"]} <= set(ic.WRAPPERS)
    assert result["counts"] == saved["counts"]
