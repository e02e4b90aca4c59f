"""Approximate forgetting: one of the unlearning methods of `lethe.unlearn` on the base
version's weights, with the forget documents and a seeded sample of the retain documents."""

from __future__ import annotations

import random
from dataclasses import asdict
from typing import Any

from lethe.errors import InputError, Where
from lethe.forget.strategies.base import Candidate, Strategy, StrategyContext
from lethe.ledger.states import VersionKind, VersionStatus

RETAIN_CAP = 2000
"""At most this many retain documents (drawn, seeded, from what the base version trained on)."""


def training_examples(documents, tokenizer, train_config) -> list[dict]:
    """The unlearning examples of `documents`, tokenized as the lineage trained on them."""
    from lethe.train.examples import build_examples

    by_id = {d.id: d for d in documents}
    out = []
    for example in build_examples(documents, tokenizer, train_config):
        data = by_id[example.document_id].data or {}
        out.append(
            {
                "input_ids": list(example.input_ids),
                "labels": list(example.labels),
                "document_id": example.document_id,
                "prompt": data.get("question"),
                "answer": data.get("answer"),
                "perturbed_answers": data.get("perturbed_answers"),
                "subject": subject_of(by_id[example.document_id]),
            }
        )
    return out


def subject_of(document) -> str | None:
    """Whom a document is about, when its source says: the synthetic world's entity, a TOFU
    author (what `whp` groups the forget examples by to find each subject's name)."""
    meta = document.meta or {}
    if meta.get("entity"):
        return str(meta["entity"])
    if meta.get("author") is not None:
        return f"author/{meta['author']}"
    return None


class ApproximateUnlearning(Strategy):
    """Runs the unlearning method registered as `method`; what it needs (a reference model,
    token weights) it declares on its class."""

    def __init__(self, method: str):
        from lethe.unlearn import get_method

        self.method = get_method(method)
        self.name = method

    def check(self, settings: dict[str, Any]) -> None:
        from lethe.unlearn.config import UnlearnConfig

        if settings.get("retokenize"):
            raise InputError(
                f"retokenize retrains the tokenizer in an exact replay; method {self.name!r} keeps the model's",
                Where(field="retokenize"),
            )
        UnlearnConfig.from_dict(settings)  # unknown or invalid settings are refused here

    def unlearn(self, context: StrategyContext) -> Candidate:
        from lethe.data.tokenizer import load_tokenizer
        from lethe.model.io import save_version, weights_sha256
        from lethe.train import distributed
        from lethe.train.config import lineage_config
        from lethe.unlearn.config import UnlearnConfig
        from lethe.unlearn.loop import unlearn_version

        workspace, request, base = context.workspace, context.request, context.base
        ledger = workspace.ledger
        train_config = lineage_config(ledger, base.lineage_id)
        settings = context.settings
        if "bf16" not in settings and train_config.bf16:
            settings = {**settings, "bf16": True}  # unlearn at the precision the lineage trained in
        config = UnlearnConfig.from_dict(settings)
        tokenizer = load_tokenizer(base.path)
        forget_docs = ledger.documents(context.trained_ids)
        forbidden = set(context.trained_ids)
        retain_ids = [d for d in ledger.documents_seen(base.id) if d not in forbidden]
        random.Random(config.seed).shuffle(retain_ids)
        retain_docs = [d for d in ledger.documents(retain_ids[:RETAIN_CAP]) if d.forgotten_at is None]
        forget_examples = training_examples(forget_docs, tokenizer, train_config)
        retain_examples = training_examples(retain_docs, tokenizer, train_config)
        if not forget_examples:
            raise InputError("the forget documents yield no training examples (all erased?)")
        token_weights = None
        if self.method.needs_token_weights:
            from lethe.eval.impact import token_weights_for

            token_weights = token_weights_for(workspace, base, forget_examples)
        result = distributed.run_everywhere(  # under `accelerate launch`, on every process
            unlearn_version,
            base.path,
            self.name,
            forget_examples,
            retain_examples,
            config,
            token_weights=token_weights,
            main_only={"callback": context.callback, "cancel": context.cancel},
        )
        ledger.record_exposures(context.run_id, result.exposures())
        directory = workspace.path("models", f"unlearn-r{request.id}-run{context.run_id}")
        save_version(result.model, tokenizer, directory)
        version = ledger.register_version(
            kind=VersionKind.UNLEARN,
            path=str(directory),
            weights_sha256=weights_sha256(directory),
            lineage_id=base.lineage_id,
            parent_id=base.id,
            run_id=context.run_id,
            status=VersionStatus.CANDIDATE,
            aliases=(),
            meta={
                "method": self.name,
                "request_id": request.id,
                "config": config.to_dict(),
                "steps": result.steps,
                "stop_reason": result.stop_reason,
                "wall_time": result.wall_time,
            },
        )
        return Candidate(version=version, directory=directory, history=[asdict(r) for r in result.history])
