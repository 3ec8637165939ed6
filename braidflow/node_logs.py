"""Log lines of task handlers, kept per node run: `context.log` and the standard `logging`.

While the executor runs a handler it sets the node run's `NodeLog` as the current one (a
contextvar, `capturing`); a line `context.log` writes, and a record any logger makes in
that context (in the handler's own tasks too, and in the thread of a plain `def` handler:
`asyncio.to_thread` copies the context), is added to it. Outside a handler nothing is kept.

Bounded, so a chatty handler cannot make a record the broker refuses or fill a worker's
memory: at most `MAX_LINES` lines and `MAX_BYTES` bytes of messages per node run, each
message at most `MAX_LINE_CHARS` characters. Past the bounds the first half and the last
half are kept (the last lines before a failure are the ones people look for), a line in
between says how many were left out; they are counted (`cut_lines`) and the run's log says
`cut`.

Secrets: every line is redacted with the run's redaction as it is added (the values the
handler has read so far), and again when the run ends (values read after the line was
written), as outputs are (docs/secrets.md). A long message is cut to size only then, after
that last redaction: a value read later that straddles the cut is taken out whole, not
left in part (up to `MAX_LINE_CHARS` characters of it past the cut). A record made in a handler's context has its
message and traceback redacted before any logging handler sees it, so the worker's own
console does not show the values either.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

LEVELS = ("debug", "info", "warning", "error", "critical")
"""The levels `context.log` takes; a record of the standard `logging` keeps its level's name."""

MAX_LINES = 500
"""Lines kept per node run."""
MAX_BYTES = 64 * 1024
"""Bytes of messages (UTF-8) kept per node run."""
MAX_LINE_CHARS = 4096
"""Characters kept of one message."""

