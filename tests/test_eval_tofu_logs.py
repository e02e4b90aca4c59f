"""Recompute TOFU's published numbers from its eval logs (shared/data/tofu/eval-logs).

Reference values: forget quality and model utility as TOFU's `aggregate_eval_stat.py` gives
them for these logs (Llama-2-7B: full 0.6227, retain90 0.6137, forget quality 1.83e-21;
Phi-1.5: full 0.5221, forget quality 2.19e-16), checked twice: against those printed figures
and against a line-by-line transcription of TOFU's formulas in this file.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import hmean, ks_2samp

from lethe.errors import InputError
from lethe.eval.tofu_logs import (
    SPLITS,
    load_tofu_log,
    recompute_tofu_logs,
    render_tofu_logs,
    tofu_logs_command,
)

DATA = Path(os.environ.get("LETHE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
LOGS = DATA / "tofu" / "eval-logs"
LLAMA = (
    "ft_epoch5_lr1e-05_llama2-7b_full_wd0.01.json",
    "ft_epoch5_lr1e-05_llama2-7b_retain90_wd0.01.json",
)
PHI = ("ft_epoch5_lr2e-05_phi_full_wd0.01.json", "ft_epoch5_lr2e-05_phi_retain90_wd0.01.json")

needs_logs = pytest.mark.skipif(not LOGS.is_dir(), reason=f"TOFU eval logs not found at {LOGS}")


def _tofu_reference(path: Path) -> tuple[float, np.ndarray]:
    """TOFU aggregate_eval_stat.py's model utility and forget-set statistic, transcribed."""
    log = json.loads(path.read_text())
    values = []
    for key, split in log.items():
        if "eval_log" in key:
            prob = np.mean(np.exp(-np.array(list(split["avg_gt_loss"].values()))))
        else:
            true = np.exp(-np.array(list(split["avg_gt_loss"].values())))
            false = np.exp(-np.array(list(split["average_perturb_loss"].values())))
            prob = np.mean(true / np.concatenate([true[:, None], false], axis=1).sum(-1))
        rouge = np.mean(list(split["rougeL_recall"].values()))
        para = np.array(list(split["avg_paraphrased_loss"].values()))
        pert = np.array(list(split["average_perturb_loss"].values())).mean(-1)
        stat = np.exp(pert - para)
        if "forget" in key:
            forget_stat = stat
        else:
            values += [prob, rouge, np.mean(np.maximum(0, 1 - 1 / stat))]
    return float(hmean(values)), forget_stat


@pytest.fixture(scope="module", params=[LLAMA, PHI], ids=["llama2-7b", "phi-1.5"])
def pair(request: pytest.FixtureRequest) -> tuple[Path, Path, dict]:
    if not LOGS.is_dir():
        pytest.skip(f"TOFU eval logs not found at {LOGS}")
    full, retain = (LOGS / name for name in request.param)
    return full, retain, recompute_tofu_logs(full, retain)


@needs_logs
def test_published_figures(pair: tuple[Path, Path, dict]) -> None:
    full, _, result = pair
    if "llama" in full.name:
        assert result["forget_quality"] == pytest.approx(1.834e-21, rel=1e-3)
        assert result["full"]["model_utility"] == pytest.approx(0.6227, abs=5e-5)
        assert result["retain"]["model_utility"] == pytest.approx(0.6137, abs=5e-5)
    else:
        assert result["forget_quality"] == pytest.approx(2.194e-16, rel=1e-3)
        assert result["full"]["model_utility"] == pytest.approx(0.5221, abs=5e-5)
        assert result["retain"]["model_utility"] == pytest.approx(0.5320, abs=5e-5)


@needs_logs
def test_matches_tofu_formulas(pair: tuple[Path, Path, dict]) -> None:
    full, retain, result = pair
    full_utility, full_forget = _tofu_reference(full)
    retain_utility, retain_forget = _tofu_reference(retain)
    assert result["full"]["model_utility"] == pytest.approx(full_utility, rel=1e-12)
    assert result["retain"]["model_utility"] == pytest.approx(retain_utility, rel=1e-12)
    ks = ks_2samp(full_forget, retain_forget)
    assert result["forget_quality"] == pytest.approx(ks.pvalue, rel=1e-9)
    assert result["ks_statistic"] == pytest.approx(ks.statistic, rel=1e-12)
    assert result["full"]["splits"]["forget"]["truth_ratio"] == pytest.approx(
        np.mean(np.minimum(full_forget, 1 / full_forget)), rel=1e-12
    )


