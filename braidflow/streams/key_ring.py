"""The API keys of a cluster: a compacted topic that every worker reads whole and follows.

One partition keyed by key id, as the workflow catalog: a key created through any worker
(or by `braidflow keys create`, straight to Kafka) is known to every worker, and a
revocation, a record under the same id, takes its key away on every worker. A write
returns once this ring has read it back, so the answer of a create or a revoke holds
on the worker that gave it; a key whose id this ring has not read yet (made a moment ago
elsewhere) is looked for to the topic's end before it is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from braidflow.access import Principal, Role
from braidflow.api_keys import KeyRecord, KeyRecordError, new_key, parse_key
from braidflow.config import Settings
from braidflow.streams.followed_topic import FollowedTopic, Produce

log = logging.getLogger(__name__)


class KeyRing:
    """The keys topic, read into memory and kept up to date."""

    def __init__(self, settings: Settings, produce: Produce) -> None:
        self._log = FollowedTopic(settings, settings.topics.keys, produce, self._apply)
        self.ready = self._log.ready
        self._keys: dict[str, KeyRecord] = {}
        # Catch-ups of the topic: the one reading, and the next, which every miss arriving
        # meanwhile shares (it starts after them, so it reads their keys).
        self._reading: asyncio.Task[None] | None = None
        self._next: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Read the topic up to its current end, then keep following it."""
        await self._log.start()

    async def stop(self) -> None:
        await self._log.stop()

    async def _apply(self, value: bytes | None, _timestamp: int | None) -> None:
        if value is None:
            return
        try:
            record = KeyRecord.decode(value)
        except KeyRecordError as exc:
            # Skipped, not fatal: one bad record must not lock every key out.
            log.warning("keys topic: skipped a record: %s", exc)
            return
        self._keys[record.id] = record

    def principal(self, key: str) -> Principal | None:
        """Who `key` acts for; None when it is no live key of this ring."""
        parsed = parse_key(key)
        if parsed is None:
            return None
        record = self._keys.get(parsed[0])
        return record.principal() if record is not None and record.matches(parsed[1]) else None

    async def principal_now(self, key: str) -> Principal | None:
        """Who `key` acts for, reading the topic to its end first when its id is not known
        here: `braidflow keys create`, or another worker, may have made it a moment ago."""
        parsed = parse_key(key)
        if parsed is not None and parsed[0] not in self._keys:
            try:
                await asyncio.shield(self._catch_up())
            except Exception as exc:  # an unreadable topic: the key is refused, a 401
                log.warning("keys topic: could not read to its end: %r", exc)
        return self.principal(key)

    def _catch_up(self) -> asyncio.Task[None]:
        if self._next is None:
            self._next = asyncio.create_task(self._read_after(self._reading))
        return self._next

    async def _read_after(self, reading: asyncio.Task[None] | None) -> None:
        if reading is not None:
            with contextlib.suppress(Exception):
                await reading
        self._reading, self._next = self._next, None
        await self._log.catch_up()

    def keys(self, tenant: str | None = None) -> list[KeyRecord]:
        """Every key (of `tenant`, when given), revoked ones too, oldest first."""
        found = [k for k in self._keys.values() if tenant is None or k.tenant == tenant]
        return sorted(found, key=lambda k: (k.created_at, k.id))

    def get(self, key_id: str) -> KeyRecord | None:
        return self._keys.get(key_id)

    async def create(
        self,
        tenant: str,
        role: Role,
        department: str | None,
        name: str,
        now_ms: int,
        created_by: str,
    ) -> tuple[str, KeyRecord]:
        """Store a new key; (the key, its record). The key exists nowhere else: show it once."""
        key, record = new_key(tenant, role, department, name, now_ms, created_by)
        await self._write(record)
        return key, record

    async def revoke(self, key_id: str, now_ms: int, by: str) -> KeyRecord | None:
        """Revoke a key on every worker; None when there is no such key. Revoking a
        revoked key changes nothing."""
        record = self._keys.get(key_id)
        if record is None or record.revoked:
            return record
        revoked = record.revoke(now_ms, by)
        await self._write(revoked)
        return revoked

    async def _write(self, record: KeyRecord) -> None:
        await self._log.write(record.id.encode(), record.encode())
