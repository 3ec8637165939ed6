"""A department's `credentials` and `settings.alert_channels`: loaded, validated naming the
field, and a workflow's `${secrets.NAME}` checked against the lists at deploy (a warning)."""

from __future__ import annotations

import pytest

from braidflow.secrets import credentials_allowed
from braidflow.topology import DefinitionError, load_workflow
from braidflow.topology.credentials import (
    named_secrets,
    refused_secrets,
    resolve_url,
    url_secrets,
)
from braidflow.topology.departments import load_department

SUPPORT = """
kind: Department
name: support
credentials: [HELPDESK, CRM_TOKEN]
settings:
  alert_channels:
    - {webhook: "http://127.0.0.1:9999/alerts"}
    - {webhook: "https://hooks.acme.test/support"}
"""

OPEN_TICKET = """
id: open-ticket
{department}
nodes:
  - {{id: call, type: http, params: {{method: GET, url: "https://h.test/?k=${{secrets.HELPDESK}}", headers: {{X-Db: "${{secrets.DB}}"}}}}}}
  - id: each
    type: foreach
    params:
      items: [1, 2]
      do: {{type: http, params: {{method: GET, url: "https://h.test/${{secrets.CRM_TOKEN}}"}}}}
  - {{id: done, type: end}}
edges:
  - {{from: call, to: each}}
  - {{from: each, to: done}}
"""


def test_credentials_and_alert_channels_are_read() -> None:
    support = load_department(SUPPORT)
    assert support.credentials == frozenset({"HELPDESK", "CRM_TOKEN"})
    assert support.alert_webhooks == (
        "http://127.0.0.1:9999/alerts",
        "https://hooks.acme.test/support",
    )
    bare = load_department("kind: Department\nname: ops\n")
    assert bare.credentials is None and bare.alert_webhooks == ()
    assert load_department("kind: Department\nname: ops\ncredentials: []\n").credentials == set()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("credentials: [not-a-name]\n", "credentials.0"),
        ("credentials: HELPDESK\n", "credentials"),
        (
            "settings: {alert_channels: [{webhook: 'ftp://x'}]}\n",
            "settings.alert_channels.0.webhook",
        ),
        ("settings: {alert_channels: [{url: 'http://x'}]}\n", "settings.alert_channels.0"),
        ("settings: {alert_channels: {webhook: 'http://x'}}\n", "settings.alert_channels"),
    ],
)
def test_a_bad_list_is_refused_naming_the_field(body: str, field: str) -> None:
    with pytest.raises(DefinitionError) as refused:
        load_department(f"kind: Department\nname: ops\n{body}")
    assert {p.where for p in refused.value.problems} == {field}, refused.value


def test_the_secrets_a_workflow_names_are_found_inline_foreach_items_too() -> None:
    workflow = load_workflow(OPEN_TICKET.format(department="department: support"))
    assert list(named_secrets(workflow)) == [
        ("call", "DB"),
        ("call", "HELPDESK"),
        ("each", "CRM_TOKEN"),
    ]


def test_secrets_the_lists_keep_from_a_workflow_are_deploy_warnings() -> None:
    lists = {"support": load_department(SUPPORT).credentials, "ops": None}
    own = load_workflow(OPEN_TICKET.format(department="department: support"))
    [problem] = refused_secrets(own, credentials_allowed("support", lists))
    assert problem.where == "node 'call'"
    assert "secret 'DB' is not among the credentials department 'support' lists" in problem.message
    stranger = load_workflow(OPEN_TICKET.format(department=""))
    refused = refused_secrets(stranger, credentials_allowed(None, lists))
    assert [(p.where, p.message.split(":")[0]) for p in refused] == [
        ("node 'call'", "secret 'HELPDESK' is a credential of department 'support'"),
        ("node 'each'", "secret 'CRM_TOKEN' is a credential of department 'support'"),
    ]
    assert refused_secrets(stranger, credentials_allowed(None, {"ops": None})) == []


def test_a_webhook_url_names_secrets_resolved_only_when_called() -> None:
    url = "https://hooks.acme.test/services/${secrets.HOOK_PATH}?k=${secrets.HOOK_KEY}"
    support = load_department(
        f"kind: Department\nname: support\ncredentials: [HOOK_PATH, HOOK_KEY]\n"
        f"settings: {{alert_channels: [{{webhook: '{url}'}}]}}\n"
    )
    assert support.alert_webhooks == (url,)
    assert url_secrets(url) == ["HOOK_PATH", "HOOK_KEY"]
    assert resolve_url(url, lambda name: name.lower()) == (
        "https://hooks.acme.test/services/hook_path?k=hook_key"
    )


def test_a_webhook_naming_a_secret_its_department_does_not_list_is_refused() -> None:
    with pytest.raises(DefinitionError) as refused:
        load_department(
            "kind: Department\nname: support\ncredentials: [HELPDESK]\n"
            "settings: {alert_channels: [{webhook: 'https://h.test/${secrets.HOOK}'}]}\n"
        )
    assert [str(p) for p in refused.value.problems] == [
        "settings.alert_channels.0.webhook: secret 'HOOK' is not among the department's credentials"
    ]
    # Without a list, the rule of every workflow applies when it is called.
    load_department(
        "kind: Department\nname: support\n"
        "settings: {alert_channels: [{webhook: 'https://h.test/${secrets.HOOK}'}]}\n"
    )
