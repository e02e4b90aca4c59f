"""Sampling settings and the batched sampler that turns logits into next tokens.

Every active sequence may have its own settings; `BatchSampler` keeps them as per-row
tensors so one step of a batch is sampled with a handful of vectorised operations. Each row
draws its randomness from its own seeded generator, so a seeded reply does not
depend on which other requests happen to share the batch.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

import torch

from lethe.chat.reply import TokenLogprob
from lethe.errors import InputError, Where


@dataclass(frozen=True)
class SamplingParams:
    """How one reply is sampled. Defaults follow the OpenAI API where it has one."""

    temperature: float = 1.0
    """Softmax temperature; 0 means greedy decoding (always the most likely token)."""
    top_k: int = 0
    """Keep only the `top_k` most likely tokens; 0 keeps all."""
    top_p: float = 1.0
    """Nucleus sampling: keep the smallest set of tokens whose probability reaches `top_p`."""
    repetition_penalty: float = 1.0
    """CTRL-style penalty (>1 discourages) on every token already in the prompt or reply."""
    frequency_penalty: float = 0.0
    """OpenAI's: subtracted from a token's logit once per time the reply already used it."""
    presence_penalty: float = 0.0
    """OpenAI's: subtracted once from the logit of every token the reply already used."""
    max_new_tokens: int = 256
    """Upper bound on generated tokens; the context window may lower it."""
    stop: tuple[str, ...] = ()
    """Strings that end the reply; they are trimmed from the returned text."""
    seed: int | None = None
    """Seed of this reply's random generator; None draws a fresh one."""
    ignore_eos: bool = False
    """Keep going past end-of-turn tokens (benchmarks want a fixed length)."""
    logprobs: int | None = None
    """None: no log probabilities; k: each token's log probability and the k most likely."""

    def __post_init__(self) -> None:
        checks = [
            ("temperature", self.temperature >= 0, "must be >= 0"),
            ("top_k", self.top_k >= 0, "must be >= 0"),
            ("top_p", 0 < self.top_p <= 1, "must be in (0, 1]"),
            ("repetition_penalty", self.repetition_penalty > 0, "must be > 0"),
            ("max_new_tokens", self.max_new_tokens >= 1, "must be >= 1"),
            ("frequency_penalty", -2 <= self.frequency_penalty <= 2, "must be in [-2, 2]"),
            ("presence_penalty", -2 <= self.presence_penalty <= 2, "must be in [-2, 2]"),
            ("logprobs", self.logprobs is None or 0 <= self.logprobs <= 20, "must be in 0..20"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise InputError(f"{name} {rule}, got {getattr(self, name)!r}", Where(field=name))
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        if any(not s for s in self.stop):
            raise InputError("stop strings must not be empty", Where(field="stop"))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def to_dict(self) -> dict:
        """JSON-ready settings, for logs."""
        data = asdict(self)
        data["stop"] = list(self.stop)
        return data


@dataclass
class _Row:
    """Per-sequence sampler state that cannot be a tensor column."""

    rng: random.Random
    greedy: bool = field(default=False)
    logprobs: int | None = None


class BatchSampler:
    """Per-row sampling settings of a batch, and the vectorised sampling step.

    Rows are added with `add` (in batch order) and dropped with `select`; `sample` returns
    one token per row and records it for the penalties. Rows that asked for log
    probabilities find them in `last_logprobs` after each `sample`.
    """

    def __init__(self, vocab_size: int):
        self.vocab_size = vocab_size
        self.rows: list[_Row] = []
        self.temperature = torch.empty(0, 1)
        self.top_k = torch.empty(0, dtype=torch.long)
        self.top_p = torch.empty(0, 1)
        self.penalty = torch.empty(0, 1)
        self.frequency = torch.empty(0, 1)
        self.presence = torch.empty(0, 1)
        self.seen = torch.empty(0, vocab_size, dtype=torch.bool)
        self.counts = torch.empty(0, vocab_size)
        """Times each token was generated in each row's reply (for OpenAI's penalties)."""
        self.last_logprobs: list[TokenLogprob | None] = []
        self._counting = False
        """Whether any row since the batch was empty uses OpenAI's penalties (else counts stay 0)."""

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, params: SamplingParams, prompt_ids: list[int]) -> None:
        """Append a row for a new sequence whose prompt is `prompt_ids`."""
        seed = params.seed if params.seed is not None else random.getrandbits(63)
        self.rows.append(_Row(rng=random.Random(seed), greedy=params.greedy, logprobs=params.logprobs))
        temperature = params.temperature if params.temperature > 0 else 1.0
        self.temperature = torch.cat([self.temperature, torch.tensor([[temperature]])])
        top_k = params.top_k if 0 < params.top_k < self.vocab_size else self.vocab_size
        self.top_k = torch.cat([self.top_k, torch.tensor([top_k])])
        self.top_p = torch.cat([self.top_p, torch.tensor([[params.top_p]])])
        self.penalty = torch.cat([self.penalty, torch.tensor([[params.repetition_penalty]])])
        self.frequency = torch.cat([self.frequency, torch.tensor([[params.frequency_penalty]])])
        self.presence = torch.cat([self.presence, torch.tensor([[params.presence_penalty]])])
        seen = torch.zeros(1, self.vocab_size, dtype=torch.bool)
        if prompt_ids:
            ids = torch.tensor(prompt_ids, dtype=torch.long).clamp_(0, self.vocab_size - 1)
            seen[0, ids] = True
        self.seen = torch.cat([self.seen, seen])
        self.counts = torch.cat([self.counts, torch.zeros(1, self.vocab_size)])
        self._counting = self._counting or params.frequency_penalty != 0 or params.presence_penalty != 0

    def select(self, keep: list[int]) -> None:
        """Keep only the rows at positions `keep`, in that order."""
        index = torch.tensor(keep, dtype=torch.long)
        self.rows = [self.rows[i] for i in keep]
        self.temperature = self.temperature[index]
        self.top_k = self.top_k[index]
        self.top_p = self.top_p[index]
        self.penalty = self.penalty[index]
        self.frequency = self.frequency[index]
        self.presence = self.presence[index]
        self.seen = self.seen[index]
        self.counts = self.counts[index]
        if not keep:
            self._counting = False

    def sample(self, logits: torch.Tensor, rows: list[int] | None = None) -> list[int]:
        """Next token of each row from `logits` (one line per row, in order).

        `rows` names the rows the logits belong to (default: all, in batch order), so a
        newly admitted sequence can be sampled on its own after its prefill.
        """
        all_rows = rows is None
        rows = list(range(len(self.rows))) if rows is None else rows
        row_index = slice(None) if all_rows else torch.tensor(rows, dtype=torch.long)
        raw = logits.float()[:, : self.vocab_size]
        logits = raw
        penalty = self.penalty[row_index]
        if bool((penalty != 1).any()):
            penalised = torch.where(logits < 0, logits * penalty, logits / penalty)
            logits = torch.where(self.seen[row_index], penalised, logits)
        frequency, presence = self.frequency[row_index], self.presence[row_index]
        if bool((frequency != 0).any() or (presence != 0).any()):
            counts = self.counts[row_index]
            logits = logits - frequency * counts - presence * (counts > 0).float()
        chosen = torch.argmax(logits, dim=-1)
        sampled = [i for i, row in enumerate(rows) if not self.rows[row].greedy]
        if sampled:
            local = torch.tensor(sampled, dtype=torch.long)
            index = local if all_rows else row_index[local]
            probs = self._filtered_probs(logits[local] / self.temperature[index], index)
            # Inverse-CDF sampling: one uniform number per row, from the row's own generator.
            uniform = torch.tensor([self.rows[rows[i]].rng.random() for i in sampled])
            cdf = torch.cumsum(probs, dim=-1)
            target = (uniform * cdf[:, -1]).unsqueeze(1)
            drawn = torch.searchsorted(cdf, target, right=True).squeeze(1)
            chosen[local] = drawn.clamp_(max=self.vocab_size - 1)
        written = torch.arange(len(rows)) if all_rows else row_index
        self.seen[written, chosen] = True
        if self._counting:
            self.counts[written, chosen] += 1
        tokens = chosen.tolist()
        self.last_logprobs = self._logprobs(raw, rows, tokens)
        return tokens

    def _logprobs(self, raw: torch.Tensor, rows: list[int], tokens: list[int]) -> list[TokenLogprob | None]:
        """The model's log probabilities (before any sampling setting) for rows that asked."""
        wanted = [i for i, row in enumerate(rows) if self.rows[row].logprobs is not None]
        if not wanted:
            return []
        out: list[TokenLogprob | None] = [None] * len(rows)
        local = torch.tensor(wanted, dtype=torch.long)
        logp = torch.log_softmax(raw[local], dim=-1)
        k = max(self.rows[rows[i]].logprobs or 0 for i in wanted)
        top_values, top_ids = torch.topk(logp, k, dim=-1) if k else (None, None)
        chosen = logp[torch.arange(len(wanted)), torch.tensor([tokens[i] for i in wanted])].tolist()
        for j, i in enumerate(wanted):
            count = self.rows[rows[i]].logprobs or 0
            top: tuple[tuple[int, float], ...] = ()
            if count:
                assert top_ids is not None and top_values is not None
                top = tuple(zip(top_ids[j, :count].tolist(), top_values[j, :count].tolist(), strict=True))
            out[i] = TokenLogprob(token_id=tokens[i], logprob=chosen[j], top=top)
        return out

    def _filtered_probs(self, logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        top_k = self.top_k[index]
        top_p = self.top_p[index]
        needs_k = bool((top_k < self.vocab_size).any())
        needs_p = bool((top_p < 1).any())
        if needs_k or needs_p:
            sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
            ranks = torch.arange(self.vocab_size).unsqueeze(0)
            drop = ranks >= top_k.unsqueeze(1)
            if needs_p:
                sorted_probs = torch.softmax(sorted_logits.masked_fill(drop, -torch.inf), dim=-1)
                before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
                drop |= before >= top_p  # keeps at least the most likely token
            remove = torch.zeros_like(drop).scatter_(1, order, drop)
            logits = logits.masked_fill(remove, -torch.inf)
        return torch.softmax(logits, dim=-1)
