"""Exact forgetting: replay the lineage's training from the last checkpoint that never saw
the documents (`lethe.train.pipeline.replay`), with the same seeds and settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lethe.errors import InputError, Where
from lethe.forget.strategies.base import RECORDED_KEYS, STRATEGIES, Candidate, Strategy, StrategyContext

SETTINGS = {"retokenize"}
"""What an exact replay takes: everything else is the lineage's own recorded training."""


@STRATEGIES.register("exact")
class ExactReplay(Strategy):
    name = "exact"
    exact = True
    tunable = False

    def check(self, settings: dict[str, Any]) -> None:
        unknown = sorted(set(settings) - SETTINGS - set(RECORDED_KEYS) - {"seed"})
        if unknown:
            raise InputError(
                f"exact replay retrains with the lineage's own recorded settings; {', '.join(unknown)} "
                "does not apply (only --retokenize does)",
                Where(field=unknown[0]),
            )

    def unlearn(self, context: StrategyContext) -> Candidate:
        from lethe.train import distributed
        from lethe.train.pipeline import replay

        versions = distributed.run_everywhere(  # under `accelerate launch`, on every process
            replay,
            context.workspace,
            context.base.lineage_id,
            exclude_document_ids=context.trained_ids,
            publish=False,
            aliases=(),
            retokenize=bool(context.settings.get("retokenize")),
            main_only={"callback": context.callback or (lambda _event: None)},
        )
        version = versions[-1]
        return Candidate(
            version=version,
            directory=Path(version.path),
            history=[{"note": "exact replay", "versions": [v.name for v in versions]}],
        )
