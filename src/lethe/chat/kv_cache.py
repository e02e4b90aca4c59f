"""The key/value cache of a decoding batch: preallocated, left-padded, shared by all rows.

`DynamicCache` concatenates every new token onto the whole cache, copying it at each step;
with eight sequences that copy costs as much as the model. `GrowingLayer` instead writes
into a buffer with headroom that doubles when full. `BatchedKVCache` keeps the rows of a
batch together: sequences join at different times with different lengths, so each row is
left-padded to the longest; the attention mask hides the padding and explicit position ids
keep every row's positions its own. Rows leave with `select`, and columns that became
padding in every row are cut off so the cache does not grow with past sequences.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

MIN_HEADROOM = 64
"""Token slots added at least when a buffer is (re)allocated."""


class GrowingLayer(DynamicLayer):
    """A `DynamicLayer` whose keys and values are views of a buffer with spare room."""

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        super().lazy_initialization(key_states, value_states)
        self.length = 0
        self._keys = self._values = None

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        if self._keys is None:
            self.replace(key_states, value_states)
            return self.keys, self.values
        added = key_states.shape[-2]
        if self.length + added > self._keys.shape[-2]:
            self.replace(self.keys, self.values, reserve=added)
        end = self.length + added
        self._keys[..., self.length : end, :] = key_states
        self._values[..., self.length : end, :] = value_states
        self.length = end
        self.keys = self._keys[..., :end, :]
        self.values = self._values[..., :end, :]
        return self.keys, self.values

    def replace(self, keys: torch.Tensor, values: torch.Tensor, reserve: int = 0) -> None:
        """Hold exactly `keys` and `values` (batch x heads x tokens x dim) in a new buffer
        with room for at least `reserve` more tokens (and as many again as it holds)."""
        length = keys.shape[-2]
        self.allocate(keys.shape[0], keys, length, reserve)
        self._keys[..., :length, :] = keys
        self._values[..., :length, :] = values

    def allocate(self, rows: int, like: torch.Tensor, length: int, reserve: int = 0) -> None:
        """Fresh buffers for `rows` sequences of `length` tokens (contents not set) with room
        for `reserve` more; only the first `length` positions are ever read."""
        capacity = length + reserve + max(length + reserve, MIN_HEADROOM)
        shape = (rows, like.shape[1], capacity, like.shape[-1])
        self._keys, self._values = like.new_empty(shape), like.new_empty(shape)
        self.dtype, self.device = like.dtype, like.device
        self.is_initialized = True
        self.length = length
        self.keys = self._keys[..., :length, :]
        self.values = self._values[..., :length, :]


class GrowingCache(DynamicCache):
    """A `DynamicCache` made of `GrowingLayer`s (for full-attention models such as Llama)."""

    def __init__(self) -> None:
        super().__init__()
        self.layer_class_to_replicate = GrowingLayer


class BatchedKVCache:
    """The batch's `GrowingCache`, its attention mask (rows x cached tokens) and lengths."""

    def __init__(self) -> None:
        self.cache: GrowingCache | None = None
        self.mask = torch.zeros(0, 0, dtype=torch.long)

    def __len__(self) -> int:
        return self.mask.shape[0]

    @property
    def lengths(self) -> torch.Tensor:
        """Real (unpadded) tokens cached per row."""
        return self.mask.sum(dim=1)

    def append(self, cache: GrowingCache, length: int) -> None:
        """Add one prefilled sequence (a batch-of-one cache holding `length` tokens)."""
        row_mask = torch.ones(1, length, dtype=torch.long)
        if self.cache is None or len(self) == 0:
            self.cache, self.mask = cache, row_mask
            return
        width = max(self.mask.shape[1], length)
        rows = len(self)
        for batch_layer, new_layer in zip(self.cache.layers, cache.layers):
            # One copy of each row into the joined buffer, right-aligned; zeros in the padding.
            old_keys, old_values, old_width = batch_layer.keys, batch_layer.values, batch_layer.keys.shape[-2]
            batch_layer.allocate(rows + 1, old_keys, width)
            for buffer, old, new in (
                (batch_layer._keys, old_keys, new_layer.keys),
                (batch_layer._values, old_values, new_layer.values),
            ):
                buffer[:rows, :, : width - old_width].zero_()
                buffer[:rows, :, width - old_width : width] = old
                buffer[rows:, :, : width - length].zero_()
                buffer[rows:, :, width - length : width] = new
        self.mask = torch.cat([F.pad(self.mask, (width - self.mask.shape[1], 0)), F.pad(row_mask, (width - length, 0))])

    def step_inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention mask and position ids for feeding one new token to every row."""
        positions = self.lengths.unsqueeze(1)
        mask = torch.cat([self.mask, torch.ones(len(self), 1, dtype=torch.long)], dim=1)
        return mask, positions

    def advance(self, mask: torch.Tensor) -> None:
        """Record that the step fed with `mask` (from `step_inputs`) has run."""
        self.mask = mask

    def select(self, keep: list[int]) -> None:
        """Keep only rows `keep`, then drop leading columns that are padding everywhere."""
        if not keep:
            self.cache, self.mask = None, torch.zeros(0, 0, dtype=torch.long)
            return
        index = torch.tensor(keep, dtype=torch.long)
        self.mask = self.mask[index]
        first_real = int((self.mask.cumsum(dim=1) == 0).sum(dim=1).min())
        self.mask = self.mask[:, first_real:]
        assert self.cache is not None
        for layer in self.cache.layers:
            layer.replace(layer.keys[index, :, first_real:], layer.values[index, :, first_real:])
