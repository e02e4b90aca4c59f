"""Audits of forget operations: models compared directly, and a forget request in a ledger."""

from __future__ import annotations

import json

import pytest
import torch

from eval_helpers import documents, trained_pair, workspace_with_models
from lethe.errors import ConflictError
from lethe.eval.audit import AuditConfig, build_audit
from lethe.eval.audit_render import render_audit
from lethe.eval.suite import SuiteConfig
from lethe.forget.audit import audit_forget_request, audit_request

torch.set_num_threads(1)
CONFIG = AuditConfig(suite=SuiteConfig(max_new_tokens=40, batch_size=4), samples=2)


def _text(renderable) -> str:
    from rich.console import Console

    console = Console(width=220, record=True)
    console.print(renderable)
    return console.export_text()


def test_perfect_forgetting_matches_the_reference() -> None:
    tokenizer, target, retain = trained_pair()
    docs = documents()
    history = [
        {"step": 1, "losses": {"loss": 0.5, "forget": 0.1}, "lr": 1e-4, "metrics": None},
        {
            "step": 2,
            "losses": {"loss": 0.9},
            "metrics": {"forget_loss": 3.0, "forget_accuracy": 0.2, "retain_loss": 0.1, "retain_accuracy": 0.9},
        },
    ]
    audit = build_audit(
        target,
        retain,
        tokenizer,
        forget=docs["forget"],
        retain=docs["retain"],
        holdout=docs["holdout"],
        reference_model=retain,
        history=history,
        config=CONFIG,
        info={"request": {"id": 7, "method": "test"}},
    )
    assert json.loads(json.dumps(audit)) == audit  # JSON-ready
    before, after = audit["metrics"]["before"]["forget"], audit["metrics"]["after"]["forget"]
    assert before["exact_match"] == 1.0 and after["exact_match"] < 1.0
    assert audit["changes"]["forget"]["loss"] == pytest.approx(after["loss"] - before["loss"])
    assert audit["changes"]["forget"]["loss"] > 1.0
    # the approximate model *is* the reference here: zero distance, forget quality 1
    comparison = audit["reference_comparison"]
    assert comparison["mean_abs_distance"] == 0.0
    assert comparison["forget_quality_vs_reference"] == pytest.approx(1.0)
    assert audit["mia"]["aucs"]["before"]["loss"] == 1.0
    assert audit["mia"]["aucs"]["after"]["loss"] < 1.0
    assert set(audit["mia"]["roc"]) == {"before", "after", "reference"}
    assert len(audit["truth_ratios"]["after"]) == 3
    assert len(audit["samples"]) == 2
    sample = audit["samples"][0]
    assert sample["before"] == sample["answer"] and sample["after"] == sample["reference"]
    assert [h["step"] for h in audit["history"]] == [1, 2] and audit["history"][1]["metrics"]["forget_loss"] == 3.0
    text = _text(render_audit(audit))
    assert "forget request 7" in text and "exact_match" in text and "membership inference" in text
    assert sample["question"][:30] in text


def test_no_forgetting_is_far_from_the_reference() -> None:
    tokenizer, target, retain = trained_pair()
    docs = documents()
    audit = build_audit(
        target,
        target,
        tokenizer,
        forget=docs["forget"],
        retain=docs["retain"],
        holdout=docs["holdout"],
        reference_model=retain,
        config=AuditConfig(suite=SuiteConfig(generate=False), samples=0),
    )
    assert audit["changes"]["forget"]["loss"] == 0.0
    assert audit["reference_comparison"]["mean_abs_distance"] > 0.1
    assert audit["samples"] == []
    assert 0.0 <= audit["reference_comparison"]["forget_quality_vs_reference"] <= 1.0


def test_a_forget_request_in_the_ledger(tmp_path) -> None:
    ws, ids, target, retain, _ = workspace_with_models(tmp_path)
    ledger = ws.ledger
    forget_ids = ids["forget"]
    request_id = ledger.create_forget_request(
        selector={"collection": "test/forget"},
        document_ids=forget_ids,
        trained_ids=forget_ids,
        method="grad_diff",
        base_version_id=target.id,
        config={"holdout": "test/holdout"},
    )
    with pytest.raises(ConflictError, match="no result version"):
        audit_request(ws, request_id)
    ledger.update_forget_request(request_id, result_version_id=retain.id, status="evaluated")
    audit = audit_request(ws, request_id)  # computes (no stored audit), with retain as "after"
    assert audit["request"]["id"] == request_id and audit["versions"]["after"]["name"] == "retain"
    assert audit["versions"]["reference"] is None and audit["reference_comparison"] is None
    assert audit["counts"]["retain"]["qa"] == 5 and audit["counts"]["holdout"]["qa"] == 4
    assert audit["metrics"]["after"]["forget"]["mia_auc_loss"] < 1.0
    assert ledger.forget_request(request_id).audit == audit
    stored = ledger.evaluations(request_id=request_id, benchmark="audit")
    assert {r.version_id for r in stored} == {target.id, retain.id}
    # an exact request for the same documents is found as the reference
    exact_id = ledger.create_forget_request(
        selector={"collection": "test/forget"},
        document_ids=forget_ids,
        trained_ids=forget_ids,
        method="exact",
        base_version_id=target.id,
    )
    ledger.update_forget_request(exact_id, result_version_id=retain.id, status="evaluated")
    again = audit_forget_request(
        ws,
        request_id,
        target,
        retain,
        forget_ids,
        store=False,
        config=AuditConfig(suite=SuiteConfig(generate=False), samples=1),
    )
    assert again["versions"]["reference"]["name"] == "retain"
    assert again["reference_comparison"]["mean_abs_distance"] == 0.0
    # once erased, the stored audit is all there is
    ledger.erase(forget_ids, reason="test", request_id=request_id)
    assert audit_request(ws, request_id, refresh=True) == audit
