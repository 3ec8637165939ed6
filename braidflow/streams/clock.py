"""The runtime's clock: the wall clock, or the wall clock shifted by an offset kept in a file.

The engine never reads a clock; the runtime stamps transitions and fires timers
with this one. Tests and demos that must not wait a day point
`BRAIDFLOW_CLOCK_OFFSET_FILE` at a file holding a number of milliseconds, and
write a larger number to move every worker reading it forward in time.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from braidflow.streams.publisher import epoch_ms

log = logging.getLogger(__name__)

# How long an offset read from the file is used before the file is read again.
_REREAD_S = 0.05


class RuntimeClock:
    """Epoch milliseconds, plus the offset in `offset_file` when there is one."""

    def __init__(self, offset_file: Path | None = None) -> None:
        self._file = offset_file
        self._offset = 0
        self._read_at = float("-inf")

    def __call__(self) -> int:
        if self._file is None:
            return epoch_ms()
        now = time.monotonic()
        if now - self._read_at >= _REREAD_S:
            self._read_at = now
            self._offset = self._read_offset(self._file)
        return epoch_ms() + self._offset

    def _read_offset(self, path: Path) -> int:
        try:
            text = path.read_text().strip()
            return int(text) if text else 0
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            log.warning(
                "clock offset file %s unreadable (%s); keeping %d ms", path, exc, self._offset
            )
            return self._offset
