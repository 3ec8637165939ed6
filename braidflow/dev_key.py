"""The owner key of `braidflow dev`: one per broker, kept across sessions.

On the embedded broker nothing survives a restart, so each session makes a key. On a
broker that keeps its data (`braidflow dev --broker ...`), making one per session would
pile up owner keys named `dev`: a session reuses the key it recorded for the CLI when
that key still works on this broker, and otherwise makes a new one and revokes the
recorded one if this broker still honours its id.
"""

from __future__ import annotations

from pathlib import Path

from braidflow.access import DEFAULT_TENANT, Role
from braidflow.api_keys import parse_key
from braidflow.client_cli import recorded_dev_key, write_dev_key
from braidflow.streams.key_ring import KeyRing

DEV_KEY_NAME = "dev"
DEV_KEY_CREATOR = "braidflow dev"


async def dev_owner_key(keys: KeyRing, api_url: str, now_ms: int) -> tuple[str, Path]:
    """The owner key for this dev session, recorded where the CLI finds it; the file."""
    recorded = recorded_dev_key()
    if recorded is not None:
        principal = keys.principal(recorded)
        if principal is not None and principal.may(Role.OWNER, DEFAULT_TENANT):
            return recorded, write_dev_key(api_url, recorded)
    key, _ = await keys.create(
        DEFAULT_TENANT, Role.OWNER, None, DEV_KEY_NAME, now_ms, DEV_KEY_CREATOR
    )
    parsed = None if recorded is None else parse_key(recorded)
    if parsed is not None:
        # Revoked already or unknown here (another broker's): revoking changes nothing.
        stale = keys.get(parsed[0])
        if stale is not None and stale.created_by == DEV_KEY_CREATOR:
            await keys.revoke(stale.id, now_ms, DEV_KEY_CREATOR)
    return key, write_dev_key(api_url, key)
