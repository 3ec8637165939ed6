"""Which credentials a task may use follows the department of the workflow version the
execution runs: the engine puts it on the task request, and the Avro record keeps it."""

from __future__ import annotations

from avro_history import history_schema, written_with
from engine_driver import of_type, workflow

from braidflow.engine import StartExecution, TaskRequest, step
from braidflow.schemas import decode_task, encode_task
from braidflow.schemas.codec import STORE
from braidflow.schemas.records import TASK_REQUEST
from braidflow.schemas.store import current_schema, fingerprint

T0 = 1_795_000_000_000

CALLER = """
id: open-ticket
{department}
nodes:
  - {{id: call, type: http, params: {{method: GET, url: "http://helpdesk.test/?k=${{secrets.HELPDESK}}"}}}}
  - {{id: done, type: end}}
edges:
  - {{from: call, to: done}}
"""


def requested(text: str) -> TaskRequest:
    wf = workflow(text)
    result = step(wf, None, StartExecution("s", "ex", T0, "open-ticket", 1, {}))
    [request] = of_type(result.outgoing, TaskRequest)
    return request


def test_a_task_request_names_the_department_of_its_workflow() -> None:
    assert requested(CALLER.format(department="department: support")).department == "support"
    assert requested(CALLER.format(department="")).department is None


def test_the_department_survives_encoding_and_older_requests_read_with_none() -> None:
    request = requested(CALLER.format(department="department: support"))
    assert decode_task(encode_task(request)) == request
    old = history_schema("TaskRequest", 4)
    assert fingerprint(old) != fingerprint(current_schema("braidflow.TaskRequest"))
    assert STORE.get(fingerprint(old)) is not None
    avro = {k: v for k, v in TASK_REQUEST.to_avro(request).items() if k != "department"}
    assert decode_task(written_with("TaskRequest", 4, avro)).department is None
