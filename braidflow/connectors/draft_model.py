"""The model a draft asks (braidflow/topology/drafts.py): an llm connection of the worker, asked
through the same client, keys and rules as an `llm` node (connectors/llm.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping

from braidflow.connectors.llm import LlmClient
from braidflow.engine.messages import TaskRequest
from braidflow.node_logs import NodeLog
from braidflow.secrets import SecretsAllowed, SecretScope, SecretsProvider
from braidflow.tasks import NodeFailure
from braidflow.topology.drafts import Ask

TIMEOUT_MS = 120_000
"""Time one round's question may take."""


class DraftModel:
    """Asks `connections` (their names) through `llm` for drafts, with the tenant's secrets."""

    def __init__(
        self,
        llm: LlmClient,
        connections: Mapping[str, object],
        secrets: SecretsProvider,
        allowed: Callable[[str, str | None], SecretsAllowed],
        clock: Callable[[], int],
    ) -> None:
        self._llm = llm
        self.connections = sorted(connections)
        self._secrets = secrets
        self._allowed = allowed
        self._clock = clock

    def ask(self, tenant: str, connection: str, model: str) -> Ask:
        """The question of a draft for `tenant` to `model` at `connection`; it raises
        NodeFailure when the endpoint gives no usable answer."""
        draft_id = f"draft-{uuid.uuid4()}"
        asked = 0

        async def ask(system: str, prompt: str) -> str:
            nonlocal asked
            asked += 1
            request = TaskRequest(
                execution_id=draft_id,
                workflow_id="draft",
                node_id="draft",
                kind="llm",
                attempt=asked,
                idempotency_key=f"{draft_id}.{asked}",
                at=self._clock(),
                input={
                    "connection": connection,
                    "model": model,
                    "system": system,
                    "prompt": prompt,
                    "temperature": 0,
                },
                timeout_ms=TIMEOUT_MS,
                tenant=tenant,
            )
            scope = SecretScope(self._secrets, tenant, self._allowed(tenant, None))
            output = await self._llm.run(request, scope, NodeLog(self._clock))
            answer = output["answer"]
            if not isinstance(answer, str):
                raise NodeFailure("draft.invalid_answer", f"the model answered {answer!r}")
            return answer

        return ask
