"""A left-padded key/value cache shared by every sequence of a decoding batch.

Sequences join at different times with different lengths, so each row of the batch is
left-padded to the longest; the attention mask hides the padding and explicit position ids
keep every row's positions its own. Rows leave with `select`; columns that became padding
in every row are then cut off so the cache does not grow with past sequences.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import DynamicCache


def _left_pad(tensor: torch.Tensor, length: int) -> torch.Tensor:
    missing = length - tensor.shape[-2]
    return F.pad(tensor, (0, 0, missing, 0)) if missing > 0 else tensor


class BatchedKVCache:
    """The batch's `DynamicCache`, its attention mask (rows x cached tokens) and lengths."""

    def __init__(self) -> None:
        self.cache: DynamicCache | None = None
        self.mask = torch.zeros(0, 0, dtype=torch.long)

    def __len__(self) -> int:
        return self.mask.shape[0]

    @property
    def lengths(self) -> torch.Tensor:
        """Real (unpadded) tokens cached per row."""
        return self.mask.sum(dim=1)

    def append(self, cache: DynamicCache, length: int) -> None:
        """Add one prefilled sequence (a batch-of-one cache holding `length` tokens)."""
        row_mask = torch.ones(1, length, dtype=torch.long)
        if self.cache is None or len(self) == 0:
            self.cache, self.mask = cache, row_mask
            return
        width = max(self.mask.shape[1], length)
        for batch_layer, new_layer in zip(self.cache.layers, cache.layers):
            batch_layer.keys = torch.cat(
                [_left_pad(batch_layer.keys, width), _left_pad(new_layer.keys, width)]
            )
            batch_layer.values = torch.cat(
                [_left_pad(batch_layer.values, width), _left_pad(new_layer.values, width)]
            )
        self.mask = torch.cat(
            [F.pad(self.mask, (width - self.mask.shape[1], 0)), F.pad(row_mask, (width - length, 0))]
        )

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
            layer.keys = layer.keys[index, :, first_real:]
            layer.values = layer.values[index, :, first_real:]
