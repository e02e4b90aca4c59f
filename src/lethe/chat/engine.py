"""The one generation engine behind the terminal chat, the HTTP API and the web UI.

`ChatEngine` takes a model and its tokenizer, runs a `BatchScheduler` thread that decodes
all concurrent replies together, and offers the same reply three ways: `stream` (a
blocking iterator of `ReplyEvent`), `astream` (the same for asyncio) and `complete` (the
finished `Reply`). Each front end only turns events into its own output; stop strings,
cancellation and statistics live here once.
"""

from __future__ import annotations

import asyncio
import collections
import queue
import threading
import types
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lethe.chat.batching import BatchScheduler, GenerationRequest
from lethe.chat.prompt import Message, Prompt, fit_prompt
from lethe.chat.reply import CancelToken, Reply, ReplyEvent
from lethe.chat.sampling import SamplingParams
from lethe.errors import InputError, LetheError, Where


@dataclass(frozen=True)
class EngineConfig:
    """How an engine serves its model."""

    max_batch_size: int = 16
    """Most replies decoded together; more requests wait for a free place."""
    context_length: int | None = None
    """Tokens of prompt plus reply; None takes the model's `max_position_embeddings`."""
    min_reply_tokens: int = 16
    """Room always left for the reply when old turns are dropped to fit a long history."""
    bf16: bool | None = None
    """Serve the weights in bfloat16. None decides: yes for models of `BF16_MIN_PARAMETERS` or
    more on a device with native bf16 matmuls (AVX512-BF16 / AMX, or a bf16 GPU), where
    decoding reads half the bytes per token; smaller models stay float32 (per-operation
    overhead, not weight traffic, bounds them)."""


BF16_MIN_PARAMETERS = 50_000_000
"""From this size on a model is served in bfloat16 by default. On this machine's AVX512-BF16 core
SmolLM2-135M decodes 8 replies about twice as fast as in float32 and one reply 1.3x (with
`matrix_vector_decoding`; `benchmarks/serve.py --base`); the 10M `small` preset gains nothing."""


