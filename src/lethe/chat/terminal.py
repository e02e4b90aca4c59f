"""The terminal chat loop: streaming replies, /reset, /params, /model, logging.

`TerminalChat` reads lines and writes text through callables, so the same loop runs in a
terminal (``input`` / ``sys.stdout.write``) and in tests (a list of lines / a buffer).
Ctrl-C while a reply streams cancels that reply through the engine's `CancelToken`. The
conversation is a `ChatSession`, which logs each exchange to the sink it is given.
"""

from __future__ import annotations

import dataclasses
import shlex
import typing
from collections.abc import Callable
from typing import Any, Protocol

from lethe.chat.engine import ChatEngine
from lethe.chat.reply import ReplyStats
from lethe.chat.sampling import SamplingParams
from lethe.chat.session import ChatSession, ExchangeSink
from lethe.errors import InputError, LetheError, Where

HELP = """commands:
  /reset              forget this conversation and start a new one
  /params             show sampling parameters; /params temperature=0.7 top_k=20 stop=END
  /model [VERSION]    show the model version, or switch to another one
  /system [TEXT]      show the system prompt, or set it and start a new conversation
  /help               this text
  /quit               leave (Ctrl-D works too; Ctrl-C stops a reply)"""


class ServedModel(Protocol):
    """A loaded model version (`lethe.serve.models.LoadedModel` fits)."""

    name: str
    id: int | None
    engine: ChatEngine


def parse_sampling(params: SamplingParams, assignments: list[str]) -> SamplingParams:
    """`params` with ``name=value`` assignments applied (values parsed per field type)."""
    fields = typing.get_type_hints(SamplingParams)
    changes: dict[str, Any] = {}
    for assignment in assignments:
        name, sep, raw = assignment.partition("=")
        if not sep or name not in fields:
            raise InputError(f"expected name=value with name one of {', '.join(fields)}", Where(field=name))
        kind = fields[name]
        if name == "stop":
            changes[name] = tuple(s for s in raw.split(",") if s)
        elif name == "seed":
            changes[name] = None if raw.lower() in ("", "none") else int(raw)
        elif kind is bool:
            changes[name] = raw.lower() in ("1", "true", "yes", "on")
        else:
            try:
                changes[name] = kind(raw)
            except ValueError:
                raise InputError(f"{raw!r} is not a valid {name}", Where(field=name)) from None
    return dataclasses.replace(params, **changes)


def format_stats(stats: ReplyStats, version: str) -> str:
    return (
        f"[{version} · {stats.completion_tokens} tokens · {stats.tokens_per_second:.0f} tok/s · "
        f"first token {stats.time_to_first_token_s * 1000:.0f} ms]"
    )


class TerminalChat:
    """One conversation at a time with one model version, over line I/O."""

    def __init__(
        self,
        load_model: Callable[[str], ServedModel],
        model: str,
        *,
        read: Callable[[str], str],
        write: Callable[[str], None],
        logger: ExchangeSink | None = None,
        params: SamplingParams | None = None,
        system_prompt: str | None = None,
    ):
        self.load_model = load_model
        self.model = load_model(model)
        self.read = read
        self.write = write
        self.params = params or SamplingParams()
        self.session = ChatSession(sink=logger, front_end="terminal", system_prompt=system_prompt)

    @property
    def system_prompt(self) -> str | None:
        return self.session.system_prompt

    @property
    def messages(self) -> list[dict[str, str]]:
        return self.session.messages

    @property
    def conversation_id(self) -> int | None:
        return self.session.conversation_id

    def reset(self, system_prompt: str | None = None) -> None:
        self.session.reset(system_prompt)

    def run(self) -> None:
        """Chat until /quit or end of input."""
        self.write(f"chatting with {self.model.name}; /help for commands\n")
        while True:
            try:
                line = self.read("> ")
            except (EOFError, KeyboardInterrupt):
                self.write("\n")
                return
            if not self.handle(line):
                return

    def handle(self, line: str) -> bool:
        """Act on one input line; False when the chat should end."""
        line = line.strip()
        if not line:
            return True
        if not line.startswith("/"):
            self.say(line)
            return True
        command, _, rest = line.partition(" ")
        try:
            return self._command(command, rest.strip())
        except (LetheError, ValueError) as error:
            self.write(f"error: {error}\n")
            return True

    def _command(self, command: str, rest: str) -> bool:
        if command in ("/quit", "/exit"):
            return False
        if command == "/help":
            self.write(HELP + "\n")
        elif command == "/reset":
            self.reset()
            self.write("(new conversation)\n")
        elif command == "/params":
            if rest:
                self.params = parse_sampling(self.params, shlex.split(rest))
            shown = " ".join(f"{k}={v}" for k, v in self.params.to_dict().items())
            self.write(shown + "\n")
        elif command == "/model":
            if rest:
                self.model = self.load_model(rest)
            self.write(f"model version {self.model.name}\n")
        elif command == "/system":
            if rest:
                self.reset(rest)
                self.write("(new conversation)\n")
            self.write(f"system prompt: {self.system_prompt or '(none)'}\n")
        else:
            self.write(f"unknown command {command}; /help lists them\n")
        return True

    def say(self, text: str) -> str:
        """Send a user message, stream the reply to `write`, return the reply text."""
        user = {"role": "user", "content": text}
        engine = self.model.engine
        try:
            events = engine.chat(self.session.prompt(user), self.params)
        except LetheError as error:
            self.write(f"error: {error}\n")
            return ""
        parts: list[str] = []
        final = None
        try:
            for event in events:
                if event.text:
                    parts.append(event.text)
                    self.write(event.text)
                if event.done:
                    final = event
        except KeyboardInterrupt:
            events.cancel()
            for event in events:  # drain to the final event so stats are known
                parts.append(event.text)
                final = event if event.done else final
        reply = "".join(parts)
        if final is None or final.error is not None:
            self.write(f"\nerror: {final.error if final else 'no reply'}\n")
            return reply
        stopped = " (stopped)" if final.finish_reason == "cancelled" else ""
        self.write(f"\n{format_stats(final.stats, self.model.name)}{stopped}\n")
        self.session.record(
            [user],
            reply,
            model_version=self.model.name,
            model_version_id=self.model.id,
            params=self.params.to_dict(),
            stats={**final.stats.to_dict(), "finish_reason": final.finish_reason},
        )
        return reply
