"""`lethe forget`, `lethe requests`, `lethe audit` through the CLI."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from lethe.cli import app

runner = CliRunner()


def invoke(*args, code=0):
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.stdout if code == 0 else result.output


def test_forget_through_the_cli(trained_workspace):
    _, world, _ = trained_workspace
    entity = next(e for e in world.entities if any(d["group"] == "train" for d in world.documents_of(e.id)))
    collection = f"synth/entity/{entity.id}"
    dry = json.loads(invoke("forget", "--collection", collection, "--dry-run", "--json"))
    assert dry["trained"] and set(dry["trained"]) <= set(dry["documents"])
    out = json.loads(
        invoke(
            "forget",
            "--collection",
            collection,
            "--method",
            "grad_ascent",
            "--steps",
            "3",
            "-p",
            "eval_every=0",
            "--reason",
            "user asked",
            "--json",
        )
    )
    assert out["status"] == "succeeded" and out["version"]
    listed = json.loads(invoke("requests", "ls", "--json"))
    assert listed[0]["status"] == "succeeded" and listed[0]["method"] == "grad_ascent"
    audit = json.loads(invoke("audit", str(out["request_id"]), "--json"))
    assert audit["metrics"]["before"]["forget"] and audit["metrics"]["after"]["forget"]
    versions_out = json.loads(invoke("versions", "--json"))
    assert any(v.get("tainted") for v in versions_out)


def test_bad_selectors_say_what_is_wrong(trained_workspace):
    out = invoke("forget", "--search", "zzzz-nothing-matches", code=2)
    assert "matches no document" in out
    out = invoke("forget", "--collection", "no/such", code=2)
    assert "no collection named 'no/such'" in out
    out = invoke("forget", "--docs", "999999", code=2)
    assert "999999" in out
    out = invoke("forget", "--docs", "1", "--method", "magic", code=2)
    assert "unknown method 'magic'" in out


def test_unknown_method_settings_are_refused_by_name(trained_workspace):
    ws, _, _ = trained_workspace
    before = ws.ledger.forget_requests(limit=10)
    out = invoke("forget", "--docs", "1", "--method", "npo", "-p", "betta=0.1", code=2)
    assert "'betta'" in out and "did you mean 'beta'" in out
    assert "valid settings:" in out and "alpha" in out and "lora_r" in out
    assert "Traceback" not in out
    assert ws.ledger.forget_requests(limit=10) == before  # nothing recorded
