"""Quantisation: the forget metrics again after the weights are rounded to 8 and 4 bits.

Zhang et al. (ICLR 2025) found that 4-bit quantisation restores much of what approximate
unlearning removed: small weight updates vanish in the rounding, and the quantised model is
close to the quantised original. Every linear layer but the output head is replaced by its
bitsandbytes counterpart (runs on this CPU): LLM.int8 (`Linear8bitLt`, threshold 0: every
weight row int8) for 8 bits, NF4 (`Linear4bit`, blocks of 64) for 4 bits; the embeddings and
norms stay in float. The model passed in is copied, never changed.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator
from typing import Any

import torch

from lethe.eval.robustness.base import Metrics, Probe, ProbeContext, register_probe
from lethe.eval.robustness.measure import forget_questions, metrics_of_questions

SKIPPED = ("lm_head",)
"""Modules left in float (transformers' bitsandbytes integration skips the head too)."""


def _quantised_linear(linear: torch.nn.Linear, bits: int) -> torch.nn.Module:
    import bitsandbytes as bnb

    bias = linear.bias is not None
    if bits == 8:
        layer = bnb.nn.Linear8bitLt(
            linear.in_features, linear.out_features, bias=bias, has_fp16_weights=False, threshold=0.0
        )
    else:
        layer = bnb.nn.Linear4bit(
            linear.in_features, linear.out_features, bias=bias, compute_dtype=torch.float32, quant_type="nf4"
        )
    layer.load_state_dict(linear.state_dict())
    return layer.to(linear.weight.device)  # moving the parameters is what quantises them


def quantise(model: torch.nn.Module, bits: int) -> torch.nn.Module:
    """A copy of `model` whose linear layers (but the head) hold `bits`-bit weights."""
    if bits not in (4, 8):
        raise ValueError(f"bitsandbytes quantises to 8 or 4 bits, not {bits}")
    quantised = copy.deepcopy(model).float().eval()
    targets = [
        (name, module)
        for name, module in quantised.named_modules()
        if isinstance(module, torch.nn.Linear) and name.split(".")[-1] not in SKIPPED
    ]
    with _quiet_bitsandbytes():
        for name, module in targets:
            parent_name, _, child = name.rpartition(".")
            parent = quantised.get_submodule(parent_name) if parent_name else quantised
            setattr(parent, child, _quantised_linear(module, bits))
    return quantised


@contextlib.contextmanager
def _quiet_bitsandbytes() -> Iterator[None]:
    """bitsandbytes warns once per call that it casts LLM.int8 inputs to float16 and that no
    CPU kernel package is installed; both are expected here."""
    loggers = [logging.getLogger(name) for name in ("bitsandbytes", "bitsandbytes.autograd._functions")]
    previous = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, previous):
            logger.setLevel(level)


def dequantised_weight(module: torch.nn.Module) -> torch.Tensor:
    """The float weight a bitsandbytes (or plain) linear layer computes with."""
    import bitsandbytes as bnb
    import bitsandbytes.functional as bnbf

    if isinstance(module, bnb.nn.Linear4bit):
        return bnbf.dequantize_4bit(module.weight.data, module.weight.quant_state).float()
    if isinstance(module, bnb.nn.Linear8bitLt):
        scale = module.weight.SCB.float()[:, None] / 127.0
        return module.weight.data.float() * scale
    return module.weight.detach().float()


@register_probe("quantisation")
class Quantisation(Probe):
    description = "weights rounded to 8 / 4 bits (bitsandbytes), forget set measured again"

    def run(self, model: Any, context: ProbeContext) -> dict[str, Metrics]:
        questions = forget_questions(context.forget, context.config)
        if not questions:
            return {}
        out = {}
        with _quiet_bitsandbytes():
            for bits in context.config.quant_bits:
                quantised = quantise(model, bits)
                out[f"int{bits}"] = metrics_of_questions(quantised, context.tokenizer, questions, context.config)
        return out
