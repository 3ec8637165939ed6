"""Deployed workflow definitions: a compacted topic that every worker reads whole.

Each deployment is one record whose value is JSON with the definition text
and who deployed it when. Every worker reads the topic from the beginning and keeps
following it, so any worker can run any version, and a restart loses nothing.

Versions count up from 1 per workflow id, numbered in the order of the topic
(braidflow.topology.version_numbers): a deploy writes a proposal keyed
`<id>@proposal-<uuid>` and reads it back to learn its number, so two workers
deploying at the same instant never share a number. Deploying the text the latest
version already has returns that version instead of making a new one. Records
keyed `<id>@<version>`, written before proposals, keep their numbers.

Tenants: the catalog is keyed by `braidflow.tenants.catalog_key` (the id in the default
tenant, `T/<id>` in tenant T), so two tenants may both deploy `onboarding`. A default
tenant's records are as they always were; another tenant's are keyed `T/<id>@proposal-...`
and carry `tenant` and `workflow` but no `id`, so workers older than tenants skip them
instead of taking them for the default tenant's. Departments likewise (`tenant`, `name`).
Triggers, waits and departments are indexed per tenant: an event of one tenant is only
ever matched against its own tenant's workflows.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from braidflow.access import DEFAULT_TENANT, tenant_problem
from braidflow.config import Settings
from braidflow.streams.departments import (
    RECORD_KIND,
    Departments,
    DepartmentVersion,
    department_record,
    is_department_record,
)
from braidflow.streams.followed_topic import FollowedTopic, Produce
from braidflow.tenants import catalog_key, split_catalog_key
from braidflow.topology import Workflow, load_workflow
from braidflow.topology.departments import (
    Department,
    load_department,
    refused_calls,
    with_defaults,
)
from braidflow.topology.deployed_before import carried_since
from braidflow.topology.loading import DefinitionError
from braidflow.topology.model import EventTrigger
from braidflow.topology.subscriptions import SubscriptionIndex
from braidflow.topology.version_numbers import Placed, VersionNumbers


@dataclass(frozen=True)
class Deployment:
    """One version of one workflow, as deployed."""

    workflow_id: str
    version: int
    text: str
    deployed_at: int
    workflow: Workflow = field(repr=False, compare=False)
    # The timestamp of its record on the workflows topic: compared with the record
    # timestamps of events (`deployed_before`), a clock of the same kind as theirs.
    recorded_at: int = field(default=0, compare=False)
    # Who deployed it: None for versions deployed before that was recorded.
    deployed_by: str | None = None
    # A rollback's version restores the text of `restores`, replacing `rolled_back_from`.
    restores: int | None = None
    rolled_back_from: int | None = None
    tenant: str = DEFAULT_TENANT

    @property
    def key(self) -> str:
        """Its workflow's key in the catalog (`braidflow.tenants.catalog_key`)."""
        return catalog_key(self.tenant, self.workflow_id)