CAPTURED_LEVEL = logging.INFO
"""The least level of a standard `logging` record kept from a handler, whatever the level of
the worker's console: a logger a handler sets lower gives its lines too."""


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line: when (epoch ms), its level, its message."""

    at: int
    level: str
    message: str


@dataclass(frozen=True, slots=True)
class _Held:
    """A line as added: its message redacted so far and not cut yet (but to twice the bound),
    how long the message was, and the bytes it takes once cut (what the bounds count)."""

    line: LogLine
    length: int
    size: int


def cut_line(line: LogLine, length: int, max_chars: int) -> LogLine:
    """`line` with its message cut to `max_chars` characters, saying how many more there
    were (`length`: the whole message's, of which `line` may hold only a part)."""
    message = line.message
    if length <= max_chars and len(message) <= max_chars:
        return line
    left = len(message) - max_chars + (length - len(message))
    return LogLine(line.at, line.level, f"{message[:max_chars]}... (cut: {left:,} more characters)")


def cut_notice(at: int, lines: int) -> LogLine:
    """The line that stands where `lines` lines were left out."""
    return LogLine(at, "warning", f"(cut: {lines:,} line{'' if lines == 1 else 's'} not kept here)")


class NodeLog:
    """The lines one node run logs, bounded. Thread-safe: a plain `def` handler adds from its
    thread. After `close`, lines are ignored (a handler abandoned at its timeout goes on)."""

    def __init__(
        self,
        clock: Callable[[], int],
        redact: Callable[[str], str] = str,
        *,
        max_lines: int = MAX_LINES,
        max_bytes: int = MAX_BYTES,
        max_line_chars: int = MAX_LINE_CHARS,
    ) -> None:
        self._clock = clock
        self.redact = redact
        self._max_lines = max_lines
        self._max_bytes = max_bytes
        self._max_line_chars = max_line_chars
        # Until a line is left out, every line is in `_tail`; then the first half of the
        # bounds stays in `_head` for good, and `_tail` drops its oldest lines.
        self._head: list[_Held] = []
        self._tail: deque[_Held] = deque()
        self._head_bytes = 0
        self._tail_bytes = 0
        self._lock = threading.Lock()
        self._closed = False
        self.cut_lines = 0
        """Lines not kept: over the bounds."""
        self.shortened = 0
        """Lines kept with their message cut to `max_line_chars`."""

    @property
    def cut(self) -> bool:
        """Whether anything logged is missing: a line not kept or a message shortened."""
        return self.cut_lines > 0 or self.shortened > 0

    def add(self, level: str, message: str) -> None:
        """Keep a line, redacted; past the bounds, drop the oldest line after the first half."""
        text = self.redact(message)
        line = LogLine(0, level, text[: 2 * self._max_line_chars])
        shown = cut_line(line, len(text), self._max_line_chars).message
        size = len(shown.encode("utf-8", errors="replace"))
        with self._lock:
            if self._closed:
                return
            held = _Held(LogLine(self._clock(), level, line.message), len(text), size)
            self._tail.append(held)
            self._tail_bytes += size
            self.shortened += len(text) > self._max_line_chars
            if self._over():
                self._keep_head()
                while self._tail and self._over():
                    self._tail_bytes -= self._tail.popleft().size
                    self.cut_lines += 1

    def _over(self) -> bool:
        lines = len(self._head) + len(self._tail)
        return lines > self._max_lines or self._head_bytes + self._tail_bytes > self._max_bytes

    def _keep_head(self) -> None:
        """At the first line left out: the first lines within half the bounds stay."""
        if self._head or self.cut_lines:
            return
        max_lines = self._max_lines - self._max_lines // 2
        max_bytes = self._max_bytes - self._max_bytes // 2
        while (
            self._tail
            and len(self._head) < max_lines
            and self._head_bytes + self._tail[0].size <= max_bytes
        ):
            held = self._tail.popleft()
            self._head.append(held)
            self._head_bytes += held.size
            self._tail_bytes -= held.size

    def close(self) -> tuple[LogLine, ...]:
        """The lines kept, redacted again then cut to size; nothing is added afterwards."""
        with self._lock:
            self._closed = True
            head, tail = list(self._head), list(self._tail)
        lines = [self._final(held) for held in head]
        if self.cut_lines:
            at = tail[0].line.at if tail else head[-1].line.at if head else self._clock()
            lines.append(cut_notice(at, self.cut_lines))
        lines += [self._final(held) for held in tail]
        return tuple(lines)

    def _final(self, held: _Held) -> LogLine:
        line = held.line
        redacted = LogLine(line.at, line.level, self.redact(line.message))
        return cut_line(
            redacted, held.length - len(line.message) + len(redacted.message), self._max_line_chars
        )


_current: contextvars.ContextVar[NodeLog | None] = contextvars.ContextVar(
    "braidflow_node_log", default=None
)


def current() -> NodeLog | None:
    """The log of the node run whose handler is running here; None outside a handler."""
    return _current.get()


@contextlib.contextmanager
def capturing(log: NodeLog) -> Iterator[NodeLog]:
    """Make `log` the current node run's log for the code run inside (and what it starts)."""
    token = _current.set(log)
    try:
        yield log
    finally:
        _current.reset(token)


def level_name(level: int) -> str:
    """The name a standard `logging` level gets in a node's log: `info`, `warning`..."""
    return logging.getLevelName(level).lower()


class NodeRunLogHandler(logging.Handler):
    """Adds each record made in a handler's context to its node run's log; ignores others."""

    def emit(self, record: logging.LogRecord) -> None:
        log = _current.get()
        if log is None:
            return
        try:
            message = record.getMessage()
            if record.exc_text:
                message = f"{message}\n{record.exc_text}"
            log.add(level_name(record.levelno), message)
        except Exception:
            self.handleError(record)


def _redacting_factory(
    make: Callable[..., logging.LogRecord],
) -> Callable[..., logging.LogRecord]:
    """A record factory that, in a handler's context, takes the values of the secrets read
    so far out of a record's message and traceback before any logging handler formats it."""

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = make(*args, **kwargs)
        log = _current.get()
        if log is None:
            return record
        try:
            text = record.getMessage()
        except Exception:
            # Logging would print the format and the arguments as they are: redact them too.
            text = f"{record.msg!r} with arguments {record.args!r}"
        record.msg = log.redact(text)
        # Empty, not None: some formatters (mode's) turn a None into one argument.
        record.args = ()
        if record.exc_info and record.exc_info[1] is not None:
            trace = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = log.redact(trace)
        return record

    factory.braidflow_node_logs = True  # type: ignore[attr-defined]
    return factory


def _enabled_in_handlers(
    enabled: Callable[[logging.Logger, int], bool], least: int
) -> Callable[[logging.Logger, int], bool]:
    """`Logger.isEnabledFor`, but in a handler's context a record from `least` up is
    made when only the root logger's level refuses it (no logger below the root set one).

    So the root keeps the worker's level: outside a handler a library's `info` costs what it
    did without the capture (the logger's cached answer, and a contextvar read), rather than
    a record made for every handler to refuse (the root lowered to INFO: 12-30 µs a call).
    """

    def is_enabled_for(self: logging.Logger, level: int) -> bool:
        if _current.get() is None or level < least:
            return enabled(self, level)
        if enabled(self, level):
            return True
        if self.disabled or self.manager.disable >= level:
            return False
        logger: logging.Logger | None = self
        while logger is not None and logger.level == logging.NOTSET:
            logger = logger.parent
        return logger is None or logger.parent is None

    is_enabled_for.braidflow_node_logs = True  # type: ignore[attr-defined]
    return is_enabled_for


def capture_handler_logging(level: int = CAPTURED_LEVEL) -> None:
    """Route the standard `logging` of handlers into their node runs' logs (idempotent).

    The root logger keeps its level; in a handler's context, records from `level` up are made
    whatever it is (`_enabled_in_handlers`). When the root is above `level` (a worker at
    `--loglevel warning`), each handler already on it is raised to the root's level: the
    console shows what it showed before, and records from `level` up reach the node runs' logs.
    """
    root = logging.getLogger()
    if any(isinstance(h, NodeRunLogHandler) for h in root.handlers):
        return
    old = root.getEffectiveLevel()
    if old > level:
        for handler in root.handlers:
            if handler.level < old:
                handler.setLevel(old)
    root.addHandler(NodeRunLogHandler())
    if not getattr(logging.Logger.isEnabledFor, "braidflow_node_logs", False):
        logging.Logger.isEnabledFor = _enabled_in_handlers(  # type: ignore[method-assign]
            logging.Logger.isEnabledFor, level
        )
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "braidflow_node_logs", False):
        logging.setLogRecordFactory(_redacting_factory(factory))
