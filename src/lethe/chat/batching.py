"""Step-level (continuous) batching: one thread decodes every active reply together.

Requests wait in a queue. Between decoding steps the scheduler admits waiting requests:
each is prefilled on its own, its first token sampled, and its cache merged into the
batch's left-padded cache (`BatchedKVCache`). Every step then feeds one token per active
sequence through the model at once, samples the next tokens (`BatchSampler`), turns them
into text (`IncrementalDetokenizer`, `StopMatcher`) and hands events to each request's
`emit` callback. Finished, cancelled and failed sequences leave between steps.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lethe.chat.detokenizer import IncrementalDetokenizer
from lethe.chat.kv_cache import BatchedKVCache, GrowingCache
from lethe.chat.reply import CancelToken, ReplyEvent, ReplyStats, TokenLogprob
from lethe.chat.sampling import BatchSampler, SamplingParams
from lethe.chat.stops import StopMatcher

log = logging.getLogger(__name__)


@dataclass
class GenerationRequest:
    """A prompt to continue, how, and where to send the reply's events."""

    prompt_ids: list[int]
    params: SamplingParams
    emit: Callable[[ReplyEvent], None]
    """Called from the scheduler thread with each event; must be quick and never block."""
    cancel: CancelToken = field(default_factory=CancelToken)
    max_new_tokens: int = 0
    """Set by the scheduler: the request's limit, lowered to what the context leaves."""
    submitted_at: float = field(default_factory=time.perf_counter)


class _Sequence:
    """A request being decoded: its text state, counters and clocks."""

    def __init__(self, request: GenerationRequest, tokenizer: PreTrainedTokenizerBase):
        self.request = request
        self.detokenizer = IncrementalDetokenizer(tokenizer)
        self.stops = StopMatcher(request.params.stop)
        self.completion_tokens = 0
        self.last_token = -1
        self.first_token_at: float | None = None
        self.finish_reason: str | None = None
        self.pending_logprobs: list[TokenLogprob] = []
        """Log probabilities of tokens whose text has not been emitted yet."""

    def take_logprobs(self) -> tuple[TokenLogprob, ...]:
        taken = tuple(self.pending_logprobs)
        self.pending_logprobs.clear()
        return taken

    def emit(self, event: ReplyEvent) -> None:
        try:
            self.request.emit(event)
        except Exception:  # a consumer that went away must not stop the other replies
            log.exception("dropping an event for a reply whose consumer failed")

    def finish(self, reason: str, error: BaseException | None = None) -> None:
        self.finish_reason = reason
        tail = ""
        if reason not in ("cancelled", "error"):
            tail = self.stops.feed(self.detokenizer.flush()) + self.stops.flush()
        now = time.perf_counter()
        started = self.request.submitted_at
        first = self.first_token_at if self.first_token_at is not None else now
        decode_s = now - first
        rate = (
            (self.completion_tokens - 1) / decode_s
            if self.completion_tokens > 1 and decode_s > 0
            else self.completion_tokens / max(now - started, 1e-9)
        )
        stats = ReplyStats(
            prompt_tokens=len(self.request.prompt_ids),
            completion_tokens=self.completion_tokens,
            time_to_first_token_s=first - started,
            total_s=now - started,
            tokens_per_second=rate,
        )
        event = ReplyEvent(
            text=tail, done=True, finish_reason=reason, stats=stats, error=error, logprobs=self.take_logprobs()
        )
        self.emit(event)


