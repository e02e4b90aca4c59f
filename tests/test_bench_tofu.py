"""`lethe bench tofu` end to end on two TOFU authors with a nano model (mechanics, not quality)."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import SHARED_DATA
from lethe.bench.tofu import TofuBenchConfig, render_bench, run_tofu_bench
from lethe.workspace import Workspace

torch.set_num_threads(1)


def small_config(shared_data, **changes) -> TofuBenchConfig:
    return TofuBenchConfig(
        data=shared_data / "tofu",
        authors=2,
        mia_authors=1,
        preset="nano",
        epochs=1,
        vocab_size=600,
        methods=["grad_ascent"],
        unlearn={"steps": 2, "eval_every": 1},
        eval_items=3,
        max_new_tokens=6,
        bf16=False,
    ).replace(**changes)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    if not SHARED_DATA.is_dir():  # the `shared_data` fixture, at module scope
        pytest.skip(f"shared data not found at {SHARED_DATA} (set LETHE_SHARED_DATA)")
    ws = Workspace(home=tmp_path_factory.mktemp("bench") / "home").init()
    config = small_config(SHARED_DATA)
    return ws, config, run_tofu_bench(ws, config)


def test_results_table_files_and_plots(bench) -> None:
    ws, _, result = bench
    assert result["cache"] == "miss"
    rows = {row["model"]: row for row in result["rows"]}
    assert set(rows) == {"target", "retain", "grad_ascent"}
    assert rows["retain"]["role"] == "reference" and rows["retain"]["forget_quality"] == 1.0
    assert 0.0 <= rows["grad_ascent"]["forget_quality"] <= 1.0 and rows["grad_ascent"]["steps"] == 2
    for row in rows.values():
        assert row["model_utility"] is not None and "mia_auc_loss" in row
        assert {
            "forget_rouge_l_recall",
            "retain_probability",
            "real_authors_probability",
            "world_facts_truth_ratio",
        } <= set(row)
    out = ws.home / "bench" / f"tofu-{result['config_hash'][:12]}"
    written = (out / "results.json").read_text()
    assert json.loads(written)["config_hash"] == result["config_hash"]
    # the file names no machine's directories: the models are under $LETHE_HOME, the data under $LETHE_SHARED_DATA
    assert str(ws.home.resolve()) not in written and str(SHARED_DATA.resolve()) not in written
    assert json.loads(written)["models"]["target"]["path"].startswith("$LETHE_HOME/bench/.cache/")
    assert "| model |" in (out / "results.md").read_text() and (out / "results.csv").read_text().count("\n") == 4
    assert {"tradeoff.png", "truth_ratios.png", "mia_roc.png", "loss_curves.png", "bars_forget.png"} <= set(
        result["plots"]
    )
    assert all((out / name).read_bytes().startswith(b"\x89PNG") for name in result["plots"])
    stages = {s["stage"]: s["status"] for s in result["stages"]}
    assert stages["train target"] == "computed" and stages["evaluate grad_ascent"] == "computed"
    assert result["authors"] == {"forget": [199], "retain": [0], "never_trained": [1]}
    # every evaluation is on record in the benchmark's ledger
    bench_ws = Workspace.from_env(result["workspace"])
    tofu_rows = bench_ws.ledger.evaluations(benchmark="tofu")
    assert {r.split for r in tofu_rows} >= {"forget", "retain", "real_authors", "world_facts", "summary"}
    from rich.console import Console

    console = Console(width=250, record=True)
    console.print(render_bench(result))
    text = console.export_text()
    assert "grad_ascent" in text and "train target" in text


def test_same_configuration_is_served_from_cache_and_a_change_recomputes(bench) -> None:
    ws, config, first = bench
    again = run_tofu_bench(ws, config)
    assert again["cache"] == "hit" and again["rows"] == json.loads(json.dumps(first["rows"]))
    changed = run_tofu_bench(ws, config.replace(unlearn={"steps": 3, "eval_every": 1}))
    assert changed["cache"] == "miss" and changed["config_hash"] != first["config_hash"]
    stages = {s["stage"]: s["status"] for s in changed["stages"]}
    assert stages["train target"] == "cached" and stages["train retain"] == "cached"
    assert stages["evaluate target"] == "cached"
    assert stages["unlearn grad_ascent"] == "computed" and stages["evaluate grad_ascent"] == "computed"


def test_tune_draws_authors_matched_to_the_request_and_runs_the_tuned_method(tmp_path, shared_data) -> None:
    ws = Workspace(home=tmp_path / "home").init()
    config = small_config(
        shared_data,
        authors=4,
        methods=["whp"],
        tune=["whp"],
        calibration_draws=2,
        tune_trials=1,
        tune_time_fraction=None,
        robustness=False,
    )
    result = run_tofu_bench(ws, config)
    calibration = result["tuning"]["calibration"]
    assert calibration["matched_to_request"] and calibration["request"] == {"author/199": 20}
    draws = [d["subjects"] for d in calibration["draws"]]
    assert len(draws) == 2 and all(len(d) == 1 for d in draws) and draws[0] != draws[1]
    assert "author/199" not in {s for d in draws for s in d} and calibration["disjoint_from_forget_set"]
    assert all(d["exact_seconds"] > 0 for d in calibration["draws"])  # each draw retrained without its author
    labels = {row["model"] for row in result["rows"]}
    assert {"target", "retain", "whp", "whp+tuned"} <= labels
    (goal,) = result["tuning"]["goal"]
    assert goal["method"] == "whp" and goal["trials"] == 1 and 0 <= goal["forget_quality"] <= 1


def test_a_results_file_records_the_data_path_without_this_machines_layout(tmp_path, monkeypatch) -> None:
    shared = tmp_path / "shared" / "data"
    (shared / "tofu").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LETHE_SHARED_DATA", str(shared))
    assert TofuBenchConfig(data=shared / "tofu").to_dict()["data"] == "$LETHE_SHARED_DATA/tofu"
    monkeypatch.delenv("LETHE_SHARED_DATA")
    (tmp_path / "project").mkdir()
    monkeypatch.chdir(tmp_path / "project")  # found beside the checkout: recorded relative to it
    assert TofuBenchConfig(data=shared / "tofu").to_dict()["data"] == "../shared/data/tofu"
    assert TofuBenchConfig(data="my/tofu").to_dict()["data"] == "my/tofu"  # as given
