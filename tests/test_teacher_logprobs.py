"""Teacher logprobs end to end on a tiny model: generate with --teacher-logprobs, check the stored ids and top-k
log-probabilities against a recomputation by hand, export to cartridges-parquet, and read the file back with
a re-implementation of Cartridges' reader and `targets="logits"` batch construction (tests/cartridges_reader.py).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from cartridges_reader import collate, logits_loss, messages_to_element, read_conversations
from conftest_lm import tiny_lm_dir  # noqa: F401  (fixture)

from robustqa.errors import ConfigError, InputError
from robustqa.export import export_records
from robustqa.lm.fake import FakeLM
from robustqa.lm.hf import HFLM
from robustqa.registry import REGISTRY
from robustqa.runner import generate_records
from robustqa.teacher_logprobs import TeacherSettings, decode, flatten, require_teacher
from robustqa.types import Document

TEXT = (
    "The river floods every spring, when snow melts in the northern hills. Farmers plant rice on the wet "
    "plains after the water recedes. In 1887 a dam was built upstream to hold back the worst floods. The dam "
    "is 40 metres tall and holds a lake that supplies the town of Arden with water. "
) * 2
K = 20


@pytest.fixture(scope="module")
def run(tiny_lm_dir, tmp_path_factory, one_torch_thread):  # noqa: F811
    lm = HFLM(tiny_lm_dir, batch_size=4).load()
    strategy = REGISTRY.make_strategy("naive", min_tokens=24, max_tokens=40, max_tokens_a=12, max_tokens_b=10)
    out = tmp_path_factory.mktemp("teacher") / "qa.jsonl"
    summary = generate_records(
        [Document("river", TEXT)],
        strategy,
        lm,
        budget=3,
        seed=0,
        out=out,
        progress=False,
        teacher=TeacherSettings(K, 0.99),
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    return lm, out, rows, summary


def _by_hand(lm: HFLM, row: dict) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Ids, top-k ids and top-k logprobs of the answer after the prompt, from one unbatched forward pass."""
    tok = lm.tokenizer
    messages = [
        {"role": "system", "content": row["meta"]["answer_prompt"]["system"]},
        {"role": "user", "content": row["question"]},
    ]
    prompt = tok(
        tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True), add_special_tokens=False
    )
    answer = tok(row["answer"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    ids = torch.tensor([prompt["input_ids"] + answer])
    with torch.no_grad():
        logprobs = torch.log_softmax(lm._model(input_ids=ids).logits[0].float(), dim=-1)
    rows = logprobs[len(prompt["input_ids"]) - 1 : -1]
    top = rows.topk(K, dim=-1)
    return answer, top.indices.numpy(), top.values.numpy()


def test_every_kept_record_carries_teacher_logprobs_equal_to_a_recomputation(run):
    lm, _, rows, summary = run
    assert summary.kept == len(rows) and rows, "the tiny model must keep some pairs for the check to mean anything"
    for row in rows:
        stored = decode(row["meta"]["teacher"])
        answer, top_ids, top_lps = _by_hand(lm, row)
        assert stored.token_ids.tolist() == answer
        assert stored.shape == (len(answer), K)
        idx, ids, lps = flatten(top_ids, top_lps, 0.99)
        assert stored.token_idx.tolist() == idx.tolist()
        assert stored.token_id.tolist() == ids.tolist()
        assert np.max(np.abs(stored.logprobs - lps)) <= 1e-4
        # The tiny random model is far from confident: positions keep many of their K entries.
        assert len(stored.token_id) > len(answer)


def test_the_export_trains_through_cartridges_logits_path(run, tmp_path):
    lm, out, rows, _ = run
    path = tmp_path / "dataset.parquet"
    assert export_records(out, "cartridges-parquet", path) == len(rows)
    convos = read_conversations(path)
    assert len(convos) == len(rows)
    tok = lm.tokenizer
    elements = []
    for convo, row in zip(convos, rows):
        assert convo.system_prompt == row["meta"]["answer_prompt"]["system"]
        user, assistant = convo.messages
        assert user.token_ids is None and user.top_logprobs is None
        flat = assistant.top_logprobs
        assert flat.token_id.dtype == np.int64 and flat.logprobs.dtype == np.float32
        assert flat.token_idx.dtype == np.int64 and list(flat.shape) == [len(assistant.token_ids), K]
        element = messages_to_element(convo.messages, retokenize=False, tokenizer=tok)
        # Every entry sits on an assistant token; the first entry of each position is the teacher's top-1.
        positions = element.topk_token_idxs
        start = int(positions.min())
        assert element.input_ids[start : start + len(assistant.token_ids)].tolist() == list(assistant.token_ids)
        elements.append(element)
    batch = collate(elements, packed_seq_length=2048)
    assert batch["input_ids"].shape == (2048,)
    assert len(batch["topk_token_ids"]) == sum(len(e.topk_token_ids) for e in elements)
    # The teacher itself, fed the packed batch one element at a time, scores its own targets: a finite loss.
    with torch.no_grad():
        logits = lm._model(input_ids=batch["input_ids"][None], position_ids=batch["position_ids"][None]).logits
    assert torch.isfinite(logits_loss(logits, batch))


def test_the_fingerprint_changes_with_the_teacher_settings(run, tmp_path):
    lm = run[0]
    strategy = REGISTRY.make_strategy("naive", min_tokens=24, max_tokens=40, max_tokens_a=12, max_tokens_b=10)
    docs = [Document("river", TEXT)]
    plain = generate_records(docs, strategy, lm, 0, 0, tmp_path / "a.jsonl", progress=False)
    one = generate_records(
        docs, strategy, lm, 0, 0, tmp_path / "b.jsonl", progress=False, teacher=TeacherSettings(5, 0.99)
    )
    two = generate_records(
        docs, strategy, lm, 0, 0, tmp_path / "c.jsonl", progress=False, teacher=TeacherSettings(20, 0.99)
    )
    assert len({plain.fingerprint, one.fingerprint, two.fingerprint}) == 3


def test_a_backend_that_cannot_score_is_refused_before_any_work(tmp_path):
    class Server(FakeLM):
        can_score = False
        base_url = "http://gpu1:8000/v1"

    with pytest.raises(ConfigError, match=r"the server at http://gpu1:8000/v1 cannot return") as info:
        require_teacher(Server(), TeacherSettings(20))
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="between 1 and 255"):
        TeacherSettings(0).check()


def test_a_record_without_its_answer_prompt_is_named():
    from robustqa.teacher_logprobs import answer_messages

    with pytest.raises(InputError, match="record r1: no meta.answer_prompt"):
        answer_messages({}, "q", "r1")


def test_the_teacher_scores_the_assistant_turn_the_student_trains_on(monkeypatch):
    import robustqa.teacher_logprobs as teacher_logprobs
    from robustqa.teacher_logprobs import score_records
    from robustqa.types import QARecord

    rec = QARecord(
        "r1", "d", "When?", "1887", None, {}, "robust", "m", 0, "f", response='1887\n\nThe document says: "x"'
    )
    rec.meta["answer_prompt"] = {"system": "ctx"}
    lm = FakeLM(scorer=lambda req: [-1.0] * (len(req.continuation.split()) + 1))
    monkeypatch.setattr(teacher_logprobs, "encode", lambda score, settings, model: {"n": len(score.token_ids)})
    assert score_records([rec], lm, TeacherSettings(2, 0.99)) == 1
    assert [r.continuation for r in lm.score_calls] == [rec.messages[1]["content"]]
    assert rec.meta["teacher"] == {"n": 6}  # the turn's 5 words and the end of turn


def test_flatten_cuts_at_the_mass_as_cartridges_does():
    lps = np.log(np.array([[0.995, 0.004, 0.001], [0.5, 0.3, 0.1], [0.6, 0.395, 0.005]], dtype=np.float32))
    ids = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    idx, tid, lp = flatten(ids, lps, 0.99)
    # row 0 reaches the mass with one entry; row 1 never does (all 3 kept); row 2 with two.
    assert idx.tolist() == [0, 1, 1, 1, 2, 2]
    assert tid.tolist() == [1, 4, 5, 6, 7, 8]
    assert lp.dtype == np.float32
