"""`braidflow dev` on a broker that keeps its data: one owner key across sessions, not
one more per session."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from dev_commands import BRAIDFLOW, EXAMPLES, READY, Command
from suite_broker import SuiteBroker
from workers import DEV_SPEED

from braidflow.api_keys import parse_key
from braidflow.config import Settings
from braidflow.connectors.broker import free_port
from braidflow.dev_key import dev_owner_key
from braidflow.key_commands import with_keys
from braidflow.streams.key_ring import KeyRing

API = "http://127.0.0.1:8080"


def key_id(key: str) -> str:
    parsed = parse_key(key)
    assert parsed is not None
    return parsed[0]


async def test_a_second_dev_session_on_the_same_broker_reuses_its_owner_key(
    broker: SuiteBroker, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    settings = Settings(kafka=broker.connection, prefix=prefix).for_dev()

    async def two_sessions(ring: KeyRing) -> tuple[str, str]:
        first, _ = await dev_owner_key(ring, API, 1_000)
        # Another session, on another API port: the same broker, the same key.
        second, path = await dev_owner_key(ring, "http://127.0.0.1:8181", 2_000)
        assert json.loads(path.read_text()) == {"api": "http://127.0.0.1:8181", "key": second}
        return first, second

    first, second = await with_keys(settings, two_sessions)
    assert second == first

    # Read afresh, as the next `braidflow dev` reads it: still one dev key, live.
    async def listed(ring: KeyRing) -> list[tuple[str, bool]]:
        records = ring.keys()
        return [(k.name, k.revoked) for k in records]

    assert await with_keys(settings, listed) == [("dev", False)]


async def test_a_dev_session_whose_key_was_revoked_makes_a_new_one(
    broker: SuiteBroker, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    settings = Settings(kafka=broker.connection, prefix=prefix).for_dev()

    async def revoked_between(ring: KeyRing) -> None:
        first, _ = await dev_owner_key(ring, API, 1_000)
        await ring.revoke(key_id(first), 1_500, "cli:someone")
        second, _ = await dev_owner_key(ring, API, 2_000)
        assert second != first
        assert ring.principal(second) is not None
        records = ring.keys()
        assert [(k.id, k.revoked) for k in records] == [
            (key_id(first), True),
            (key_id(second), False),
        ]

    await with_keys(settings, revoked_between)


async def test_a_recorded_key_this_broker_no_longer_honours_is_revoked_and_replaced(
    broker: SuiteBroker, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    settings = Settings(kafka=broker.connection, prefix=prefix).for_dev()

    async def secret_lost(ring: KeyRing) -> None:
        first, path = await dev_owner_key(ring, API, 1_000)
        # The recorded key's id with a secret that does not match: no longer usable.
        broken = first[:-4] + ("AAAA" if not first.endswith("AAAA") else "BBBB")
        path.write_text(json.dumps({"api": API, "key": broken}))
        second, _ = await dev_owner_key(ring, API, 2_000)
        assert second != first
        records = ring.keys()
        assert [(k.id, k.revoked, k.revoked_by) for k in records] == [
            (key_id(first), True, "braidflow dev"),
            (key_id(second), False, None),
        ]

    await with_keys(settings, secret_lost)


def shown_key(dev: Command) -> str:
    (key,) = [
        line.removeprefix("owner API key: ")
        for line in dev.stdout.splitlines()
        if line.startswith("owner API key: ")
    ]
    return key


def test_two_dev_sessions_on_a_kept_broker_show_the_same_owner_key(
    broker: SuiteBroker, prefix: str, tmp_path: Path
) -> None:
    keys = []
    for _ in range(2):
        dev = Command(
            [
                *(str(BRAIDFLOW), "dev", "--broker", broker.address, "--prefix", prefix),
                *("--examples", str(EXAMPLES)),
                *("--api-port", str(free_port()), "--demo-port", str(free_port())),
            ],
            # One home, so one config home, across both sessions.
            tmp_path,
            # The test workers' group settings: Tansu answers a join after half the group's
            # session, 5 s at the 10 s dev mode keeps on a broker given by --broker.
            DEV_SPEED,
        )
        try:
            dev.wait_for_output(READY, 120)
            keys.append(shown_key(dev))
            dev.process.send_signal(signal.SIGINT)
            assert dev.wait_exit(60) == 0, dev.describe()
        finally:
            dev.stop()
    assert keys[1] == keys[0]
