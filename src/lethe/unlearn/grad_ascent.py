"""Gradient ascent: push the forget answers' likelihood down, nothing else (loss = −NLL)."""

from __future__ import annotations

from lethe.unlearn.base import register_method
from lethe.unlearn.grad_diff import GradDiff


@register_method("grad_ascent")
class GradAscent(GradDiff):
    uses_retain = False
