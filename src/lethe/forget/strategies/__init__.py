"""How a forget request produces its candidate version: one strategy per way of forgetting.

`exact` replays training from the ledger without the documents; every approximate
unlearning method registered in `lethe.unlearn` runs through `approximate`. The request
orchestration asks `strategy_for(method)` and never tests a method's name.
"""

from lethe.forget.strategies.base import Candidate, Strategy, StrategyContext, is_exact, list_strategies, strategy_for

__all__ = ["Candidate", "Strategy", "StrategyContext", "is_exact", "list_strategies", "strategy_for"]