def native_bf16(device: torch.device) -> bool:
    """Whether `device` multiplies bfloat16 matrices natively."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def _linear_one_row(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    if x.numel() != x.shape[-1]:
        return torch.nn.functional.linear(x, self.weight, self.bias)
    y = torch.mv(self.weight, x.reshape(-1))
    return (y if self.bias is None else y + self.bias).view(*x.shape[:-1], -1)


def matrix_vector_decoding(model: torch.nn.Module) -> None:
    """Make the model's linear layers use a matrix-vector product for a single row (decoding
    one reply). oneDNN's bf16 matmul with one row is no faster than float32 here (its kernel is
    built for blocks of rows), while `torch.mv` reads the bf16 weights about 1.6x faster: a
    SmolLM2 decoding step took 40 ms of CPU instead of 53 on this machine."""
    for module in model.modules():
        if type(module) is torch.nn.Linear:
            module.forward = types.MethodType(_linear_one_row, module)


def serve_bf16(model: PreTrainedModel, config: EngineConfig) -> bool:
    """Whether an engine with `config` serves `model` in bfloat16 (see `EngineConfig.bf16`)."""
    if config.bf16 is not None:
        return config.bf16
    parameters = sum(p.numel() for p in model.parameters())
    return parameters >= BF16_MIN_PARAMETERS and native_bf16(next(model.parameters()).device)


def default_stop_token_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> set[int]:
    """End of turn and end of text, from lethe's tokenizer or the model's generation config."""
    ids: set[int] = set()
    try:
        from lethe.data.tokenizer import stop_token_ids

        ids.update(stop_token_ids(tokenizer))
    except (ImportError, LetheError):
        pass
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    configured = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(configured)
    return {i for i in ids if i is not None}


def _encode_chat(tokenizer: PreTrainedTokenizerBase, messages: list[Message]) -> list[int]:
    encoded = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, add_generation_prompt=True)
    return list(encoded["input_ids"])


def _message_overhead(tokenizer: PreTrainedTokenizerBase) -> int:
    """Tokens the chat template adds around one message (role markers, end of turn)."""
    user, assistant = {"role": "user", "content": ""}, {"role": "assistant", "content": ""}
    try:
        one = len(_encode_chat(tokenizer, [user]))
        three = len(_encode_chat(tokenizer, [user, assistant, user]))
    except Exception:  # noqa: BLE001  (a template that refuses empty turns: a fair guess)
        return 4
    return max(1, (three - one) // 2)


class ReplyStream:
    """A blocking iterator over one reply's events.

    Unlike a generator it survives an exception raised while waiting (Ctrl-C), so the
    caller can cancel and keep reading to the final event. Closing it (or dropping it)
    before the end cancels the reply.
    """

    def __init__(self, events: queue.SimpleQueue, cancel: CancelToken):
        self._events = events
        self.cancel_token = cancel
        self.finished = False

    def __iter__(self) -> ReplyStream:
        return self

    def __next__(self) -> ReplyEvent:
        if self.finished:
            raise StopIteration
        event = self._events.get()
        self.finished = event.done
        return event

    def cancel(self) -> None:
        self.cancel_token.cancel()

    def close(self) -> None:
        if not self.finished:
            self.cancel_token.cancel()

    def __del__(self) -> None:
        self.close()


class ChatEngine:
    """Streaming, batched generation for one model; thread-safe, one scheduler thread.

    A model served in bfloat16 (`EngineConfig.bf16`) is converted in place."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        config: EngineConfig | None = None,
        *,
        stop_token_ids: set[int] | None = None,
    ):
        self.config = config or EngineConfig()
        if serve_bf16(model, self.config):
            model = model.to(torch.bfloat16)  # in place: the engine owns the model while it serves
            matrix_vector_decoding(model)
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.context_length = self.config.context_length or int(getattr(model.config, "max_position_embeddings", 2048))
        if not getattr(tokenizer, "chat_template", None):
            raise InputError("the tokenizer has no chat template", Where(field="chat_template"))
        self.stop_token_ids = stop_token_ids if stop_token_ids is not None else default_stop_token_ids(model, tokenizer)
        self._overhead: int | None = None
        self._token_texts: dict[int, str] = {}
        self.scheduler = BatchScheduler(
            model,
            tokenizer,
            stop_token_ids=self.stop_token_ids,
            context_length=self.context_length,
            max_batch_size=self.config.max_batch_size,
        )

    # -- prompts -------------------------------------------------------------------------

    def prompt(self, messages: Sequence[Message], params: SamplingParams | None = None) -> Prompt:
        """The prompt for replying to `messages`, oldest turns dropped to fit the context."""
        params = params or SamplingParams()
        reserve = max(self.config.min_reply_tokens, min(params.max_new_tokens, self.context_length // 2))
        budget = self.context_length - min(reserve, self.context_length - 1)
        return fit_prompt(
            [dict(m) for m in messages], lambda ms: _encode_chat(self.tokenizer, ms), budget, self._message_tokens
        )

    def encode_text(self, text: str) -> list[int]:
        """Token ids of a plain text prompt (no chat template), as the tokenizer adds specials."""
        return list(self.tokenizer(text)["input_ids"])

    def token_text(self, token_id: int) -> str:
        """One token's text, cached (log probabilities name every token they list)."""
        text = self._token_texts.get(token_id)
        if text is None:
            text = self.tokenizer.decode([token_id], skip_special_tokens=False, clean_up_tokenization_spaces=False)
            self._token_texts[token_id] = text
        return text

    def _message_tokens(self, messages: list[Message]) -> list[int]:
        """Each message's tokens in the template (content tokenized once, in one batch)."""
        if not messages:
            return []
        if self._overhead is None:
            self._overhead = _message_overhead(self.tokenizer)
        contents = self.tokenizer([m["content"] for m in messages], add_special_tokens=False)["input_ids"]
        return [self._overhead + len(ids) for ids in contents]

    def _request(self, prompt_ids: Sequence[int], params: SamplingParams, emit, cancel):
        ids = list(prompt_ids)
        if not ids:
            raise InputError("the prompt is empty", Where(field="prompt_ids"))
        if len(ids) >= self.context_length:
            raise InputError(
                f"the prompt has {len(ids)} tokens; the context window holds {self.context_length}",
                Where(field="prompt_ids"),
            )
        vocab = self.model.config.vocab_size
        if min(ids) < 0 or max(ids) >= vocab:
            raise InputError(f"token ids must be in 0..{vocab - 1}", Where(field="prompt_ids"))
        return GenerationRequest(ids, params, emit=emit, cancel=cancel or CancelToken())

    # -- generation ----------------------------------------------------------------------

    def stream(
        self,
        prompt_ids: Sequence[int],
        params: SamplingParams | None = None,
        cancel: CancelToken | None = None,
    ) -> ReplyStream:
        """Events of the reply to `prompt_ids`; closing the stream cancels the reply."""
        events: queue.SimpleQueue[ReplyEvent] = queue.SimpleQueue()
        request = self._request(prompt_ids, params or SamplingParams(), events.put, cancel)
        self.scheduler.submit(request)
        return ReplyStream(events, request.cancel)

    async def astream(
        self,
        prompt_ids: Sequence[int],
        params: SamplingParams | None = None,
        cancel: CancelToken | None = None,
    ) -> AsyncIterator[ReplyEvent]:
        """`stream` for asyncio; cancelling the consuming task cancels the reply."""
        loop = asyncio.get_running_loop()
        # Events cross threads through a deque; the loop is woken once per batch of events
        # rather than once per token (each wake-up is a syscall and a turn of the loop,
        # competing with the decoding thread for the GIL).
        pending: collections.deque[ReplyEvent] = collections.deque()
        ready = asyncio.Event()
        wake_scheduled = threading.Event()

        def wake() -> None:
            wake_scheduled.clear()
            ready.set()

        def emit(event: ReplyEvent) -> None:
            pending.append(event)
            if not wake_scheduled.is_set():
                wake_scheduled.set()
                loop.call_soon_threadsafe(wake)

        request = self._request(prompt_ids, params or SamplingParams(), emit, cancel)
        self.scheduler.submit(request)
        try:
            while True:
                await ready.wait()
                ready.clear()
                while pending:
                    event = pending.popleft()
                    yield event
                    if event.done:
                        return
        finally:
            request.cancel.cancel()

    def chat(
        self,
        messages: Sequence[Message],
        params: SamplingParams | None = None,
        cancel: CancelToken | None = None,
    ) -> ReplyStream:
        """Stream the assistant's reply to a conversation."""
        params = params or SamplingParams()
        return self.stream(self.prompt(messages, params).ids, params, cancel)

    def complete(
        self,
        prompt_ids: Sequence[int],
        params: SamplingParams | None = None,
        cancel: CancelToken | None = None,
    ) -> Reply:
        """The whole reply, once finished."""
        return collect(self.stream(prompt_ids, params, cancel))

    def close(self) -> None:
        """Stop the scheduler thread; running replies end as "cancelled"."""
        self.scheduler.close()


def collect(events: Iterator[ReplyEvent]) -> Reply:
    """Join a reply's events; an engine failure is raised here."""
    parts: list[str] = []
    for event in events:
        parts.append(event.text)
        if event.done:
            if event.error is not None:
                raise event.error
            assert event.stats is not None and event.finish_reason is not None
            return Reply("".join(parts), event.finish_reason, event.stats)
    raise RuntimeError("the reply ended without a final event")
