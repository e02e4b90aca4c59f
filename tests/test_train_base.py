"""Fine-tuning an imported base model with LoRA / QLoRA: adapters in PEFT's layout, exact replay."""

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from lethe.cli import app
from lethe.data.tokenizer import train_tokenizer
from lethe.model.adapters import ADAPTER_DIR
from lethe.model.base import import_base
from lethe.model.presets import build_model
from lethe.train import replay, train
from lethe.train.config import TrainConfig
from train_helpers import FAST, make_workspace, weights

torch.set_num_threads(1)
LORA = FAST.replace(lora=True, lora_r=4, epochs=2)
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.setenv("LETHE_CACHE_DIR", str(tmp_path / "cache"))
    torch.use_deterministic_algorithms(True)
    workspace = make_workspace(tmp_path, n_qa=12)
    # A real chat model's tokenizer: ChatML, no {% generation %} block.
    tokenizer = train_tokenizer(["Where was Osric Tamberlo born? In Varnholt."] * 40, vocab_size=300)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.chat_template = CHATML
    source = tmp_path / "pretrained"
    eos = tokenizer.eos_token_id
    build_model("nano", len(tokenizer), bos_token_id=0, eos_token_id=eos, pad_token_id=2, seed=11).save_pretrained(
        source
    )
    tokenizer.save_pretrained(source)
    import_base(workspace, source, name="nanobase")
    yield workspace
    torch.use_deterministic_algorithms(False)


def _identical(a, b) -> bool:
    wa, wb = weights(Path(a.path)), weights(Path(b.path))
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_lora_on_a_base_keeps_a_peft_adapter_per_slice(ws):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    versions = train(ws, data="qa", base_model="nanobase", slices=2, config=LORA, seed=3, lineage="tuned")
    base_path = ws.ledger.base_model("nanobase").path
    lineage = ws.ledger.lineage("tuned")
    assert lineage.base == base_path and lineage.config["base_model"] == "nanobase"
    for version, parent in zip(versions, [base_path, versions[0].path], strict=True):
        adapter = Path(version.path) / ADAPTER_DIR
        config = json.loads((adapter / "adapter_config.json").read_text())
        assert config["base_model_name_or_path"] == parent and config["r"] == 4
        start = AutoModelForCausalLM.from_pretrained(parent, local_files_only=True)
        rebuilt = PeftModel.from_pretrained(start, adapter).merge_and_unload()
        published = AutoModelForCausalLM.from_pretrained(version.path, local_files_only=True)
        for (name, a), (_, b) in zip(rebuilt.state_dict().items(), published.state_dict().items(), strict=True):
            assert torch.allclose(a, b, atol=1e-6), name
    rows = json.loads(CliRunner().invoke(app, ["--home", str(ws.home), "versions", "--json"]).stdout)
    assert {r["base"] for r in rows} == {"nanobase"}


def test_exact_replay_of_a_lora_lineage_equals_training_without_the_documents(ws):
    original = train(ws, data="qa", base_model="nanobase", slices=2, config=LORA, seed=5, lineage="orig")
    plan = [ids for _, ids in ws.ledger.slices(original[0].lineage_id)]
    forgotten = plan[1][:2]
    replayed = replay(ws, "orig", forgotten)
    assert [v.slice_index for v in replayed] == [1] and replayed[0].parent_id == original[0].id
    fresh = train(
        ws,
        data="qa",
        base_model="nanobase",
        config=LORA,
        seed=5,
        lineage="fresh",
        slice_plan=[plan[0], [d for d in plan[1] if d not in forgotten]],
    )
    assert _identical(replayed[0], fresh[1]) and not _identical(replayed[0], original[1])
    # a document of the first slice: the replay restarts from the base itself
    again = replay(ws, "orig", plan[0][:1])
    assert [v.slice_index for v in again] == [0, 1] and again[0].parent_id is None


