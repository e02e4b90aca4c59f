"""Stop strings over streamed text: cut at the first match, never show part of one.

Text arrives in pieces (one token's worth at a time) and a stop string may be split across
pieces. `StopMatcher` therefore holds back the longest tail of the text that could still
grow into a stop string, and releases it once it cannot (or at the end of the reply).
"""

from __future__ import annotations

from collections.abc import Sequence


class StopMatcher:
    """Feeds streamed text through and reports when a stop string has appeared."""

    def __init__(self, stops: Sequence[str]):
        self.stops = tuple(s for s in stops if s)
        self.pending = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        """Add `piece`; return the text that is now safe to show.

        After a stop string is found, `stopped` is True, the text before it is returned and
        everything after it is dropped.
        """
        if self.stopped:
            return ""
        if not self.stops:
            return piece
        text = self.pending + piece
        cut = min((i for i in (text.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self.pending = ""
            return text[:cut]
        hold = self._longest_partial_tail(text)
        self.pending = text[len(text) - hold :] if hold else ""
        return text[: len(text) - hold]

    def flush(self) -> str:
        """The held-back text, at the end of a reply that did not stop on a string."""
        text, self.pending = self.pending, ""
        return "" if self.stopped else text

    def _longest_partial_tail(self, text: str) -> int:
        best = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(text)), best, -1):
                if text.endswith(stop[:size]):
                    best = size
                    break
        return best
