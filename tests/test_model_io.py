"""Model versions and training checkpoints: atomic, hashed, safetensors only, exact resume."""

import random

import numpy as np
import pytest
import torch

from lethe.data.tokenizer import train_tokenizer
from lethe.errors import InputError
from lethe.model.io import (
    load_training_state,
    load_version,
    save_training_state,
    save_version,
    weights_sha256,
)
from lethe.model.presets import build_model, load_base

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(["Osric Tamberlo wrote The Salt Ledger. " * 10] * 5, vocab_size=300)


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_save_and_load_version(tokenizer, tmp_path):
    model = load_base("nano", tokenizer, seed=3)
    digest = save_version(model, tokenizer, tmp_path / "v1")
    names = {p.name for p in (tmp_path / "v1").iterdir()}
    assert {
        "model.safetensors",
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "chat_template.jinja",
    } <= names
    assert digest == weights_sha256(tmp_path / "v1")
    assert save_version(model, tokenizer, tmp_path / "v2") == digest  # stable
    loaded, tok = load_version(tmp_path / "v1")
    assert _same_weights(model, loaded)
    assert tok.chat_template == tokenizer.chat_template
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_overwrite_is_atomic_and_failure_keeps_old(tokenizer, tmp_path, monkeypatch):
    target = tmp_path / "v"
    old = save_version(load_base("nano", tokenizer, seed=1), tokenizer, target)
    new = save_version(load_base("nano", tokenizer, seed=2), tokenizer, target)
    assert new != old and weights_sha256(target) == new

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(type(tokenizer), "save_pretrained", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        save_version(load_base("nano", tokenizer, seed=3), tokenizer, target)
    assert weights_sha256(target) == new
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v"]


def test_pickle_only_directory_is_refused(tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"not even a pickle")
    with pytest.raises(InputError, match="never unpickles"):
        load_version(tmp_path)


def _train(model, optimizer, scheduler, steps, generator):
    for _ in range(steps):
        # Draw from every RNG so that resumption must restore all of them.
        length = 8 + random.randrange(4) + int(np.random.randint(0, 4))
        batch = torch.randint(7, 300, (2, length), generator=generator)
        noise = torch.randn(()) * 1e-3
        loss = model(input_ids=batch, labels=batch).loss + noise
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()


def _setup(seed):
    model = build_model("nano", 300, seed=seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.95))
    scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, 0.1, total_iters=6)
    return model, optimizer, scheduler


def test_resumption_reproduces_identical_weights(tmp_path):
    def seed_all():
        random.seed(0), np.random.seed(0), torch.manual_seed(0)
        return torch.Generator().manual_seed(5)

    gen = seed_all()
    straight = _setup(0)
    _train(*straight, 6, gen)

    gen = seed_all()
    first = _setup(0)
    _train(*first, 3, gen)
    save_training_state(
        tmp_path / "ckpt", *first, step=3, generators={"data": gen}, extra={"slice": 1, "order": [3, 1, 2]}
    )
    random.seed(99), np.random.seed(99), torch.manual_seed(99)  # clobber every RNG
    gen = torch.Generator().manual_seed(99)
    resumed = _setup(1)
    state = load_training_state(tmp_path / "ckpt", *resumed, generators={"data": gen})
    assert state.step == 3 and state.extra == {"slice": 1, "order": [3, 1, 2]}
    _train(*resumed, 3, gen)
    assert _same_weights(straight[0], resumed[0])
    assert resumed[1].param_groups[0]["betas"] == (0.9, 0.95)


def test_checkpoint_refuses_other_architecture(tmp_path):
    model, optimizer, scheduler = _setup(0)
    save_training_state(tmp_path / "c", model, optimizer, scheduler, step=0)
    with pytest.raises(InputError, match="does not fit"):
        load_training_state(tmp_path / "c", build_model("tiny", 300))


def test_overwrite_without_atomic_exchange(tokenizer, tmp_path, monkeypatch):
    from lethe.model import io

    monkeypatch.setattr(io, "_exchange", lambda a, b: False)
    target = tmp_path / "v"
    save_version(load_base("nano", tokenizer, seed=1), tokenizer, target)
    new = save_version(load_base("nano", tokenizer, seed=2), tokenizer, target)
    assert weights_sha256(target) == new
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v"]


def test_recovery_after_crash_between_renames(tokenizer, tmp_path):
    target = tmp_path / "v"
    digest = save_version(load_base("nano", tokenizer, seed=1), tokenizer, target)
    target.rename(tmp_path / ".v.old-deadbeef")  # crashed after moving the old one aside
    _model, _ = load_version(target)
    assert weights_sha256(target) == digest
