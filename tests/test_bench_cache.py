"""Benchmark caching: keys cover the whole configuration; stale results are never served."""

from __future__ import annotations

from lethe.bench.cache import StageCache, code_version, config_hash
from lethe.bench.tofu import plan_authors


def test_keys_change_with_any_part_of_the_configuration() -> None:
    base = {"lr": 1e-3, "data": {"full.json": "abc"}, "methods": ["npo"]}
    assert config_hash(base) == config_hash(dict(reversed(list(base.items()))))  # order-free
    for changed in ({**base, "lr": 2e-3}, {**base, "data": {"full.json": "abd"}}, {**base, "methods": ["ga"]}):
        assert config_hash(changed) != config_hash(base)
    assert code_version().startswith("0.") and "+" in code_version()
    assert code_version(("eval",)) != code_version(("bench",))


def test_a_lookup_returns_only_the_exact_configuration(tmp_path) -> None:
    cache = StageCache(tmp_path)
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"weights v1")
    material = {"stage": "train", "lr": 1e-3}
    assert cache.lookup("train", material) is None
    cache.store("train", material, {"seconds": 1.5, "version_id": 3}, [weights])
    hit = cache.lookup("train", material)
    assert hit is not None and hit.record["version_id"] == 3 and hit.record["seconds"] == 1.5
    assert cache.lookup("train", {**material, "lr": 2e-3}) is None
    # the artefact changed behind the cache's back: the result is stale and not served
    weights.write_bytes(b"weights v2")
    assert cache.lookup("train", material) is None
    # a record whose stored key material was edited does not match its key any more
    cache.store("train", material, {"seconds": 1.0}, [weights])
    key_file = next(tmp_path.glob("train-*/key.json"))
    key_file.write_text(key_file.read_text().replace("0.001", "0.002"))
    assert cache.lookup("train", material) is None


def test_author_plans() -> None:
    forget, retain = list(range(180, 200)), list(range(180))
    plan = plan_authors(forget, retain, 40, None)
    assert plan.forget == [196, 197, 198, 199] and plan.retain == list(range(36))
    assert plan.never_trained == [36, 37, 38, 39]
    full = plan_authors(forget, retain, None, None)
    assert len(full.forget) == 20 and len(full.retain) == 160 and len(full.never_trained) == 20
    small = plan_authors(forget, retain, 2, 1)
    assert small.forget == [199] and small.retain == [0] and small.never_trained == [1]
    assert not set(plan.forget) & set(plan.retain) and not set(plan.retain) & set(plan.never_trained)