class Catalog:
    """The workflows topic, read into memory and kept up to date."""

    def __init__(self, settings: Settings, produce: Produce) -> None:
        self._settings = settings
        self._log = FollowedTopic(settings, settings.topics.workflows, produce, self._apply)
        self.ready = self._log.ready
        self._versions: dict[str, dict[int, Deployment]] = {}
        # Numbers versions in topic order, and knows removals: a removed workflow's versions
        # stay readable (executions still run on them) but nothing new starts them.
        self._numbers = VersionNumbers()
        # This worker's proposals not read back yet, and where each landed once read.
        self._proposals: dict[str, Placed | None] = {}
        # Bumped on every deployment read, so views built from the catalog know when to rebuild.
        self.generation = 0
        self._subscriptions: dict[str, SubscriptionIndex] = {}
        self._waited: dict[str, tuple[int, dict[str, int]]] = {}
        self._carried: dict[tuple[str, EventTrigger], Deployment | None] = {}
        self._carried_generation = -1
        # Department definitions, in a key space of their own on the same topic, per tenant.
        self._departments: dict[str, Departments] = {DEFAULT_TENANT: Departments()}
        self._defaulted: dict[tuple[str, int], tuple[Department | None, Workflow]] = {}

    async def start(self) -> None:
        """Read the topic up to its current end, then keep following it."""
        await self._log.start()

    async def stop(self) -> None:
        await self._log.stop()

    async def _apply(self, value: bytes | None, timestamp: int | None) -> None:
        if value is None:
            return
        try:
            record = json.loads(value)
            if not isinstance(record, dict):
                return
        except (ValueError, RecursionError):
            return
        tenant = record.get("tenant", DEFAULT_TENANT)
        if tenant != DEFAULT_TENANT:
            if tenant_problem(tenant) is not None:
                return
            if record.get("kind") == RECORD_KIND and isinstance(record.get("name"), str):
                await self._apply_department({**record, "department": record["name"]}, tenant)
                return
            if not isinstance(record.get("workflow"), str):
                return
            # Numbered and stored under the tenant's key, never the bare id.
            record = {**record, "id": catalog_key(tenant, record["workflow"])}
        elif is_department_record(record):
            await self._apply_department(record, DEFAULT_TENANT)
            return
        # Numbered before loading: a definition that no longer loads here still takes its
        # number, so every worker numbers alike.
        placed = self._numbers.read(record)
        proposal = record.get("proposal")
        if isinstance(proposal, str) and proposal in self._proposals:
            self._proposals[proposal] = placed
        if record.get("removed") and isinstance(record.get("id"), str):
            self._index_latest(record["id"])
            return
        if placed is None or not placed.created:
            return
        try:
            # Up to a second for a large definition: off the loop, as in `deploy`.
            workflow = await asyncio.to_thread(load_workflow, record["text"])
            deployed_at = int(record["deployed_at"])
        except Exception:
            # A record that no longer loads (it was valid when deployed) is
            # skipped rather than stopping the catalog of every worker.
            return
        restores = record.get("restores")
        deployment = Deployment(
            split_catalog_key(placed.workflow_id)[1],
            placed.version,
            record["text"],
            deployed_at,
            workflow,
            timestamp if timestamp is not None and timestamp >= 0 else deployed_at,
            deployed_by=_optional_str(record.get("deployed_by")),
            restores=restores if isinstance(restores, int) else None,
            rolled_back_from=placed.replaced if isinstance(restores, int) else None,
            tenant=tenant,
        )
        self._versions.setdefault(placed.workflow_id, {})[deployment.version] = deployment
        self._index_latest(placed.workflow_id)

    async def _apply_department(self, record: Mapping[str, object], tenant: str) -> None:
        try:
            department = await asyncio.to_thread(load_department, str(record.get("text")))
        except Exception:
            # As for workflows: a record that no longer loads is skipped, never fatal.
            department = None
        self.departments_of(tenant).read(record, department)
        self.generation += 1

    def departments_of(self, tenant: str) -> Departments:
        """The departments of `tenant` (none deployed: an empty set of them)."""
        return self._departments.setdefault(tenant, Departments())

    def any_department(self) -> bool:
        """Whether some tenant has deployed a department."""
        return any(departments.all_latest() for departments in self._departments.values())

    def _index_latest(self, key: str) -> None:
        """Index the triggers of the latest version of `key`, or none if removed."""
        tenant, workflow_id = split_catalog_key(key)
        latest = self.latest(key)
        index = self._subscriptions.setdefault(tenant, SubscriptionIndex())
        if latest is None:
            index.remove(workflow_id)
        else:
            index.add(latest.workflow)
        self.generation += 1

    def subscriptions(self, tenant: str = DEFAULT_TENANT) -> SubscriptionIndex:
        """The triggers of the latest version of every workflow of `tenant`, kept up to date
        as deployments and removals are read. Not to be changed by the caller."""
        # A tenant that deployed nothing gets an empty index, and is not remembered: events
        # on topics of any name must not grow this.
        return self._subscriptions.get(tenant) or _NO_SUBSCRIPTIONS

    def tenants(self) -> list[str]:
        """The tenants that have deployed workflows, in the order of their first deploy."""
        # Asked for every lifecycle record the router reads: no sorting.
        return list(self._subscriptions)

    def waited_since(self, tenant: str = DEFAULT_TENANT) -> Mapping[str, int]:
        """Event types some wait_event node of `tenant` waits for, in any version (old ones
        still run), each with the record time of the first version deployed that waits for it."""
        cached = self._waited.get(tenant)
        if cached is None or cached[0] != self.generation:
            since: dict[str, int] = {}
            for key, versions in self._versions.items():
                if split_catalog_key(key)[0] != tenant:
                    continue
                for deployment in versions.values():
                    for node in deployment.workflow.definition.nodes:
                        if node.type == "wait_event":
                            event_type = node.params["type"]
                            first = since.get(event_type, deployment.recorded_at)
                            since[event_type] = min(first, deployment.recorded_at)
            cached = (self.generation, since)
            self._waited[tenant] = cached
        return cached[1]

    def trigger_deployed(self, workflow_id: str, trigger: EventTrigger) -> Deployment | None:
        """The version from which on the latest versions all carry `trigger` (since the
        last removal); None when the latest does not carry it or there is none.

        `workflow_id`, here and in every lookup below, is a catalog key (`catalog_key`):
        the bare id in the default tenant."""
        if self._carried_generation != self.generation:
            self._carried.clear()
            self._carried_generation = self.generation
        key = (workflow_id, trigger)
        if key not in self._carried:
            removed = self._numbers.removed_at(workflow_id)
            live = [d for d in self.versions(workflow_id) if d.version > removed]
            since = carried_since([d.workflow.triggers for d in live], trigger)
            self._carried[key] = None if since is None else live[since]
        return self._carried[key]

    def latest(self, workflow_id: str) -> Deployment | None:
        """The newest version, or None when there is none or the workflow was removed since."""
        versions = self._versions.get(workflow_id)
        if not versions or self._numbers.removed_at(workflow_id) >= max(versions):
            return None
        return versions[max(versions)]

    def department_of(self, workflow_id: str) -> Department | None:
        """The definition of the department the latest version of a workflow names; None
        when it names none or that department was never deployed as a definition."""
        latest = self.latest(workflow_id)
        if latest is None:
            return None
        departments = self.departments_of(latest.tenant)
        return departments.definition(latest.workflow.definition.department)

    def runnable(self, deployment: Deployment) -> Workflow:
        """The workflow of a deployment with its department's current settings defaults."""
        departments = self.departments_of(deployment.tenant)
        department = departments.definition(deployment.workflow.definition.department)
        key = (deployment.key, deployment.version)
        cached = self._defaulted.get(key)
        if cached is None or cached[0] is not department:
            cached = (department, with_defaults(deployment.workflow, department))
            self._defaulted[key] = cached
        return cached[1]

    def get(self, workflow_id: str, version: int) -> Deployment | None:
        return self._versions.get(workflow_id, {}).get(version)

    def all_latest(self, tenant: str = DEFAULT_TENANT) -> list[Deployment]:
        """The latest version of every workflow of `tenant`, by id."""
        keys = sorted(k for k in self._versions if split_catalog_key(k)[0] == tenant)
        found = (self.latest(k) for k in keys)
        return [d for d in found if d is not None]

    def versions(self, workflow_id: str) -> list[Deployment]:
        found = self._versions.get(workflow_id, {})
        return [found[v] for v in sorted(found)]

    async def wait_for(self, workflow_id: str, version: int, timeout_s: float) -> Deployment | None:
        """The deployment, waiting up to `timeout_s` for this worker to read it."""
        found = self.get(workflow_id, version)
        if found is not None:
            # The usual case, on every transition: no lock, no waiting.
            return found
        return await self._log.until(lambda: self.get(workflow_id, version), timeout_s)

    async def deploy(
        self,
        text: str,
        now_ms: int,
        by: str | None = None,
        restores: int | None = None,
        tenant: str = DEFAULT_TENANT,
    ) -> tuple[Deployment, bool]:
        """Store a definition as a new version of `tenant` deployed by `by`; (deployment,
        created).

        `restores` names the older version whose text a rollback brings back. Raises
        DefinitionError when invalid, TimeoutError when not read back in time.
        """
        # Parsing and validating up to a mebibyte of YAML takes a while: not on the event loop.
        workflow = await asyncio.to_thread(load_workflow, text)
        refused = refused_calls(
            workflow, lambda called: self.department_of(catalog_key(tenant, called))
        )
        if refused:
            raise DefinitionError(refused)
        key = catalog_key(tenant, workflow.id)
        latest = self.latest(key)
        if latest is not None and latest.text == text:
            return latest, False
        proposal = uuid.uuid4().hex
        record: dict[str, object] = {
            "text": text,
            "deployed_at": now_ms,
            "deployed_by": by,
            "proposal": proposal,
        }
        if tenant == DEFAULT_TENANT:
            # Read only by workers older than proposals; the topic's order decides the number.
            record.update(id=workflow.id, version=self._numbers.head(key) + 1)
        else:
            record.update(tenant=tenant, workflow=workflow.id)
        if restores is not None:
            record["restores"] = restores
        self._proposals[proposal] = None
        try:
            await self._log.write(
                f"{key}@proposal-{proposal}".encode(), json.dumps(record).encode()
            )
            placed = self._proposals[proposal]
        finally:
            del self._proposals[proposal]
        found = None if placed is None else self.get(key, placed.version)
        if placed is None or found is None:
            raise TimeoutError(f"proposal {proposal} of {workflow.id!r} not read back")
        return found, placed.created

    async def deploy_department(
        self, text: str, now_ms: int, by: str | None = None, tenant: str = DEFAULT_TENANT
    ) -> tuple[DepartmentVersion, bool]:
        """Store a department definition of `tenant` as a new version; (version, created).

        DefinitionError when invalid, TimeoutError when not read back in time.
        """
        department = await asyncio.to_thread(load_department, text)
        departments = self.departments_of(tenant)
        latest = departments.latest(department.name)
        if latest is not None and latest.text == text:
            return latest, False
        proposal = uuid.uuid4().hex
        key, value = department_record(department, text, now_ms, by, proposal)
        if tenant != DEFAULT_TENANT:
            # No `department` field: workers older than tenants skip the record.
            value = {**value, "tenant": tenant, "name": value.pop("department")}
            key = f"{tenant}/{key.decode()}".encode()
        departments.expect(proposal)
        await self._log.write(key, json.dumps(value).encode())
        placed = departments.placed(proposal)
        if placed is None:
            raise TimeoutError(f"proposal {proposal} of department {department.name!r} not read")
        return placed, latest is None or placed.version != latest.version

    async def remove(self, workflow_id: str, now_ms: int) -> bool:
        """Stop new executions and triggers of a workflow; False when there is none to remove."""
        latest = self.latest(workflow_id)
        if latest is None:
            return False
        record: dict[str, object] = {"version": latest.version, "removed": True, "at": now_ms}
        if latest.tenant == DEFAULT_TENANT:
            record["id"] = latest.workflow_id
        else:
            record.update(tenant=latest.tenant, workflow=latest.workflow_id)
        await self._log.write(f"{workflow_id}@removed".encode(), json.dumps(record).encode())
        return True

    async def catch_up(self) -> None:
        """Wait until every deployment and removal stored before this call is read
        (`FollowedTopic.catch_up`)."""
        await self._log.catch_up()


_NO_SUBSCRIPTIONS = SubscriptionIndex()


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None
