"""The composition root: `build_runtime` wires the Faust app, the orchestrator, the executor,
the event router, the read models and the API of one worker (`wiring`); `Runtime` runs it
(`worker`); `RuntimeBackend` answers the API from it (`backend`).

The layer above streams and connectors: the only one that imports both.
"""

from braidflow.runtime.wiring import build_runtime
from braidflow.runtime.worker import Runtime, WorkerFailed

__all__ = ["Runtime", "WorkerFailed", "build_runtime"]
