"""The OpenAI wire format: chat and text completions, stream chunks, models, errors.

Requests are parsed strictly, as OpenAI parses them: every field has a type and a range
(``"10"`` is not a number, ``1e12`` is not an integer, ``Infinity`` is not a penalty), text
must be valid Unicode (a lone surrogate is refused before it reaches a tokenizer) and an
unknown field is an error that names it. A few OpenAI fields lethe does not implement
(tools, response formats, logit bias) are accepted only when null, so clients that send
them empty keep working. `top_k`, `repetition_penalty` and `ignore_eos` are lethe (and
vLLM) extensions.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from lethe.chat.sampling import SamplingParams

DEFAULT_MAX_TOKENS = 256
MAX_TOKENS_LIMIT = 1_000_000
"""No context window lethe serves comes near this; anything larger is a client bug."""
INT64_MAX = 2**63 - 1
MAX_TOP_LOGPROBS = 20

_SURROGATE = re.compile("[\ud800-\udfff]")


def _valid_text(value: str) -> str:
    match = _SURROGATE.search(value)
    if match is not None:
        raise ValueError(f"invalid Unicode: a lone surrogate at character {match.start()}")
    return value


def field_error(name: str, reason: str) -> PydanticCustomError:
    """A validation error of the whole request that names the field it is about."""
    return PydanticCustomError("invalid_field", "{field}: {reason}", {"field": name, "reason": reason})


Text = Annotated[str, AfterValidator(_valid_text)]
"""A string that is valid Unicode (encodable as UTF-8)."""

Finite = Annotated[float, Field(allow_inf_nan=False)]
StopText = Annotated[Text, Field(min_length=1, max_length=256)]

# OpenAI fields lethe does not implement; a null value means "not used" and is accepted.
UNSUPPORTED_WHEN_SET = (
    "tools",
    "tool_choice",
    "functions",
    "function_call",
    "parallel_tool_calls",
    "response_format",
    "logit_bias",
    "metadata",
    "store",
    "modalities",
    "audio",
    "prediction",
    "service_tier",
    "reasoning_effort",
    "web_search_options",
)


class Strict(BaseModel):
    """Strict types, unknown fields refused."""

    model_config = ConfigDict(strict=True, extra="forbid")


class ContentPart(Strict):
    """One part of a multi-part message; only text is understood."""

    type: Literal["text"]
    text: Text


class ChatMessage(Strict):
    """One message of the conversation sent by the client."""

    role: Literal["system", "developer", "user", "assistant"]
    content: Text | list[ContentPart] | None = None
    name: Text | None = Field(None, max_length=256)
    # What the client library echoes back when a previous reply is appended as is.
    refusal: None = None
    tool_calls: None = None
    function_call: None = None
    audio: None = None
    annotations: None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)

    def as_dict(self) -> dict[str, str]:
        role = "system" if self.role == "developer" else self.role
        return {"role": role, "content": self.text()}


class StreamOptions(Strict):
    """Options of a streamed response."""

    include_usage: bool = False
    """Send one last chunk, with empty choices, carrying the token usage."""


class SamplingRequest(Strict):
    """The sampling fields chat and text completions share."""

    model: Text = Field(min_length=1, max_length=256)
    temperature: Finite = Field(1.0, ge=0, le=2)
    top_p: Finite = Field(1.0, gt=0, le=1)
    top_k: int = Field(0, ge=0, le=MAX_TOKENS_LIMIT)
    repetition_penalty: Finite = Field(1.0, gt=0, le=100)
    frequency_penalty: Finite = Field(0.0, ge=-2, le=2)
    presence_penalty: Finite = Field(0.0, ge=-2, le=2)
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    stop: StopText | list[StopText] | None = None
    seed: int | None = Field(None, ge=-INT64_MAX - 1, le=INT64_MAX)
    ignore_eos: bool = False
    n: int = Field(1, ge=1, le=128)
    """Choices to generate; the server's own maximum may be lower."""
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: Text | None = Field(None, max_length=256)

    @model_validator(mode="before")
    @classmethod
    def _unsupported_fields(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        present = [key for key in UNSUPPORTED_WHEN_SET if key in data]
        for key in present:
            if data[key] is not None:
                raise field_error(key, "not supported by this server (send null or leave it out)")
        return {k: v for k, v in data.items() if k not in present} if present else data

    @model_validator(mode="after")
    def _check_stop(self) -> SamplingRequest:
        if isinstance(self.stop, list) and len(self.stop) > 4:
            raise field_error("stop", "at most 4 stop sequences")
        return self

    def reply_limit(self) -> int:
        return self.max_tokens or DEFAULT_MAX_TOKENS

    def sampling_params(self, logprobs: int | None = None, seed_offset: int = 0) -> SamplingParams:
        """The engine's settings; `seed_offset` gives each of `n` choices its own seed."""
        stop = self.stop if isinstance(self.stop, list) else ([self.stop] if self.stop else [])
        seed = None if self.seed is None else (self.seed + seed_offset) % 2**63
        return SamplingParams(
            temperature=self.temperature,
            top_k=self.top_k,
            top_p=self.top_p,
            repetition_penalty=self.repetition_penalty,
            frequency_penalty=self.frequency_penalty,
            presence_penalty=self.presence_penalty,
            max_new_tokens=self.reply_limit(),
            stop=tuple(stop),
            seed=seed,
            ignore_eos=self.ignore_eos,
            logprobs=logprobs,
        )


class ChatCompletionRequest(SamplingRequest):
    """`POST /v1/chat/completions`."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)

    @model_validator(mode="after")
    def _check_logprobs(self) -> ChatCompletionRequest:
        if self.top_logprobs is not None and not self.logprobs:
            raise field_error("top_logprobs", "needs logprobs set to true")
        return self

    def reply_limit(self) -> int:
        return self.max_completion_tokens or self.max_tokens or DEFAULT_MAX_TOKENS

    def logprob_count(self) -> int | None:
        """None: no logprobs; k: the chosen token's logprob and the k most likely."""
        return (self.top_logprobs or 0) if self.logprobs else None

    def message_dicts(self) -> list[dict[str, str]]:
        return [m.as_dict() for m in self.messages]


class CompletionRequest(SamplingRequest):
    """`POST /v1/completions`: continue a text prompt."""

    prompt: Text = Field(max_length=4 * 1024 * 1024)
    logprobs: int | None = Field(None, ge=0, le=5)
    """The legacy API's form: an integer, the number of alternatives per token."""
    echo: Literal[False] = False
    suffix: None = None
    best_of: Literal[1] | None = None

    def logprob_count(self) -> int | None:
        return self.logprobs


# -- responses -------------------------------------------------------------------------


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class LetheStats(BaseModel):
    """lethe's extension on every response: the version served and the reply's timings."""

    model_version: str
    model_version_id: int | None = None
    weights_sha256: str | None = None
    time_to_first_token_s: float | None = None
    tokens_per_second: float | None = None
    dropped_messages: int = 0
    conversation_id: int | None = None
    """The logged conversation (also the X-Lethe-Conversation header); a streamed reply that
    starts one names it here, in the usage chunk, since its headers left before it was logged."""


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprob] | None
    refusal: None = None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str | None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: str | None = None
    choices: list[Choice]
    usage: Usage
    lethe: LetheStats


class CompletionLogprobs(BaseModel):
    """The legacy completions' logprobs: parallel lists."""

    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]] | None
    text_offset: list[int]


class CompletionChoice(BaseModel):
    index: int = 0
    text: str
    finish_reason: str | None
    logprobs: CompletionLogprobs | None = None


class TextCompletion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    system_fingerprint: str | None = None
    choices: list[CompletionChoice]
    usage: Usage
    lethe: LetheStats


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "lethe"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``."""

    error: ErrorBody


def completion_id(prefix: str = "chatcmpl") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())