class BatchScheduler:
    """Owns the model while serving: a daemon thread that steps all active replies."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        stop_token_ids: set[int],
        context_length: int,
        max_batch_size: int = 16,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.stop_token_ids = stop_token_ids
        self.context_length = context_length
        self.max_batch_size = max_batch_size
        self.device = next(model.parameters()).device
        self._waiting: queue.Queue[GenerationRequest | None] = queue.Queue()
        self._active: list[_Sequence] = []
        self._cache = BatchedKVCache()
        self._sampler = BatchSampler(model.config.vocab_size)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lethe-batch-scheduler", daemon=True)
        self._thread.start()

    @property
    def active(self) -> int:
        """Replies being decoded right now."""
        return len(self._active)

    @property
    def waiting(self) -> int:
        """Replies queued for a place in the batch."""
        return self._waiting.qsize()

    def submit(self, request: GenerationRequest) -> None:
        """Queue a request; its events arrive through `request.emit`."""
        if self._closed.is_set():
            raise RuntimeError("the batch scheduler is closed")
        room = self.context_length - len(request.prompt_ids)
        request.max_new_tokens = max(0, min(request.params.max_new_tokens, room))
        self._waiting.put(request)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread; replies still running end with finish reason "cancelled"."""
        self._closed.set()
        self._waiting.put(None)
        self._thread.join(timeout)

    # -- the scheduler thread -------------------------------------------------------------

    def _run(self) -> None:
        with torch.inference_mode():
            while not self._closed.is_set():
                try:
                    self._admit(block=not self._active)
                    if self._active:
                        self._step()
                except Exception as error:  # keep serving: fail the batch, not the thread
                    log.exception("decoding step failed")
                    self._fail_all(error)
            for sequence in self._active:
                sequence.finish("cancelled")
            while not self._waiting.empty():
                request = self._waiting.get_nowait()
                if request is not None:
                    _Sequence(request, self.tokenizer).finish("cancelled")

    def _admit(self, *, block: bool) -> None:
        while len(self._active) < self.max_batch_size:
            try:
                request = self._waiting.get(block=block, timeout=0.5 if block else None)
            except queue.Empty:
                return
            if request is None:
                return
            block = False
            sequence = _Sequence(request, self.tokenizer)
            try:
                self._prefill(sequence)
            except Exception as error:
                log.exception("prefill failed")
                if len(self._sampler) > len(self._active):
                    self._sampler.select(list(range(len(self._active))))
                sequence.finish("error", error)

    def _prefill(self, sequence: _Sequence) -> None:
        request = sequence.request
        if request.cancel.cancelled:
            sequence.finish("cancelled")
            return
        if request.max_new_tokens <= 0:
            sequence.finish("length")
            return
        ids = torch.tensor([request.prompt_ids], dtype=torch.long, device=self.device)
        cache = GrowingCache()
        output = self.model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1)
        row = len(self._sampler)
        self._sampler.add(request.params, request.prompt_ids)
        (token,) = self._sampler.sample(output.logits[:, -1, :], rows=[row])
        logprob = self._sampler.last_logprobs[0] if self._sampler.last_logprobs else None
        # In the batch before its first token is emitted, so whoever sees that token also sees
        # the reply counted among the active ones (the /metrics gauge, a disconnect's cancel).
        self._cache.append(output.cache, len(request.prompt_ids))
        self._active.append(sequence)
        if self._advance(sequence, token, logprob):
            self._remove(list(range(row)))

    def _step(self) -> None:
        self._drop(lambda s: s.request.cancel.cancelled, "cancelled")
        if not self._active:
            return
        tokens = torch.tensor([[s.last_token] for s in self._active], device=self.device)
        mask, positions = self._cache.step_inputs()
        output = self.model(
            input_ids=tokens,
            attention_mask=mask.to(self.device),
            position_ids=positions.to(self.device),
            cache=self._cache.cache,
            use_cache=True,
        )
        self._cache.advance(mask)
        next_tokens = self._sampler.sample(output.logits[:, -1, :])
        logprobs = self._sampler.last_logprobs or [None] * len(next_tokens)
        finished = [self._advance(s, t, lp) for s, t, lp in zip(self._active, next_tokens, logprobs)]
        if any(finished):
            self._remove([i for i, done in enumerate(finished) if not done])

    def _advance(self, sequence: _Sequence, token: int, logprob: TokenLogprob | None = None) -> bool:
        """Take one sampled token; emit its text; return True if the reply has ended."""
        now = time.perf_counter()
        if sequence.first_token_at is None:
            sequence.first_token_at = now
        sequence.completion_tokens += 1
        sequence.last_token = token
        request = sequence.request
        if token in self.stop_token_ids and not request.params.ignore_eos:
            sequence.finish("stop")
            return True
        if logprob is not None:
            sequence.pending_logprobs.append(logprob)
        text = sequence.stops.feed(sequence.detokenizer.add(token))
        if text:
            sequence.emit(ReplyEvent(text=text, logprobs=sequence.take_logprobs()))
        if sequence.stops.stopped:
            sequence.finish("stop")
            return True
        if sequence.completion_tokens >= request.max_new_tokens:
            sequence.finish("length")
            return True
        return False

    def _drop(self, predicate: Callable[[_Sequence], bool], reason: str) -> None:
        keep = []
        for i, sequence in enumerate(self._active):
            if predicate(sequence):
                sequence.finish(reason)
            else:
                keep.append(i)
        if len(keep) < len(self._active):
            self._remove(keep)

    def _remove(self, keep: list[int]) -> None:
        self._active = [self._active[i] for i in keep]
        self._cache.select(keep)
        self._sampler.select(keep)

    def _fail_all(self, error: BaseException) -> None:
        for sequence in self._active:
            if sequence.finish_reason is None:
                sequence.finish("error", error)
        self._active = []
        self._cache = BatchedKVCache()
        self._sampler = BatchSampler(self.model.config.vocab_size)
