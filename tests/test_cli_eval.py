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
    result = runner.invoke(app, ["eval", "tofu-logs", str(logs / PHI[0]), str(logs / PHI[1])],
                           terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "model utility" in result.stdout and "0.5221" in result.stdout
    assert "2.19e-16" in result.stdout


def test_tofu_logs_missing_file_is_a_clean_error(tmp_path) -> None:
    result = runner.invoke(app, ["eval", "tofu-logs", str(tmp_path / "a.json"), str(tmp_path / "b.json")])
    assert result.exit_code != 0
    assert "no such file" in str(result.exception) or "no such file" in result.output
