"""An execution an event starts joins the event's trace: the CloudEvents `traceparent`
extension rides on its start; a malformed one is ignored, never an error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from braidflow.streams.starts import Starts

GIVEN = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@dataclass(frozen=True)
class Deployed:
    workflow_id: str = "onboard"
    version: int = 3
    tenant: str = "default"


class Latest:
    """The one deployment a catalog would find."""

    def latest(self, key: str) -> Deployed:
        return Deployed()


async def _send(topic: str, key: bytes, value: bytes) -> Any:
    raise AssertionError("prepare sends nothing")


@pytest.mark.parametrize(
    ("extension", "kept"),
    [(GIVEN, GIVEN), ("00-garbage", None), (42, None), (None, None)],
)
def test_an_events_traceparent_extension_rides_on_the_start(
    extension: object, kept: str | None
) -> None:
    starts = Starts("bf.transitions", Latest(), _send, lambda: 1)  # type: ignore[arg-type]
    event: dict[str, Any] = {"id": "e-1", "source": "/crm", "type": "hire", "data": {}}
    if extension is not None:
        event["traceparent"] = extension
    prepared = starts.prepare("onboard", event)
    assert prepared is not None
    assert prepared[1].traceparent == kept
