"""The `lethe eval`, `audit`, `report` and `bench` commands, through Typer's CliRunner."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import lethe.cli  # noqa: F401  (registers every command)
from lethe.cli.app import app

runner = CliRunner()
LLAMA = (
    "ft_epoch5_lr1e-05_llama2-7b_full_wd0.01.json",
    "ft_epoch5_lr1e-05_llama2-7b_retain90_wd0.01.json",
)
PHI = ("ft_epoch5_lr2e-05_phi_full_wd0.01.json", "ft_epoch5_lr2e-05_phi_retain90_wd0.01.json")


def test_tofu_logs_json_reproduces_the_paper(shared_data) -> None:
    logs = shared_data / "tofu" / "eval-logs"
    result = runner.invoke(app, ["eval", "tofu-logs", str(logs / LLAMA[0]), str(logs / LLAMA[1]), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["forget_quality"] == pytest.approx(1.834e-21, rel=1e-3)
    assert data["full"]["model_utility"] == pytest.approx(0.6227, abs=5e-5)
    assert data["retain"]["model_utility"] == pytest.approx(0.6137, abs=5e-5)


def test_tofu_logs_table(shared_data) -> None:
    logs = shared_data / "tofu" / "eval-logs"
    result = runner.invoke(app, ["eval", "tofu-logs", str(logs / PHI[0]), str(logs / PHI[1])], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "model utility" in result.stdout and "0.5221" in result.stdout
    assert "2.19e-16" in result.stdout


def test_tofu_logs_missing_file_is_a_clean_error(tmp_path) -> None:
    result = runner.invoke(app, ["eval", "tofu-logs", str(tmp_path / "a.json"), str(tmp_path / "b.json")])
    assert result.exit_code != 0
    assert "no such file" in str(result.exception) or "no such file" in result.output


def test_eval_version_audit_and_report(tmp_path, monkeypatch) -> None:
    from eval_helpers import workspace_with_models

    ws, ids, target, retain, _ = workspace_with_models(tmp_path)
    monkeypatch.setenv("LETHE_HOME", str(ws.home))
    result = runner.invoke(
        app,
        [
            "eval",
            "--version",
            "target",
            "--forget",
            "test/forget",
            "--holdout",
            "test/holdout",
            "--max-new-tokens",
            "40",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["version"] == "target" and data["metrics"]["forget"]["exact_match"] == 1.0
    assert data["metrics"]["forget"]["mia_auc_loss"] == 1.0
    assert ws.ledger.evaluations(version_id=target.id, benchmark="suite")
    table = runner.invoke(
        app,
        ["eval", "--version", "target", "--forget", "test/forget", "--no-store", "--max-items", "2"],
        terminal_width=200,
    )
    assert table.exit_code == 0 and "exact_match" in table.stdout and "test/forget" in table.stdout

    request_id = ws.ledger.create_forget_request(
        selector={"collection": "test/forget"},
        document_ids=ids["forget"],
        trained_ids=ids["forget"],
        method="grad_diff",
        base_version_id=target.id,
        config={"holdout": "test/holdout"},
    )
    ws.ledger.update_forget_request(request_id, result_version_id=retain.id, status="evaluated")
    audited = runner.invoke(app, ["audit", str(request_id), "--json"])
    assert audited.exit_code == 0, audited.output
    audit = json.loads(audited.stdout)
    assert audit["request"]["id"] == request_id and audit["metrics"]["before"]["forget"]["exact_match"] == 1.0
    shown = runner.invoke(app, ["audit", str(request_id)], terminal_width=200)
    assert shown.exit_code == 0 and f"forget request {request_id}" in shown.stdout

    out = tmp_path / "report"
    reported = runner.invoke(app, ["report", "--out", str(out), "--json"])
    assert reported.exit_code == 0, reported.output
    assert json.loads(reported.stdout)["report"] == str(out / "report.html")
    assert "Audit of forget request" in (out / "report.html").read_text()


def test_bench_commands_pass_their_options(tmp_path, monkeypatch, initialized_workspace) -> None:
    from lethe.bench import synth, tofu

    seen = {}

    def fake(name):
        def run(workspace, config, *, out_dir=None, rerun=False, progress=None):
            seen[name] = (config, out_dir, rerun)
            return {
                "benchmark": name,
                "config_hash": "0" * 64,
                "rows": [{"model": "target", "role": "target"}],
                "stages": [],
                "cache": "hit",
                "plots": [],
            }

        return run

    monkeypatch.setattr(tofu, "run_tofu_bench", fake("tofu"))
    monkeypatch.setattr(synth, "run_synth_bench", fake("synth"))
    result = runner.invoke(
        app,
        [
            "bench",
            "tofu",
            "--data",
            str(tmp_path),
            "--split",
            "forget05",
            "--authors",
            "40",
            "--methods",
            "npo, grad_diff",
            "--epochs",
            "3",
            "--rerun",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    config, _, rerun = seen["tofu"]
    assert (config.split, config.authors, config.methods, config.epochs, config.preset) == (
        "forget05",
        40,
        ["npo", "grad_diff"],
        3,
        "tiny",
    )
    assert rerun and json.loads(result.stdout)["cache"] == "hit"
    result = runner.invoke(
        app, ["bench", "synth", "--entities", "30", "--forget", "2", "--out", str(tmp_path / "o")], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    config, out_dir, _ = seen["synth"]
    assert (config.entities, config.forget_entities, out_dir) == (30, 2, tmp_path / "o")
    assert "synth" in result.stdout
