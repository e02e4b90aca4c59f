"""Unlearning: one shared loop, one file per method, all found by name in a registry.

    from lethe.unlearn import UnlearnConfig, run_unlearning
    result = run_unlearning("npo", model, tokenizer, forget, retain, UnlearnConfig(beta=0.1))

Importing this package registers the built-in methods; `list_methods()` names them.
"""

from lethe.unlearn import (  # noqa: F401  (each module registers its method)
    distill,
    dpo_idk,
    exact,
    grad_ascent,
    grad_diff,
    idk,
    impact_ga,
    kl,
    l2sp,
    npo,
    retain_ft,
    rmu,
    simnpo,
    undial,
)
from lethe.unlearn.base import UnlearnMethod, get_method, list_methods, register_method
from lethe.unlearn.config import UnlearnConfig
from lethe.unlearn.loop import run_unlearning
from lethe.unlearn.progress import QuickMetrics, UnlearnProgress
from lethe.unlearn.result import BatchDraw, UnlearnResult

__all__ = [
    "BatchDraw",
    "QuickMetrics",
    "UnlearnConfig",
    "UnlearnMethod",
    "UnlearnProgress",
    "UnlearnResult",
    "get_method",
    "list_methods",
    "register_method",
    "run_unlearning",
]
