"""LoRA adapters and QLoRA on a 4-bit nano model (bitsandbytes on the CPU)."""

import pytest
import torch

from lethe.errors import InputError
from lethe.model.lora import apply_lora, is_4bit, load_4bit, merge_lora, merge_qlora
from lethe.model.presets import build_model

torch.set_num_threads(1)
VOCAB = 300


@pytest.fixture
def base_dir(tmp_path):
    build_model("nano", VOCAB, seed=0).save_pretrained(tmp_path / "base")
    return tmp_path / "base"


def _batch():
    return torch.randint(7, VOCAB, (4, 16), generator=torch.Generator().manual_seed(0))


def _train(model, steps, lr=1e-2):
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr)
    batch, losses = _batch(), []
    for _ in range(steps):
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


def test_lora_trains_adapters_only_and_merges():
    peft_model = apply_lora(build_model("nano", VOCAB), r=4, alpha=8)
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    losses = _train(peft_model, 4)
    assert losses[-1] < losses[0]
    peft_model.eval()
    with torch.no_grad():
        expected = peft_model(input_ids=_batch()).logits
        merged = merge_lora(peft_model)
        assert type(merged).__name__ == "LlamaForCausalLM"
        assert not any("lora_" in n for n, _ in merged.named_parameters())
        torch.testing.assert_close(merged(input_ids=_batch()).logits, expected, rtol=1e-4, atol=1e-4)


def test_lora_init_is_seeded():
    a = apply_lora(build_model("nano", VOCAB), seed=1)
    b = apply_lora(build_model("nano", VOCAB), seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


def test_unknown_target_module_is_a_clear_error():
    with pytest.raises(InputError, match="no layers named"):
        apply_lora(build_model("nano", VOCAB), target_modules=["c_attn"])


def test_qlora_loss_moves_and_merges_into_full_precision(base_dir):
    model = load_4bit(base_dir)
    assert is_4bit(model) and model.training
    peft_model = apply_lora(model, r=8, alpha=16)
    _train(peft_model, 1)  # lora_B starts at zero: after one step every adapter gets gradients
    peft_model(input_ids=_batch(), labels=_batch()).loss.backward()
    first_block = [p.grad for n, p in peft_model.named_parameters() if "layers.0." in n and "lora_A" in n]
    assert first_block and all(g is not None and g.abs().sum() > 0 for g in first_block)
    peft_model.zero_grad()
    losses = _train(peft_model, 6)
    assert losses[-1] < losses[0] - 0.1, losses
    with pytest.raises(InputError, match="merge_qlora"):
        merge_lora(peft_model)
    merged = merge_qlora(peft_model, base_dir)
    assert not is_4bit(merged) and merged.dtype == torch.float32
    base = build_model("nano", VOCAB, seed=0)
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(merged.state_dict()[q], base.state_dict()[q])


def test_qlora_refuses_a_model_that_ran_inference(base_dir):
    model = load_4bit(base_dir)
    model.eval()
    with torch.no_grad():
        model(input_ids=_batch()[:1])
    if not [
        m
        for m in model.modules()
        if getattr(getattr(getattr(m, "weight", None), "quant_state", None), "packing_format_for_cpu", False)
    ]:
        pytest.skip("this CPU has no AVX512-BF16: bitsandbytes does not repack")
    with pytest.raises(InputError, match="fresh copy"):
        apply_lora(model)
