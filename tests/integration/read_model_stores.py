"""The stores a read model may live in, for tests that run on both (`read_model_at`)."""

from __future__ import annotations

from collections.abc import Callable

from braidflow.connectors.read_model_db import ReadModelLocation

STORES = ("sqlite", "postgresql")

ReadModelAt = Callable[[str], ReadModelLocation]
"""Where the read model of a name (`executions-index`...) lives in the store under test."""
