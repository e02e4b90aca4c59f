"""Messages that tell the truth: notices vs problems, advice that helps, plurals, empty results."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from lethe.cli import app
from lethe.eval.impact import compute_impacts
from lethe.ledger.integrity import NOTICE, check, review
from lethe.serve.readiness import undertrained_notice, version_notices

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_partial_token_impacts_are_a_notice_and_show_gives_the_right_advice(trained_workspace):
    ws, _world, versions = trained_workspace
    latest = versions[-1]
    seen = sorted(ws.ledger.documents_seen(latest.id))
    measured = seen[: len(seen) // 2]
    compute_impacts(ws, latest.name, document_ids=measured, top_k=3)

    found = review(ws.ledger)
    [notice] = [p for p in found if p.check == "token-impacts"]
    assert notice.severity == NOTICE and f"{len(seen) - len(measured)} trained documents" in notice.detail
    assert check(ws.ledger) == []  # a notice is not a problem
    result = invoke("ledger", "check", "--skip-weights", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["ok"] is True and body["problems"] == [] and len(body["notices"]) == 1
    text = invoke("ledger", "check", "--skip-weights")
    assert text.exit_code == 0 and "1 notice" in text.output and "ledger OK" in text.output

    # a trained document left out of the measurement: not "run the command you just ran"
    left_out = invoke("impact", "show", str(seen[-1]))
    assert left_out.exit_code == 2
    assert "was computed, but not for this document" in left_out.output
    assert "run `lethe impact compute" not in left_out.output
    # a document the version never trained on
    never = next(d.id for d in ws.ledger.documents(ws.ledger.collection_ids("synth/holdout")))
    untrained = invoke("impact", "show", str(never))
    assert untrained.exit_code == 2 and "never trained on it" in untrained.output
    # a version nobody measured: then computing is the advice
    unmeasured = invoke("impact", "show", str(seen[0]), "--version", versions[0].name)
    assert unmeasured.exit_code == 2 and f"run `lethe impact compute --version {versions[0].name}`" in unmeasured.output


def test_search_dry_run_collections_and_plurals(trained_workspace):
    ws, world, versions = trained_workspace
    none = invoke("data", "search", "zzzz-no-such-text")
    assert none.exit_code == 0 and "no current document matches 'zzzz-no-such-text'" in none.output

    doc = ws.ledger.documents(ws.ledger.collection_ids("synth/qa")[:1])[0]
    one = invoke("data", "search", world.entities[0].name, "--limit", "1")
    assert one.exit_code == 0, one.output
    assert "1 document matching" in one.output

    dry = invoke("forget", "--docs", str(doc.id), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"would forget 1 document (1 trained by {versions[-1].name}):" in dry.output
    assert f"{doc.id}  {doc.key}" in dry.output  # the documents themselves, not only a count

    unknown = invoke("forget", "--collection", "synth/qa2", "--dry-run")
    assert unknown.exit_code == 2
    assert "did you mean synth/qa" in unknown.output
    assert unknown.output.count(",") < 10  # a short list, not every collection
    assert "lethe data collections" in unknown.output


def test_train_without_data_names_the_collections(trained_workspace):
    result = invoke("train", "--preset", "nano")
    assert result.exit_code == 2
    assert "name the collection(s) to train on with --data" in result.output
    assert "synth/qa (" in result.output


def test_readiness_notices(trained_workspace):
    ws = trained_workspace[0]

    class Weak:
        name, meta = "v9", {"final_loss": 3.2}

    assert "v9 looks undertrained: its training loss ended at 3.20" in undertrained_notice(Weak())
    assert undertrained_notice(type("Good", (), {"name": "v1", "meta": {"final_loss": 0.05}})()) is None
    # where the trainer measured it, the exact match on its own training questions decides
    checked = {"final_loss": 0.05, "own_exact_match": 0.125, "own_exact_match_items": 8}
    notice = undertrained_notice(type("Checked", (), {"name": "v2", "meta": checked})())
    assert "answers 1 of 8 of its own training questions" in notice and "lethe train --base" in notice
    checked = {"final_loss": 3.0, "own_exact_match": 0.75, "own_exact_match_items": 8}
    assert undertrained_notice(type("Knows", (), {"name": "v3", "meta": checked})()) is None
    # the fixture trains 2 epochs: its own loss says it is undertrained, and chat/serve say so
    latest = ws.ledger.resolve_version("latest")
    assert latest.meta["final_loss"] > 1.0 and len(latest.meta["epoch_losses"]) == 2
    assert latest.meta["own_exact_match_items"] > 0 and latest.meta["own_exact_match"] < 0.5
    [notice] = version_notices(ws.ledger)
    assert "looks undertrained: it answers" in notice


def test_the_conversation_log_names_every_version_that_answered(trained_workspace):
    from lethe.chat.sampling import SamplingParams
    from lethe.chat.terminal import TerminalChat
    from lethe.serve.logging import ConversationLogger
    from lethe.serve.models import ModelPool

    ws, _world, versions = trained_workspace
    first, second = versions[-1].name, versions[0].name
    lines = ["hello", f"/model {second}", "and again"]
    pool = ModelPool(ws.ledger, base_dir=ws.home)
    logger = ConversationLogger(ws.ledger)
    try:
        chat = TerminalChat(
            pool.get,
            first,
            read=lambda _prompt: lines.pop(0) if lines else (_ for _ in ()).throw(EOFError()),
            write=lambda _text: None,
            logger=logger,
            params=SamplingParams(temperature=0, max_new_tokens=4),
        )
        chat.run()
    finally:
        logger.close(timeout=5.0)
        pool.close()
    listed = json.loads(invoke("log", "conversations", "--json").output)
    assert [c["answered_by"] for c in listed] == [f"{first}, {second}"]
    messages = json.loads(invoke("log", "conversations", str(listed[0]["id"]), "--json").output)
    assert [m["version"] for m in messages if m["role"] == "assistant"] == [first, second]


def test_the_data_tab_tells_training_from_descent(trained_workspace):
    from lethe.serve.ui.data_tab import exposures_frames

    ws, _world, versions = trained_workspace
    first, second = versions[0], versions[1]
    only_first = min(ws.ledger.documents_seen(first.id))
    saw, _runs = exposures_frames(ws.ledger, only_first)
    how = dict(zip(saw["version"], saw["how"]))
    assert how[first.name] == "trained on it"
    assert how[second.name] == f"descends from {first.name}, which trained on it"
