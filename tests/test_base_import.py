"""`lethe base add` of a local HF directory, and the clear errors for what is not a base model."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from lethe.cli import app
from lethe.data.tokenizer import train_tokenizer
from lethe.errors import ConflictError, InputError
from lethe.model.base import PRETRAINING_DATA, convert, import_base
from lethe.model.io import weights_sha256
from lethe.model.presets import build_model
from lethe.workspace import Workspace

CORPUS = ["Vorana Keltis was born in Marundel in 1931.", "Who wrote The Salt Ledger? Osric Tamberlo."] * 30


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LETHE_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def hf_dir(tmp_path):
    tokenizer = train_tokenizer(CORPUS, vocab_size=400, min_frequency=2)
    model = build_model("nano", len(tokenizer), bos_token_id=0, eos_token_id=1, pad_token_id=2, seed=3)
    path = tmp_path / "my-base"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / "README.md").write_text("---\nlicense: mit\n---\n# a tiny base\n")
    return path


def test_hf_directory_is_converted_recorded_and_cached(hf_dir, tmp_path):
    ws = Workspace.from_env().init()
    record, created = import_base(ws, hf_dir)
    assert created and record.name == "my-base" and record.license == "mit"
    assert record.pretraining_data == PRETRAINING_DATA
    assert record.weights_sha256 == weights_sha256(record.path)
    events = ws.ledger.events(kind="base.added")
    assert events and events[0].data["pretraining_data"] == "not on record"
    # the same source again: the cache answers and the ledger records it once
    again, created = import_base(ws, hf_dir)
    assert not created and again.id == record.id
    assert len(list((tmp_path / "cache" / "bases").iterdir())) == 1
    # the converted directory reloads in plain transformers, weights unchanged
    from transformers import AutoModelForCausalLM

    reloaded = AutoModelForCausalLM.from_pretrained(record.path, local_files_only=True)
    original = AutoModelForCausalLM.from_pretrained(hf_dir, local_files_only=True)
    assert record.parameters == sum(p.numel() for p in original.parameters())
    for (name, a), (_, b) in zip(reloaded.state_dict().items(), original.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_other_weights_under_a_taken_name_conflict(hf_dir, tmp_path):
    ws = Workspace.from_env().init()
    import_base(ws, hf_dir, name="b")
    other = tmp_path / "other"
    build_model("nano", 400, seed=9).save_pretrained(other)
    train_tokenizer(CORPUS, vocab_size=400, min_frequency=2).save_pretrained(other)
    with pytest.raises(ConflictError, match="exists already"):
        import_base(ws, other, name="b")
    assert [b.name for b in ws.ledger.base_models()] == ["b"]


def test_cli_add_and_ls(initialized_workspace, hf_dir):
    runner = CliRunner()
    added = runner.invoke(app, ["base", "add", str(hf_dir), "--name", "tinybase", "--json"])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(app, ["base", "ls", "--json"])
    rows = json.loads(listed.stdout)
    assert [r["name"] for r in rows] == ["tinybase"]
    assert rows[0]["pretraining_data"] == "not on record" and rows[0]["kind"] == "hf"


def test_a_file_that_is_neither(initialized_workspace, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    result = CliRunner().invoke(app, ["base", "add", str(path)])
    assert result.exit_code == 2
    assert "neither a GGUF file" in result.output and "notes.txt" in result.output
    assert Workspace.from_env().ledger.base_models() == []


def test_a_directory_with_only_pickle_weights(tmp_path):
    path = tmp_path / "pickled"
    path.mkdir()
    (path / "config.json").write_text("{}")
    torch.save({"w": torch.zeros(2)}, path / "pytorch_model.bin")
    with pytest.raises(InputError, match="only pickle weights") as error:
        convert(path)
    assert "pickled" in str(error.value)


def test_an_unsupported_gguf_quantisation(tmp_path):
    import gguf

    path = tmp_path / "odd.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_tokenizer_model("gpt2")
    q8k = gguf.GGMLQuantizationType.Q8_K
    _, size = gguf.GGML_QUANT_SIZES[q8k]
    writer.add_tensor("token_embd.weight", np.zeros((1, size), dtype=np.uint8), raw_dtype=q8k)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(InputError, match="unsupported GGUF quantisation Q8_K") as error:
        convert(path)
    assert "odd.gguf" in str(error.value)


def test_a_damaged_gguf_file(tmp_path):
    path = tmp_path / "cut.gguf"
    path.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 5)
    with pytest.raises(InputError, match="not a readable GGUF file"):
        convert(path)
