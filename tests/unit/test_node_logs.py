"""What a task handler logs is kept for its node run: bounded, the cut said, secrets redacted,
and the standard `logging` attributed to the run whose handler made the record."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from braidflow.node_logs import (
    LogLine,
    NodeLog,
    NodeRunLogHandler,
    capture_handler_logging,
    capturing,
)
from braidflow.secrets import Redaction
from braidflow.tasks import TaskContext

T0 = 1_795_000_000_000


class FakeClock:
    """Each reading a millisecond after the last."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        self.now += 1
        return self.now


class Collected(logging.Handler):
    """What another handler on the root logger (the worker's console) is given."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(logging.Formatter("%(message)s").format(record))


@pytest.fixture
def captured() -> Iterator[Collected]:
    """The capture installed on the root logger, at WARNING as a worker runs by default;
    the root logger, its handlers and the record factory are put back afterwards."""
    root = logging.getLogger()
    level, handlers, factory = root.level, list(root.handlers), logging.getLogRecordFactory()
    console = Collected()
    root.handlers = [console]
    root.setLevel(logging.WARNING)
    capture_handler_logging()
    try:
        yield console
    finally:
        root.handlers = handlers
        root.setLevel(level)
        logging.setLogRecordFactory(factory)


def test_lines_are_kept_with_time_and_level_in_order() -> None:
    log = NodeLog(FakeClock())
    log.add("info", "looking up")
    log.add("warning", "slow")
    assert log.close() == (
        LogLine(T0 + 1, "info", "looking up"),
        LogLine(T0 + 2, "warning", "slow"),
    )
    assert not log.cut and log.cut_lines == 0


def test_past_the_line_bound_the_first_and_the_last_lines_are_kept_the_cut_said_between() -> None:
    log = NodeLog(FakeClock(), max_lines=4)
    for n in range(10):
        log.add("info", f"line {n}")
    lines = log.close()
    assert [line.message for line in lines] == [
        "line 0",
        "line 1",
        "(cut: 6 lines not kept here)",
        "line 8",
        "line 9",
    ]
    assert (lines[2].level, lines[2].at) == ("warning", lines[3].at)
    assert (log.cut, log.cut_lines) == (True, 6)
    # Within the bounds nothing is cut, though past half of them.
    whole = NodeLog(FakeClock(), max_lines=4)
    for n in range(4):
        whole.add("info", f"line {n}")
    assert [line.message for line in whole.close()] == [f"line {n}" for n in range(4)]
    assert not whole.cut


def test_past_the_byte_bound_the_first_and_the_last_lines_are_kept() -> None:
    log = NodeLog(FakeClock(), max_bytes=25)
    # 10 bytes each but "z": the first half (13 bytes) keeps "é" * 5, the last the rest that fits.
    for text in ("é" * 5, "x" * 10, "y" * 10, "z"):
        log.add("info", text)
    assert [line.message for line in log.close()] == [
        "é" * 5,
        "(cut: 1 line not kept here)",
        "y" * 10,
        "z",
    ]
    assert (log.cut, log.cut_lines) == (True, 1)


def test_a_long_message_is_shortened_and_says_so() -> None:
    log = NodeLog(FakeClock(), max_line_chars=10)
    log.add("info", "a" * 25)
    [line] = log.close()
    assert line.message == "aaaaaaaaaa... (cut: 15 more characters)"
    assert (log.cut, log.cut_lines, log.shortened) == (True, 0, 1)


def test_lines_after_the_run_ended_are_ignored() -> None:
    log = NodeLog(FakeClock())
    log.add("info", "in time")
    log.close()
    log.add("info", "from a thread abandoned at its timeout")
    assert [line.message for line in log.close()] == ["in time"]


def test_secrets_read_before_or_after_a_line_are_taken_out_of_it() -> None:
    redaction = Redaction()
    redaction.add("API_TOKEN", "tok-123456")
    log = NodeLog(FakeClock(), redaction.text)
    log.add("info", "calling with tok-123456")
    log.add("info", "and later-secret-99")
    redaction.add("LATE", "later-secret-99")
    assert [line.message for line in log.close()] == [
        "calling with [secrets.API_TOKEN]",
        "and [secrets.LATE]",
    ]


def test_a_secret_read_after_a_line_and_straddling_its_cut_leaves_no_part_of_it() -> None:
    redaction = Redaction()
    log = NodeLog(FakeClock(), redaction.text, max_line_chars=20)
    secret = "s3cr3t-value-xyz"
    log.add("info", "a" * 14 + secret + "b" * 30)  # the cut, at 20, falls inside the secret
    redaction.add("LATE", secret)
    [line] = log.close()
    assert not any(secret[:k] in line.message for k in range(3, len(secret) + 1)), line
    assert line.message == "aaaaaaaaaaaaaa[secre... (cut: 38 more characters)"
    assert (log.cut, log.shortened) == (True, 1)


def test_context_log_adds_a_line_at_a_level() -> None:
    log = NodeLog(FakeClock())
    context = TaskContext("ex", "wf", "n", 1, "ex:n:1", node_log=log)
    context.log("hello")
    context.log("oops", level="error")
    assert log.close() == (LogLine(T0 + 1, "info", "hello"), LogLine(T0 + 2, "error", "oops"))
    with pytest.raises(ValueError, match="level must be one of debug, info"):
        context.log("x", level="loud")


async def test_standard_logging_in_a_handler_goes_to_its_run_and_nowhere_else(
    captured: Collected,
) -> None:
    logger = logging.getLogger("tests.handler")
    first, second = NodeLog(FakeClock()), NodeLog(FakeClock())
    started = asyncio.Event()

    async def in_a_task(name: str) -> None:
        logger.warning("%s in a task", name)

    async def handler(log: NodeLog, name: str) -> None:
        with capturing(log):
            logger.info("%s begins", name)
            await started.wait()
            # In a task the handler starts, and in a thread: the context goes along.
            await asyncio.create_task(in_a_task(name))
            await asyncio.to_thread(logger.error, "%s in a thread", name)

    logger.warning("outside any handler")
    runs = asyncio.gather(handler(first, "one"), handler(second, "two"))
    await asyncio.sleep(0)
    started.set()
    await runs
    assert [(line.level, line.message) for line in first.close()] == [
        ("info", "one begins"),
        ("warning", "one in a task"),
        ("error", "one in a thread"),
    ]
    assert [line.message for line in second.close()] == [
        "two begins",
        "two in a task",
        "two in a thread",
    ]
    # The console shows what it showed before: warnings up, the info lines not.
    assert "outside any handler" in captured.texts and "one begins" not in captured.texts


def test_a_secret_in_a_record_is_taken_out_for_every_logging_handler(captured: Collected) -> None:
    redaction = Redaction()
    redaction.add("API_TOKEN", "tok-123456")
    log = NodeLog(FakeClock(), redaction.text)
    with capturing(log):
        try:
            raise PermissionError("refused tok-123456")
        except PermissionError:
            logging.getLogger("tests.handler").exception("sent %s", "tok-123456")
    [line] = log.close()
    assert line.level == "error"
    assert line.message.startswith("sent [secrets.API_TOKEN]\nTraceback")
    assert "PermissionError: refused [secrets.API_TOKEN]" in line.message
    assert all("tok-123456" not in text for text in captured.texts), captured.texts
    assert any("sent [secrets.API_TOKEN]" in text for text in captured.texts)


def test_a_record_that_cannot_be_formatted_shows_no_secret_either(captured: Collected) -> None:
    redaction = Redaction()
    redaction.add("API_TOKEN", "tok-123456")
    log = NodeLog(FakeClock(), redaction.text)
    with capturing(log):
        logging.getLogger("tests.handler").warning("token %d", "tok-123456")
    [line] = log.close()
    assert line.message == "'token %d' with arguments ('[secrets.API_TOKEN]',)"
    assert all("tok-123456" not in text for text in captured.texts), captured.texts


def test_the_capture_is_installed_once(captured: Collected) -> None:
    capture_handler_logging()
    root = logging.getLogger()
    assert sum(isinstance(h, NodeRunLogHandler) for h in root.handlers) == 1
    assert captured.level == logging.WARNING


def test_the_root_logger_keeps_its_level_and_a_handlers_info_lines_are_kept(
    captured: Collected,
) -> None:
    root = logging.getLogger()
    library, quiet = logging.getLogger("tests.library"), logging.getLogger("tests.quiet")
    quiet.setLevel(logging.WARNING)
    try:
        log = NodeLog(FakeClock())
        with capturing(log):
            library.info("in a handler")
            library.debug("below the level kept")
            quiet.info("its own logger's level refuses it")
        library.info("outside any handler")
        # Outside a handler a library's INFO makes no record at all: the root's level says no.
        assert root.level == logging.WARNING and not library.isEnabledFor(logging.INFO)
        assert [line.message for line in log.close()] == ["in a handler"]
        assert captured.texts == []
    finally:
        quiet.setLevel(logging.NOTSET)
