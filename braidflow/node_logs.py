"""Log lines of task handlers, kept per node run: `context.log` and the standard `logging`.

While the executor runs a handler it sets the node run's `NodeLog` as the current one (a
contextvar, `capturing`); a line `context.log` writes, and a record any logger makes in
that context (in the handler's own tasks too, and in the thread of a plain `def` handler:
`asyncio.to_thread` copies the context), is added to it. Outside a handler nothing is kept.

Bounded, so a chatty handler cannot make a record the broker refuses or fill a worker's
memory: at most `MAX_LINES` lines and `MAX_BYTES` bytes of messages per node run, each
message at most `MAX_LINE_CHARS` characters. The first lines are kept; what does not fit is
counted (`cut_lines`) and the run's log says `cut`.

Secrets: every line is redacted with the run's redaction as it is added (the values the
handler has read so far), and again when the run ends (values read after the line was
written), as outputs are (docs/secrets.md). A record made in a handler's context has its
message and traceback redacted before any logging handler sees it, so the worker's own
console does not show the values either.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import traceback
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
        self._lines: list[LogLine] = []
        self._bytes = 0
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
        """Keep a line, redacted and cut to size; count it when it no longer fits."""
        text = self.redact(message)
        shortened = len(text) > self._max_line_chars
        if shortened:
            left = len(text) - self._max_line_chars
            text = f"{text[: self._max_line_chars]}... (cut: {left:,} more characters)"
        size = len(text.encode("utf-8", errors="replace"))
        with self._lock:
            if self._closed:
                return
            if len(self._lines) >= self._max_lines or self._bytes + size > self._max_bytes:
                self.cut_lines += 1
                return
            self._lines.append(LogLine(self._clock(), level, text))
            self._bytes += size
            self.shortened += shortened

    def close(self) -> tuple[LogLine, ...]:
        """The lines kept, redacted again; nothing is added afterwards."""
        with self._lock:
            self._closed = True
            lines = tuple(self._lines)
        return tuple(LogLine(line.at, line.level, self.redact(line.message)) for line in lines)


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


def capture_handler_logging(level: int = CAPTURED_LEVEL) -> None:
    """Route the standard `logging` of handlers into their node runs' logs (idempotent).

    When the root logger is above `level` (a worker at `--loglevel warning`), it is lowered to
    `level`, and each handler already on it raised to the old level: the console shows what
    it showed before, and records from `level` up reach the node runs' logs.
    """
    root = logging.getLogger()
    if any(isinstance(h, NodeRunLogHandler) for h in root.handlers):
        return
    old = root.getEffectiveLevel()
    if old > level:
        for handler in root.handlers:
            if handler.level < old:
                handler.setLevel(old)
        root.setLevel(level)
    root.addHandler(NodeRunLogHandler())
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "braidflow_node_logs", False):
        logging.setLogRecordFactory(_redacting_factory(factory))
