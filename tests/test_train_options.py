"""Training options: LoRA adapters (merged into every version) and bf16 autocast."""

from pathlib import Path

import pytest
import torch

from lethe.train import replay, train
from train_helpers import FAST, make_workspace, weights

torch.set_num_threads(1)


@pytest.fixture
def ws(tmp_path):
    return make_workspace(tmp_path, n_qa=12)


def test_lora_versions_are_merged_full_models_and_replay_exactly(ws):
    config = FAST.replace(lora=True, lora_r=4, lr=1e-2)
    original = train(ws, data="qa", preset_or_path="nano", slices=2, config=config, lineage="lora")
    merged = weights(Path(original[-1].path))
    assert not any("lora" in key for key in merged)
    first = weights(Path(original[0].path))
    assert not torch.equal(
        first["model.layers.0.self_attn.q_proj.weight"], merged["model.layers.0.self_attn.q_proj.weight"]
    )
    assert torch.equal(first["model.embed_tokens.weight"], merged["model.embed_tokens.weight"])  # frozen
    plan = [ids for _, ids in ws.ledger.slices(original[0].lineage_id)]
    replayed = replay(ws, "lora", [plan[1][0]])
    fresh = train(
        ws, data="qa", preset_or_path="nano", config=config, lineage="fresh", slice_plan=[plan[0], plan[1][1:]]
    )
    assert replayed[-1].weights_sha256 == fresh[-1].weights_sha256


def test_bf16_autocast_trains(ws):
    [fp32] = train(ws, data="qa", preset_or_path="nano", config=FAST.replace(epochs=3))
    [bf16] = train(ws, data="qa", preset_or_path="nano", config=FAST.replace(epochs=3), bf16=True)
    a, b = weights(Path(fp32.path)), weights(Path(bf16.path))
    assert all(t.dtype == torch.float32 for t in b.values())  # weights stay fp32
    assert not torch.equal(a["lm_head.weight"], b["lm_head.weight"])
    loss = ws.ledger.run(bf16.run_id).metrics["slices"][0]["final_loss"]
    assert 0 < loss < ws.ledger.run(fp32.run_id).metrics["slices"][0]["final_loss"] + 0.5
    assert ws.ledger.slices(bf16.lineage_id)[0][0].config["bf16"] is True
