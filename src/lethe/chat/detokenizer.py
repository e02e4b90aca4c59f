"""Token ids to text, incrementally: each new token yields only the text it adds.

Byte-level BPE tokens can end in the middle of a UTF-8 character, and decoding a token on
its own can differ from decoding it in context, so the new text is the difference between
decoding a short window with and without the new tokens (the approach of TGI and vLLM),
held back while it ends in an incomplete character.
"""

from __future__ import annotations

from tokenizers.decoders import DecodeStream
from transformers import PreTrainedTokenizerBase

_INCOMPLETE = "\ufffd"


class IncrementalDetokenizer:
    """Turns a growing list of token ids into text deltas.

    With a fast tokenizer the work is done in Rust by `tokenizers`' `DecodeStream` (the
    same algorithm, without two Python-level decodes per token); otherwise in Python.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.prefix_offset = 0
        self.read_offset = 0
        backend = getattr(tokenizer, "backend_tokenizer", None)
        self._backend = backend
        self._stream = DecodeStream(skip_special_tokens=True) if backend is not None else None
        self._emitted = 0
        """Tokens whose text the stream has handed out (the rest is held back)."""

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def add(self, token_id: int) -> str:
        """Append one token; return the text it completes (possibly empty)."""
        self.ids.append(token_id)
        if self._stream is not None:
            text = self._stream.step(self._backend, token_id)
            if text is None:
                return ""
            self._emitted = len(self.ids)
            return text
        before = self._decode(self.ids[self.prefix_offset : self.read_offset])
        after = self._decode(self.ids[self.prefix_offset :])
        if len(after) > len(before) and not after.endswith(_INCOMPLETE):
            delta = after[len(before) :]
            self.prefix_offset, self.read_offset = self.read_offset, len(self.ids)
            return delta
        return ""

    def flush(self) -> str:
        """Whatever is still held back (an incomplete character is shown as U+FFFD)."""
        if self._stream is not None:
            held = self.ids[self._emitted :]
            self._emitted = len(self.ids)
            return self._decode(held) if held else ""
        before = self._decode(self.ids[self.prefix_offset : self.read_offset])
        after = self._decode(self.ids[self.prefix_offset :])
        self.read_offset = len(self.ids)
        return after[len(before) :] if len(after) > len(before) else ""
