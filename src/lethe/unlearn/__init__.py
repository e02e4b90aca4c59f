"""Unlearning: one loss per method, one file each, all found by name in a registry.

The methods run in one shared loop over training's step engine (`lethe.train.steps`).

    from lethe.unlearn import UnlearnConfig, run_unlearning
    result = run_unlearning("npo", model, tokenizer, forget, retain, UnlearnConfig(beta=0.1))

Every module of this package that defines a method registers it; the registry imports them
all on its first lookup, so `list_methods()` names them and a new method is one new file.
"""

from lethe.unlearn.base import UnlearnMethod, get_method, list_methods, register_method
from lethe.unlearn.config import UnlearnConfig
from lethe.unlearn.loop import run_unlearning
from lethe.unlearn.progress import QuickMetrics
from lethe.unlearn.result import BatchDraw, UnlearnResult

__all__ = [
    "BatchDraw",
    "QuickMetrics",
    "UnlearnConfig",
    "UnlearnMethod",
    "UnlearnResult",
    "get_method",
    "list_methods",
    "register_method",
    "run_unlearning",
]
