"""Stream the rows of a JSON file without loading it: JSON Lines, a JSON array, or several arrays.

Three layouts are accepted alike, told apart by the first character that is not blank:

* ``{`` — JSON Lines: one object per line, read line by line (blank lines are skipped);
* ``[`` — a JSON array, or several arrays one after another (TOFU's ``full.json`` holds four,
  one per line), read with `json.JSONDecoder.raw_decode` over a sliding buffer, so memory stays
  at about one buffer (1 MiB) plus the largest row whatever the file's size.

Every error is an `InputError` naming the file and the line (and the column for malformed
JSON, the byte offset for bytes that are not UTF-8). Parsing is strict (`limits`): no
``NaN`` / ``Infinity``, no duplicate keys, integers within 64 bits, bounded nesting, valid
Unicode, and no row larger than the per-document limit, checked before it is held whole.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from lethe.data.sources.limits import Refused, check_value, max_document_bytes, strict_decoder, too_large
from lethe.errors import InputError, Where

CHUNK = 1 << 20
"""Characters read per refill of the array parser's buffer."""
REFILL_BELOW = 1 << 16
"""Refill before decoding a row when fewer characters than this are buffered."""
_BOM = b"\xef\xbb\xbf"
_BLANK = " \t\r\n"


@dataclass
class Row:
    """One top-level row and where it starts."""

    value: Any
    line: int
    """1-based line of the row's first character."""
    index: int
    """0-based position of the row in the file (across arrays)."""


def iter_rows(path: Path, *, max_bytes: int | None = None) -> Iterator[Row]:
    """Every row of a JSON / JSON Lines / concatenated-arrays file, in order."""
    limit = max_bytes or max_document_bytes()
    for row in _rows(path, limit):
        check_value(row.value, Where(path=path, line=row.line))
        yield row


def _decode(decode, path: Path, line: int):
    """`decode()`, with what the strict decoder refuses as an error naming the line."""
    try:
        return decode()
    except Refused as e:
        raise InputError(str(e), Where(path=path, line=line)) from None
    except RecursionError:
        raise InputError("nested too deeply to read", Where(path=path, line=line)) from None


def _rows(path: Path, limit: int) -> Iterator[Row]:
    with open(path, "rb") as f:
        start = f.read(4096)
        f.seek(0)
        first = start.removeprefix(_BOM).lstrip()[:1]
        if not first:
            raise InputError("the file is empty (expected a JSON array or JSON Lines)", Where(path=path, line=1))
        if first == b"{":
            yield from _json_lines(f, path, limit)
        elif first == b"[":
            yield from _ArrayStream(f, path, limit).rows()
        else:
            line = start.count(b"\n", 0, len(start) - len(start.lstrip())) + 1
            raise InputError(
                f"not JSON: expected '[' (a JSON array) or '{{' (JSON Lines), found {first.decode('latin-1')!r}",
                Where(path=path, line=line),
            )


def _json_lines(f: BinaryIO, path: Path, limit: int) -> Iterator[Row]:
    offset, index = 0, 0
    decoder = strict_decoder()
    line_no = 0
    while raw := f.readline(limit + 1):
        line_no += 1
        if len(raw) > limit:
            raise too_large(limit, Where(path=path, line=line_no), "row")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise _not_utf8(path, line_no, offset + e.start, raw[e.start]) from None
        if line_no == 1:
            text = text.removeprefix("\ufeff")
        if text.strip(_BLANK):
            try:
                value = _decode(lambda t=text: decoder.decode(t), path, line_no)
            except json.JSONDecodeError as e:
                at_end = e.msg == "Extra data" or e.pos >= len(text.rstrip())
                hint = " (JSON Lines needs exactly one whole object per line)" if at_end else ""
                raise InputError(
                    f"malformed JSON: {e.msg} at column {e.colno}{hint}", Where(path=path, line=line_no)
                ) from None
            yield Row(value, line_no, index)
            index += 1
        offset += len(raw)


def _not_utf8(path: Path, line: int, offset: int, byte: int) -> InputError:
    return InputError(
        f"not UTF-8: byte 0x{byte:02x} cannot be decoded (save the file as UTF-8)",
        Where(path=path, line=line, offset=offset),
    )


