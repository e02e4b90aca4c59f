"""Evaluation: metrics for answers, unlearning, membership inference and memorisation.

Importing this package registers every metric (see `lethe.eval.metrics`). The model-based
helpers in `lethe.eval.scoring` import torch and are imported on demand, not here.
"""

from lethe.eval import memorisation, mia, text, tofu_math  # noqa: F401  (registers metrics)
from lethe.eval.metrics import get_metric, list_metrics, register_metric

__all__ = ["get_metric", "list_metrics", "register_metric"]
