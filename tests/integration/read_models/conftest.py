"""Every read-model test that takes `read_model_at` runs on both stores."""

from __future__ import annotations

from pathlib import Path

import pytest
from read_model_stores import STORES, ReadModelAt

from braidflow.connectors.read_model_db import read_model_location


@pytest.fixture(params=STORES)
def read_model_at(request: pytest.FixtureRequest, tmp_path: Path, prefix: str) -> ReadModelAt:
    """A SQLite file in the test's directory, or a schema of the test's prefix in the
    module's PostgreSQL database."""
    url = request.getfixturevalue("read_model_url") if request.param == "postgresql" else None
    return lambda name: read_model_location(url, tmp_path, prefix, name)