class _ArrayStream:
    """A cursor over the decoded text of a file, holding only a window of it."""

    def __init__(self, f: BinaryIO, path: Path, limit: int):
        self.f, self.path, self.limit = f, path, limit
        self.decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.decoder_json = strict_decoder()
        self.bytes_fed = 0
        self.newlines_fed = 0
        self.buf, self.pos, self.eof = "", 0, False
        # line bookkeeping: `line` is the line number at buf[mark]; `column_carry` is how many
        # characters of the line containing buf[0] were dropped from the buffer already.
        self.line, self.mark, self.column_carry = 1, 0, 0
        head = f.read(3)
        if head != _BOM:
            f.seek(0)
        else:
            self.bytes_fed = 3

    # -- reading -------------------------------------------------------------------------------

    def _fill(self, at_least: int = CHUNK) -> None:
        """Drop what was consumed and append at least `at_least` more characters (unless EOF)."""
        self._compact()
        wanted = len(self.buf) + at_least
        while not self.eof and len(self.buf) < wanted:
            raw = self.f.read(max(CHUNK, at_least))
            pending = len(self.decoder.getstate()[0])
            try:
                text = self.decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as e:
                before = e.object[: e.start]
                raise _not_utf8(
                    self.path,
                    self.newlines_fed + before.count(b"\n") + 1,
                    self.bytes_fed - pending + e.start,
                    e.object[e.start],
                ) from None
            self.bytes_fed += len(raw)
            self.newlines_fed += raw.count(b"\n")
            self.eof = not raw
            self.buf += text

    def _compact(self) -> None:
        if self.pos == 0:
            return
        self._line_at(self.pos)
        dropped = self.buf[: self.pos]
        last_newline = dropped.rfind("\n")
        self.column_carry = self.pos - last_newline - 1 if last_newline >= 0 else self.column_carry + self.pos
        self.buf, self.pos, self.mark = self.buf[self.pos :], 0, 0

    def _line_at(self, p: int) -> int:
        """Line number of buf[p]; positions must be asked in increasing order."""
        self.line += self.buf.count("\n", self.mark, p)
        self.mark = p
        return self.line

    def _column_at(self, p: int) -> int:
        newline = self.buf.rfind("\n", 0, p)
        return p - newline if newline >= 0 else self.column_carry + p + 1

    def _peek(self) -> str | None:
        """The next non-blank character (not consumed), or None at the end of the file."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _BLANK:
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if self.eof:
                return None
            self._fill()

    def _error(self, message: str, p: int) -> InputError:
        line, column = self._line_at(p), self._column_at(p)
        return InputError(f"{message} at column {column}", Where(path=self.path, line=line))

    def _value(self) -> Any:
        if not self.eof and len(self.buf) - self.pos < REFILL_BELOW:
            self._fill()
        while True:
            try:
                value, end = _decode(
                    lambda: self.decoder_json.raw_decode(self.buf, self.pos),
                    self.path,
                    self._line_at(self.pos),
                )
            except json.JSONDecodeError as e:
                truncated = e.pos >= len(self.buf) - 64 or e.msg.startswith("Unterminated string")
                if truncated and not self.eof:
                    if len(self.buf) - self.pos > self.limit:
                        raise too_large(
                            self.limit, Where(path=self.path, line=self._line_at(self.pos)), "row"
                        ) from None
                    self._fill(max(CHUNK, len(self.buf) - self.pos))  # double the window and retry
                    continue
                raise self._error(f"malformed JSON: {e.msg}", e.pos) from None
            if end - self.pos > self.limit:  # held at most one refill window past the limit
                raise too_large(self.limit, Where(path=self.path, line=self._line_at(self.pos)), "row")
            self.pos = end
            return value

    # -- the grammar: value* where a top-level array contributes its elements ------------------

    def rows(self) -> Iterator[Row]:
        index = 0
        while (c := self._peek()) is not None:
            if c == "{":
                line = self._line_at(self.pos)
                yield Row(self._value(), line, index)
                index += 1
                continue
            if c != "[":
                raise self._error(f"malformed JSON: expected '[' or '{{' between arrays, found {c!r}", self.pos)
            self.pos += 1
            if self._peek() == "]":
                self.pos += 1
                continue
            while True:
                if self._peek() is None:
                    raise self._error("malformed JSON: the file ends inside an array", self.pos)
                line = self._line_at(self.pos)
                yield Row(self._value(), line, index)
                index += 1
                c = self._peek()
                if c == ",":
                    self.pos += 1
                elif c == "]":
                    self.pos += 1
                    break
                elif c is None:
                    raise self._error("malformed JSON: the file ends inside an array (missing ']')", self.pos)
                else:
                    raise self._error(f"malformed JSON: expected ',' or ']' after a row, found {c!r}", self.pos)