def test_qlora_trains_on_4bit_and_publishes_full_precision(ws):
    from safetensors.torch import load_file

    versions = train(ws, data="qa", base_model="nanobase", config=LORA.replace(qlora=True), seed=3, lineage="q")
    version = Path(versions[-1].path)
    config = json.loads((version / "config.json").read_text())
    assert "quantization_config" not in config
    tuned = load_file(str(version / "model.safetensors"))
    base = load_file(str(Path(ws.ledger.base_model("nanobase").path) / "model.safetensors"))
    assert all(t.dtype == torch.float32 for t in tuned.values())
    changed = [k for k in base if "proj" in k and not torch.equal(base[k], tuned[k])]
    assert changed, "the merged QLoRA adapter changed no projection"
    assert all(torch.equal(base[k], tuned[k]) for k in base if "norm" in k)  # only adapted layers move
    assert (version / ADAPTER_DIR / "adapter_model.safetensors").is_file()
    assert TrainConfig.from_dict(ws.ledger.slices(versions[-1].lineage_id)[0][0].config).qlora


def test_unknown_base_is_a_clear_error(ws):
    result = CliRunner().invoke(app, ["--home", str(ws.home), "train", "--base", "nope", "--lora", "--data", "qa"])
    assert result.exit_code == 2 and "no base model 'nope'" in result.output and "nanobase" in result.output


APPROXIMATE = ("retain_ft", "grad_ascent", "grad_diff", "kl", "l2sp", "npo", "simnpo", "idk", "dpo_idk")


def test_every_approximate_method_unlearns_a_base_derived_version_with_lora(ws):
    from lethe.forget.requests import create_request, run_request
    from lethe.forget.selectors import Selector

    versions = train(ws, data="qa", base_model="nanobase", config=LORA, seed=3, lineage="tuned")
    selector = Selector(docs=[str(d) for d in ws.ledger.collection_ids("qa")[:2]])
    for method in APPROXIMATE:
        request = create_request(ws, selector, method=method, config={"lora": True, "steps": 2, "lr": 1e-3})
        outcome = run_request(ws, request, publish=False, evaluate=False)
        assert outcome.status == "evaluated", method
        candidate = ws.ledger.resolve_version(outcome.version, allow_tainted=True)
        assert candidate.parent_id == versions[-1].id
        assert not _identical(candidate, versions[-1]), method


def test_receipt_and_audit_state_where_provenance_starts(ws):
    """A base-derived version's audit and signed receipt name the base by sha256 and say its
    pretraining data is not on record; a version trained from scratch has no such boundary."""
    from lethe.eval.suite import SuiteConfig
    from lethe.forget.receipt import build_receipt, render_html, sign
    from lethe.forget.requests import create_request, run_request
    from lethe.forget.selectors import Selector

    train(ws, data="qa", base_model="nanobase", config=LORA, seed=3, lineage="tuned")
    record = ws.ledger.base_model("nanobase")
    selector = Selector(docs=[str(d) for d in ws.ledger.collection_ids("qa")[:2]])
    request = create_request(ws, selector, method="exact")
    run_request(ws, request, suite=SuiteConfig(max_items=4, max_new_tokens=4))
    audit = ws.ledger.forget_request(request).audit
    assert audit["base_boundary"]["base_model"] == "nanobase"
    assert audit["base_boundary"]["weights_sha256"] == record.weights_sha256
    receipt = build_receipt(ws, request)
    boundary = receipt["base_model"]
    assert boundary["base_model"] == "nanobase" and boundary["pretraining_data"] == "not on record"
    assert boundary["weights_sha256"] == record.weights_sha256 and boundary["source_sha256"] == record.source_sha256
    assert record.weights_sha256 in receipt["remains"]["pretraining_data"]
    page = render_html(sign(ws, receipt))
    assert "where provenance starts" in page and record.source_sha256 in page

    scratch = train(ws, data="qa", preset_or_path="nano", config=FAST, seed=3, lineage="scratch")
    assert ws.ledger.base_boundary(scratch[-1].id) is None
