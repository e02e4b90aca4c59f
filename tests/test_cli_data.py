"""`lethe data add | ls | show | search | collections`, `lethe ledger export-json | import-json`, `lethe log`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ingest_helpers import write
from lethe.cli import app
from lethe.cli.ledger import log_app
from lethe.workspace import Workspace

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("initialized_workspace")  # every command but init needs one


def run(*args: str, env: dict | None = None) -> str:
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def run_json(*args: str, env: dict | None = None):
    return json.loads(run(*args, "--json", env=env))


def test_add_tofu_and_wiki_then_browse(shared_data):
    added = run_json("data", "add", str(shared_data / "tofu"), "--source", "tofu")
    assert (added["format"], added["added"], added["collections"]["tofu/forget10"]) == ("tofu", 4617, 400)
    again = run_json("data", "add", str(shared_data / "tofu"), "--source", "tofu")
    assert (again["added"], again["updated"], again["unchanged"]) == (0, 0, 4617)
    text = run("data", "add", str(shared_data / "wiki" / "enwiki-2015"), "--source", "wiki", "-c", "wiki")
    assert "648 added" in text and "0 unchanged" in text

    listed = run_json("data", "ls", "--collection", "tofu/forget01", "--kind", "qa", "--limit", "5")
    assert [d["key"] for d in listed] == [f"tofu:author198/q{k:02d}" for k in range(5)]
    assert "author198/q00" in run("data", "ls", "-c", "tofu/forget01", "-n", "2")
    collections = {c["name"]: c["documents"] for c in run_json("data", "collections")}
    assert collections["tofu/retain90"] == 3600 and collections["wiki"] == 648
    found = run_json("data", "search", "Anarchism", "--limit", "3")
    assert found[0]["title"] == "Anarchism"
    assert "Anarchism" in run("data", "search", "anarchism", "-c", "wiki")


def test_a_message_stays_on_one_line_however_long_its_path(tmp_path):
    deep = tmp_path.joinpath(*["a-rather-long-directory-name"] * 6)
    deep.mkdir(parents=True)
    path = write(deep / "docs.jsonl", '{"id": "a", "text": "first"}\n')
    lines = run("data", "add", str(path), "--source", "mine").splitlines()
    summary = next(line for line in lines if line.startswith(str(path)))
    assert len(summary) > 200 and "→ source mine: 1 added, 0 updated, 0 unchanged in " in summary


def ledger_content(key: str) -> str:
    return Workspace.from_env().ledger.document(key).content


def test_show_lists_revisions_and_the_versions_that_saw_them(tmp_path):
    path = write(tmp_path / "docs.jsonl", '{"id": "a", "text": "first"}\n')
    run("data", "add", str(path), "--source", "mine")
    write(path, '{"id": "a", "text": "second"}\n')
    assert run_json("data", "add", str(path), "--source", "mine", "--format", "jsonl")["updated"] == 1
    keyed = write(tmp_path / "keyed.json", '[{"slug": "z", "text": "zed"}]')
    assert run_json("data", "add", str(keyed), "--source", "mine", "--id-field", "slug")["added"] == 1
    assert ledger_content("mine:z") == "zed"
    ledger = Workspace.from_env().ledger
    first, second = ledger.revisions(ledger.document("mine:a").id)
    run_id = ledger.start_run("train")
    ledger.record_exposures(run_id, [(0, first.id)])
    ledger.register_version(kind="pretrain", path="/m/v1", weights_sha256="0" * 64, run_id=run_id)
    shown = run_json("data", "show", "mine:a")
    assert shown["document"]["id"] == second.id
    assert [r["revision"] for r in shown["revisions"]] == [1, 2]
    assert [v["version"] for v in shown["revisions"][0]["seen_by"]] == ["v1"]
    assert shown["revisions"][1]["seen_by"] == []
    text = run("data", "show", str(first.id))
    assert "v1" in text and "revisions" in text


def test_bad_input_is_an_error_naming_file_and_line(tmp_path):
    path = write(tmp_path / "bad.jsonl", '{"text": "ok"}\n{"question": "no answer?"}\n')
    result = runner.invoke(app, ["data", "add", str(path), "--source", "bad"])
    assert result.exit_code == 2  # a LetheError: one line saying what and where, no traceback
    assert "bad.jsonl, line 2, field 'answer'" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["data", "add", str(tmp_path / "missing.json"), "--source", "x"])
    assert result.exit_code == 2 and "no such file" in result.output
    result = runner.invoke(app, ["data", "add", str(path), "--source", "x", "--format", "csv"])
    assert result.exit_code == 2 and "unknown source format 'csv'" in result.output


def test_export_and_import_json_between_workspaces(tmp_path):
    path = write(tmp_path / "docs.jsonl", '{"id": "a", "question": "Q?", "answer": "A."}\n{"id": "b", "text": "T"}\n')
    run("data", "add", str(path), "--source", "mine", "--collection", "c")
    out = tmp_path / "changelog.json"
    assert run_json("ledger", "export-json", str(out))["entries"] == 2
    other = {"LETHE_HOME": str(tmp_path / "other-home")}
    run("init", env=other)
    imported = run_json("ledger", "import-json", str(out), env=other)
    assert imported["documents"] == 2
    again = tmp_path / "again.json"
    assert "Wrote 2 entries" in run("ledger", "export-json", str(again), env=other)
    assert again.read_text() == out.read_text()


def test_log_filters_events_by_kind_and_time(tmp_path):
    run("data", "add", str(write(tmp_path / "d.jsonl", '{"text": "x"}\n')), "--source", "s", "-c", "c")
    events = run_json("log")
    assert {"source.added", "collection.created", "documents.ingested"} <= {e["kind"] for e in events}
    assert [e["kind"] for e in run_json("log", "--kind", "documents")] == ["documents.ingested"]
    assert len(run_json("log", "--limit", "1")) == 1
    assert run_json("log", "--since", "2999-01-01") == []
    assert len(run_json("log", "--until", "2999-01-01T00:00:00Z")) == len(events)
    assert "documents.ingested" in run("log")
    result = runner.invoke(app, ["log", "--since", "last week"])
    assert result.exit_code == 2 and "--since" in result.output


def test_log_takes_subcommands_from_other_modules():
    @log_app.command("example-sub")
    def example_sub() -> None:
        print("sub ran")

    try:
        output = run("log", "example-sub")
        assert output.strip() == "sub ran"  # the event listing did not run first
    finally:
        log_app.registered_commands[:] = [c for c in log_app.registered_commands if c.name != "example-sub"]


@pytest.mark.parametrize("group", ["data", "ledger", "log"])
def test_help(group):
    assert "Usage" in run(group, "--help")
