"""Department records as every worker reads them: versions in topic order, the same text
again makes no new version, a proposal learns its version, and records that do not load or
that name another department are skipped."""

from __future__ import annotations

from braidflow.streams.departments import (
    Departments,
    department_record,
    is_department_record,
)
from braidflow.topology.departments import load_department

V1 = "kind: Department\nname: support\ncontext: {a: 1}\n"
V2 = "kind: Department\nname: support\ncontext: {a: 2}\n"


def record(text: str, proposal: str, by: str = "ana") -> dict[str, object]:
    _, value = department_record(load_department(text), text, 1_000, by, proposal)
    return value


def test_versions_count_in_topic_order_and_the_same_text_makes_none() -> None:
    store = Departments()
    store.expect("p3")
    for text, proposal in ((V1, "p1"), (V2, "p2"), (V2, "p3")):
        store.read(record(text, proposal), load_department(text))
    assert [v.version for v in store.versions("support")] == [1, 2]
    latest = store.latest("support")
    assert latest is not None and latest.department.context == {"a": 2}
    assert latest.deployed_by == "ana"
    placed = store.placed("p3")
    assert placed is not None and placed.version == 2
    assert store.placed("p1") is None  # not this worker's proposal: never remembered


def test_a_record_that_no_longer_loads_or_names_another_department_is_skipped() -> None:
    store = Departments()
    store.read(record(V1, "p1"), None)
    store.read(record(V1, "p2"), load_department(V1.replace("support", "sales")))
    assert store.latest("support") is None
    assert store.definition("support") is None and store.definition(None) is None


def test_department_records_have_a_key_space_of_their_own() -> None:
    key, value = department_record(load_department(V1), V1, 1_000, None, "abc")
    assert key == b"department:support@proposal-abc"
    assert is_department_record(value)
    assert "id" not in value  # workers before departments find no workflow in it
    assert not is_department_record({"id": "support", "text": V1})


def test_the_secrets_a_department_allows_follow_its_latest_version() -> None:
    store = Departments()
    assert store.secrets_allowed(None).refusal("HELPDESK", None) is None
    listing = "kind: Department\nname: support\ncredentials: [HELPDESK]\n"
    store.read(record(listing, "p1"), load_department(listing))
    assert store.secrets_allowed("support").refusal("HELPDESK", "support") is None
    assert store.secrets_allowed(None).refusal("HELPDESK", None) is not None
    # A new version without the list gives the secret back.
    store.read(record(V1, "p2"), load_department(V1))
    assert store.secrets_allowed(None).refusal("HELPDESK", None) is None