@needs_logs
def test_rouge_and_truth_ratio_reproduce_every_stored_item(pair: tuple[Path, Path, dict]) -> None:
    _, _, result = pair
    for model in ("full", "retain"):
        for split, stats in result[model]["splits"].items():
            assert stats["rouge_max_abs_diff"] < 1e-12, (model, split)
            assert stats["rouge_l_recall"] == pytest.approx(stats["rouge_l_recall_stored"], abs=1e-12)
            # the logs store R in float32
            assert stats["truth_ratio_max_rel_diff"] < 1e-5, (model, split)
    assert {split: s["items"] for split, s in result["full"]["splits"].items()} == {
        "retain": 300,
        "real_authors": 100,
        "world_facts": 117,
        "forget": 300,
    }


@needs_logs
def test_command_output_is_json_and_renders() -> None:
    full, retain = (LOGS / name for name in PHI)
    result = tofu_logs_command(full, retain)
    assert json.loads(json.dumps(result)) == result
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(render_tofu_logs(result))
    text = console.export_text()
    assert "model utility" in text and "truth ratio forget" in text
    assert f"{result['full']['model_utility']:.4f}" in text


def test_unreadable_logs_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_tofu_log(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "eval_log.json": [1,\n')
    with pytest.raises(InputError) as caught:
        load_tofu_log(broken)
    assert caught.value.where is not None and caught.value.where.line is not None
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({key: {} for key in list(SPLITS)[:3]}))
    with pytest.raises(InputError) as caught:
        load_tofu_log(partial)
    assert caught.value.where.field is not None


def _split(perturbed: dict, **extra: dict) -> dict:
    return {
        "avg_gt_loss": {"0": 0.0, "1": math.log(2)},
        "avg_paraphrased_loss": {"0": 1.0, "1": 1.0},
        "average_perturb_loss": perturbed,
        "generated_text": {
            "0": ["q", "the cat sat", "the black cat sat down"],
            "1": ["q", "a", "a"],
        },
        **extra,
    }


def test_a_small_log_by_hand(tmp_path: Path) -> None:
    # R = exp(1 - 2) and exp(1 - 0.5) = e^-1 and e^0.5; no stored rougeL_recall / truth_ratio: checks are None
    path = tmp_path / "log.json"
    path.write_text(json.dumps({key: _split({"0": [1.0, 3.0], "1": [0.5, 0.5]}) for key in SPLITS}))
    result = recompute_tofu_logs(path, path)
    retain = result["full"]["splits"]["retain"]
    assert retain["probability"] == pytest.approx(0.75)  # mean(1, 1/2)
    assert retain["rouge_l_recall"] == pytest.approx((0.6 + 1.0) / 2)
    assert retain["truth_ratio"] == pytest.approx((1 - math.exp(-1)) / 2)  # mean(max(0, 1 - R))
    assert retain["rouge_max_abs_diff"] is None and retain["truth_ratio_max_rel_diff"] is None
    forget = result["full"]["splits"]["forget"]
    # mean(min(R, 1/R)) = mean(e^-1, e^-0.5)
    assert forget["truth_ratio"] == pytest.approx((math.exp(-1) + math.exp(-0.5)) / 2)
    # real authors: p / (p + sum of wrong options' p): 1 / (1 + e^-1 + e^-3), (1/2) / (1/2 + 2 e^-0.5)
    real = result["full"]["splits"]["real_authors"]["probability"]
    expected = (1 / (1 + math.exp(-1) + math.exp(-3)) + 0.5 / (0.5 + 2 * math.exp(-0.5))) / 2
    assert real == pytest.approx(expected)
    assert result["forget_quality"] == pytest.approx(1.0)  # a model against itself
    assert result["full"]["model_utility"] == result["retain"]["model_utility"]


@pytest.mark.parametrize(
    ("perturbed", "message"),
    [({"0": [1.0, 2.0], "1": [1.0]}, "unequal length"), ({"0": [1.0], "1": ["x"]}, "numbers")],
)
def test_malformed_losses_are_input_errors(tmp_path: Path, perturbed: dict, message: str) -> None:
    path = tmp_path / "log.json"
    path.write_text(json.dumps({key: _split(perturbed) for key in SPLITS}))
    with pytest.raises(InputError, match=message) as caught:
        recompute_tofu_logs(path, path)
    assert caught.value.where.field == "eval_log.json.average_perturb_loss"
