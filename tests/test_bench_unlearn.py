"""benchmarks/unlearn.py at its smallest: the rows are there and replay trains less.

Timings are never asserted (they depend on the machine's load); step counts from the ledger's
runs are what show that replaying the last slice is cheaper than retraining from scratch.
"""

import importlib.util
import json
from pathlib import Path

import pytest

from lethe.workspace import Workspace

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "unlearn.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("bench_unlearn", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_unlearn_benchmark_at_its_smallest(tmp_path):
    output, home = tmp_path / "unlearn.json", tmp_path / "home"
    returned = _benchmark().main(
        [
            "--entities",
            "10",
            "--slices",
            "3",
            "--epochs",
            "1",
            "--steps",
            "2",
            "--methods",
            "grad_ascent,npo",
            "--retrain-runs",
            "2",
            "--home",
            str(home),
            "--output",
            str(output),
        ]
    )
    result = json.loads(output.read_text())
    assert result["rows"] == json.loads(json.dumps(returned["rows"]))

    kinds = [(r["kind"], r["method"]) for r in result["rows"]]
    assert kinds[0] == ("retrain", "full retraining")
    assert [m for k, m in kinds if k == "approximate"] == ["grad_ascent", "npo"]
    exact = [r for r in result["rows"] if r["method"] == "exact"]
    assert [r["forget_slice"] for r in exact] == [2, 1]
    assert [r["slices_replayed"] for r in exact] == [1, 2]
    [retokenized] = [r for r in result["rows"] if r["method"] == "exact --retokenize"]
    assert retokenized["slices_replayed"] == 3 and retokenized["steps"] == result["rows"][0]["steps"]
    assert result["checks"]["retokenized_tokenizer_never_saw_the_forget_set"]
    for row in result["rows"]:
        assert row["seconds"] > 0 and row["steps"] > 0
        if row["kind"] != "retrain":
            assert row["ratio"] > 0 and row["base_untouched"]
    assert result["config"]["slices"] == 3 and "met" in result["target"]
    assert {"cpu_count", "torch", "torch_threads"} <= set(result["machine"]) and result["date"]

    # Step counts as the ledger recorded them: the replay of the last slice trained fewer
    # steps than full retraining, and replaying more slices trained more.
    ledger = Workspace(home=home).ledger
    retrain = ledger.run(result["rows"][0]["run_id"])
    replays = [ledger.run(r["run_id"]) for r in exact]
    assert retrain.kind == "train" and all(run.kind == "replay" for run in replays)
    steps = [run.metrics["global_step"] for run in replays]
    assert steps[0] < retrain.metrics["global_step"]
    assert steps[0] < steps[1]
    checks = result["checks"]
    assert checks["replay_of_last_slice_equals_retraining"]  # exact replay is exact
    assert checks["base_untouched"] and checks["replays_left_candidates_only"]
    # the second retraining ran after the retokenized replay added a newer workspace tokenizer
    assert checks["retrainings_identical"] and len(result["baseline_runs"]) == 2
    assert checks["replays_restored_original_checkpoints"]
