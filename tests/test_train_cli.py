"""The commands: `lethe tokenizer train`, `lethe train`, `lethe update`, `lethe versions`."""

import json

import torch
from typer.testing import CliRunner

from lethe.cli import app
from train_helpers import make_workspace, qa_records

torch.set_num_threads(1)


def test_tokenizer_train_then_train_update_and_versions(tmp_path):
    ws = make_workspace(tmp_path, n_qa=12)
    runner = CliRunner()

    def run(*args):
        result = runner.invoke(app, ["--home", str(ws.home), *args])
        assert result.exit_code == 0, result.output
        return result.output

    made = json.loads(
        run("tokenizer", "train", "--collection", "qa", "--vocab-size", "350", "--name", "qa-bpe", "--json")
    )
    assert made["name"] == "qa-bpe" and (ws.home / "tokenizers" / "qa-bpe" / "tokenizer.json").is_file()
    assert ws.ledger.events(kind="tokenizer.trained")[0].data["name"] == "qa-bpe"

    trained = json.loads(
        run(
            "train",
            "--preset",
            "nano",
            "--data",
            "qa",
            "--task",
            "sft",
            "--slices",
            "2",
            "--epochs",
            "2",
            "--batch-size",
            "4",
            "--seq-len",
            "64",
            "--lineage",
            "bot",
            "--tokenizer",
            "qa-bpe",
            "--json",
        )
    )
    assert [v["slice"] for v in trained] == [0, 1] and len(trained[0]["sha256"]) == 64
    assert ws.ledger.lineage("bot").config["tokenizer"].endswith("qa-bpe")
    tokenizers = {t["name"]: t for t in json.loads(run("tokenizer", "ls", "--json"))}
    assert tokenizers["qa-bpe"]["documents"] == 12 and tokenizers["bpe-400"]["documents"] == 12
    assert ws.ledger.lineage("bot").config["tokenizer_id"] == tokenizers["qa-bpe"]["id"]
    shown = json.loads(run("data", "show", "test:qa0", "--json"))
    assert shown["revisions"][0]["tokenizers"] == ["bpe-400", "qa-bpe"]
    assert "qa-bpe" in run("tokenizer", "ls")

    report = ws.ledger.add_documents(qa_records(3, prefix="new-"), source="week2", collection="week2")
    assert report.added == 3
    [updated] = json.loads(run("update", "--data", "week2", "--json"))
    assert updated["slice"] == 2

    listed = json.loads(run("versions", "--json"))
    assert [v["kind"] for v in listed] == ["pretrain", "pretrain", "update"]
    assert listed[-1]["aliases"] == ["latest"] and listed[-1]["parent"] == listed[1]["name"]
    assert {v["lineage"] for v in listed} == {"bot"} and not any(v["tainted"] for v in listed)
    table = run("versions")
    assert "latest" in table and "bot" in table

    bad = runner.invoke(app, ["--home", str(ws.home), "update", "--data", "week2"])
    assert bad.exit_code != 0
