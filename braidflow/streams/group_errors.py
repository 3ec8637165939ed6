"""Consumer group refusals no retry can fix: the worker stops with one line naming the cause.

A broker refuses a group join for good when the session timeout is outside its
`group.min.session.timeout.ms` .. `group.max.session.timeout.ms`, when the principal
may not use the group, or when the group id is taken by another kind of consumer.
aiokafka logs such an error once and then holds it for a `getmany` that Faust's
consumer never calls (the worker just never got ready); librdkafka reports it
on every retry. Either way, nothing changes until someone changes a setting, so
the worker says which one and stops (`Runtime.fail`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiokafka.consumer.group_coordinator import GroupCoordinator

from braidflow.config import APACHE_KAFKA_SESSION_TIMEOUT_S, Settings

INCONSISTENT_GROUP_PROTOCOL = 23
INVALID_GROUP_ID = 24
INVALID_SESSION_TIMEOUT = 26
GROUP_AUTHORIZATION_FAILED = 30
FATAL_GROUP_ERRORS = frozenset(
    {
        INCONSISTENT_GROUP_PROTOCOL,
        INVALID_GROUP_ID,
        INVALID_SESSION_TIMEOUT,
        GROUP_AUTHORIZATION_FAILED,
    }
)

# Group id to what to call when the broker refuses it for good (with the error code).
_WATCHED: dict[str, Callable[[int], None]] = {}


def refusal_line(code: int, group: str, settings: Settings) -> str:
    """One line: why the broker refused `group` and which setting to change."""
    low, high = APACHE_KAFKA_SESSION_TIMEOUT_S
    if code == INVALID_SESSION_TIMEOUT:
        return (
            f"the broker refused consumer group {group!r}: session timeout"
            f" {settings.session_timeout_s:g} s is outside its group.min.session.timeout.ms"
            f" .. group.max.session.timeout.ms ({low:g} s .. {high / 60:g} min on a default"
            " Apache Kafka); set BRAIDFLOW_SESSION_TIMEOUT_S within them"
        )
    if code == GROUP_AUTHORIZATION_FAILED:
        return (
            f"the broker refused consumer group {group!r}: not authorized; grant READ on"
            f" the groups starting with {settings.prefix!r}, or choose another --prefix"
        )
    if code == INCONSISTENT_GROUP_PROTOCOL:
        return (
            f"the broker refused consumer group {group!r}: another kind of consumer already"
            " uses that group id; choose another --prefix"
        )
    if code == INVALID_GROUP_ID:
        return f"the broker refused consumer group {group!r} as invalid; choose another --prefix"
    return f"the broker refused consumer group {group!r} with error {code}"


def watch_group_refusals(groups: list[str], on_refusal: Callable[[str, int], None]) -> None:
    """Call `on_refusal(group, code)` when an aiokafka consumer of one of `groups` (Faust's
    or the executor's) is refused for good. Called on the consumer's own loop, which for
    Faust's consumer is a thread of its own."""
    _patch_push_error()
    for group in groups:
        _WATCHED[group] = lambda code, group=group: on_refusal(group, code)


class _RefusalLogged(logging.Filter):
    """aiokafka logs the refusal as it raises it; the worker's own line names the setting
    to change, and one line is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Attempt to join group failed due to fatal error")


def _patch_push_error() -> None:
    if getattr(GroupCoordinator, "_braidflow_patched", False):
        return
    logging.getLogger("aiokafka.consumer.group_coordinator").addFilter(_RefusalLogged())
    original = GroupCoordinator._push_error_to_user

    def push_error_to_user(self: Any, exc: Exception) -> Any:
        code = getattr(exc, "errno", None)
        watcher = _WATCHED.get(self.group_id)
        if watcher is not None and code in FATAL_GROUP_ERRORS:
            watcher(code)
        return original(self, exc)

    GroupCoordinator._push_error_to_user = push_error_to_user
    GroupCoordinator._braidflow_patched = True
