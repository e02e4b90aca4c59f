"""Model presets: shapes, parameter budgets, reproducible initialisation, load_base."""

import pytest
import torch

from lethe.data.tokenizer import train_tokenizer
from lethe.errors import InputError
from lethe.model.presets import PRESETS, build_model, count_parameters, load_base

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(["Marundel lies north of Osk. " * 20] * 5, vocab_size=300)


def test_registry_has_the_four_sizes():
    assert {"nano", "tiny", "small", "base"} <= set(PRESETS)


@pytest.mark.parametrize(
    "name, low, high",
    [("nano", 0.3e6, 1e6), ("tiny", 2.5e6, 4e6), ("small", 8e6, 12e6)],
)
def test_parameter_budgets_at_4k_vocab(name, low, high):
    assert low <= count_parameters(build_model(name, 4096)) <= high


def test_base_config_is_about_50m_without_building_it():
    spec = PRESETS["base"]
    h, i, n, v = spec.hidden_size, spec.intermediate_size, spec.num_hidden_layers, 4096
    per_layer = 4 * h * h + 3 * h * i + 2 * h
    assert 45e6 <= n * per_layer + 2 * v * h + h <= 55e6


def test_same_seed_same_weights_and_global_rng_untouched():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, b = build_model("nano", 300, seed=7), build_model("nano", 300, seed=7)
    c = build_model("nano", 300, seed=8)
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(x, y) for x, y in zip(a.parameters(), c.parameters()))


def test_load_base_from_preset_uses_tokenizer(tokenizer):
    model = load_base("nano", tokenizer)
    assert model.config.vocab_size == len(tokenizer)
    assert model.config.pad_token_id == tokenizer.pad_token_id
    assert model.generation_config.eos_token_id == [6, tokenizer.eos_token_id]
    out = model(input_ids=torch.tensor([[0, 10, 11]]), labels=torch.tensor([[0, 10, 11]]))
    assert torch.isfinite(out.loss)


def test_load_base_from_local_directory(tokenizer, tmp_path):
    build_model("nano", len(tokenizer), seed=1).save_pretrained(tmp_path)
    model = load_base(str(tmp_path), tokenizer)
    expected = build_model("nano", len(tokenizer), seed=1)
    assert all(torch.equal(x, y) for x, y in zip(model.parameters(), expected.parameters()))


def test_load_base_rejects_small_vocab_and_unknown_names(tokenizer, tmp_path):
    build_model("nano", 100).save_pretrained(tmp_path)
    with pytest.raises(InputError, match="tokenizer has"):
        load_base(tmp_path, tokenizer)
    with pytest.raises(InputError, match="neither a model preset"):
        load_base("huge", tokenizer)
