"""Knowledge distillation on the retain set only: the forget data never reaches the student.

The student (the teacher's architecture freshly initialised from `config.seed`, or the preset
`config.student_preset`) learns to match the teacher's next-token distributions, KL(teacher ‖
student) over every real token of retain batches. No forget batch is ever drawn, so whatever
the student knows of the forget set it can only have inferred from the retain set.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from transformers import AutoModelForCausalLM

from lethe.unlearn.base import Losses, UnlearnMethod, register_method
from lethe.unlearn.batches import Batch
from lethe.unlearn.losses import logits_of, masked_kl


@register_method("distill")
class Distill(UnlearnMethod):
    uses_forget = False

    def model_to_train(self, model: torch.nn.Module) -> torch.nn.Module:
        self.teacher = model.eval()
        config = model.config
        if self.config.student_preset is not None:
            from lethe.model.presets import build_model

            student = build_model(
                self.config.student_preset,
                config.vocab_size,
                max_position_embeddings=config.max_position_embeddings,
                bos_token_id=config.bos_token_id,
                eos_token_id=config.eos_token_id,
                pad_token_id=config.pad_token_id,
                seed=self.config.seed,
            )
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.config.seed)
                student = AutoModelForCausalLM.from_config(copy.deepcopy(config))
        student.generation_config = copy.deepcopy(model.generation_config)
        return student

    def loss(self, model: torch.nn.Module, forget: Any, retain: Batch | None) -> Losses:
        with torch.no_grad():
            teacher_logits = logits_of(self.teacher, retain)
        kl = masked_kl(
            logits_of(model, retain),
            teacher_logits,
            retain["attention_mask"].bool(),
            self.config.distill_temperature,
        )
        return {"loss": kl, "kl": kl.detach()}
