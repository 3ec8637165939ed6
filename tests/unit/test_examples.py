"""The examples validate, dry-run from their sample input (`<name>.input.json`) to
the output their comments promise, and their answers files say what the handlers
really return."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from braidflow.cli import main
from braidflow.topology.departments import load_department

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples"
# An example department: its definition beside its workflows (examples/support/).
DEPARTMENT = "department.yaml"

# example -> the output of a dry run of its sample input with its answers file
DRY_RUNS: dict[str, dict[str, Any]] = {
    "order-chain": {
        "order_id": "ord-0001",
        "item": "Widget",
        "quantity": 12,
        "total_cents": 13500,
        "discount_cents": 1500,
    },
    "uptime-check": {
        "service": "checkout",
        "healthy": False,
        "alert": {
            "paged": True,
            "service": "checkout",
            "severity": "critical",
            "message": "checkout is down (HTTP 503)",
        },
    },
    "fan-out": {
        "weight_grams": 1800,
        "quotes": {
            "a": {"carrier": "a", "price_cents": 1089, "days": 1},
            "b": {"carrier": "b", "price_cents": 1029, "days": 3},
            "c": {"carrier": "c", "price_cents": 1099, "days": 5},
        },
        "best": {"carrier": "b", "price_cents": 1029, "days": 3},
    },
    "ticket-escalation": {"ticket_id": "T-1", "resolved_by": "ada"},
    "ticket-triage": {
        "ticket_id": "T-7",
        "label": "question",
        "approved_by": "oncall-lead",
        "message_id": "<dry-run.send@example.test>",
    },
    "check-job": {"job": "j-1", "status": "done", "polls": 3},
    "poll-until-done": {"job": "j-42", "status": "done", "passes": 1},
    "hire-approvals": {"employee": "ada", "hired": True, "welcome": {"ok": True}},
    "invoice-batch": {
        "taxed": [{"invoice": "inv-1", "vat_cents": 1900, "gross_cents": 11900}] * 2,
        "failed": [],
    },
    "support/support-triage": {
        "ticket_id": "T-1",
        "assignee": "ada",
        "escalation": "dry-run.escalate",
    },
    "support/support-escalation": {"ticket_id": "T-1", "resolved_by": "ada"},
    "support/support-survey": {
        "ticket_id": "T-1",
        "survey": "survey-0001",
        "subject": "How did Acme do on ticket T-1?",
    },
    "support/support-weekly-report": {
        "to": "help@acme.test",
        "title": "Acme support, last 7 days",
        "figures": {"days": 7, "assigned": 3, "escalated": 1, "surveys": 2},
    },
    "new-hire-approval": {
        "approved": True,
        "answers": {
            "it": {"status": 200, "headers": {}, "body": {"ok": True}},
            "hr": {"ok": True},
            "manager": {"ok": True, "note": "welcome aboard"},
        },
    },
}


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def department_of(name: str) -> list[str]:
    """The `--department` option a dry run of example `name` takes: its directory's
    department definition, if it has one."""
    department = (EXAMPLES / name).parent / DEPARTMENT
    return ["--department", str(department)] if department.exists() else []


def test_every_example_has_a_sample_input_an_answers_file_and_a_dry_run_here() -> None:
    files = {
        str(p.relative_to(EXAMPLES))
        for p in EXAMPLES.rglob("*")
        if p.suffix in (".yaml", ".json") and p.name != DEPARTMENT
    }
    assert files == {
        f"{name}{suffix}"
        for name in DRY_RUNS
        for suffix in (".yaml", ".answers.yaml", ".input.json")
    }


def test_every_example_department_is_valid_and_holds_its_workflows() -> None:
    for department in EXAMPLES.glob(f"*/{DEPARTMENT}"):
        assert invoke("validate", str(department)) == (0, "ok\n")
        name = yaml.safe_load(department.read_text())["name"]
        for path in department.parent.glob("*.yaml"):
            if path.name != DEPARTMENT and not path.name.endswith(".answers.yaml"):
                assert yaml.safe_load(path.read_text())["department"] == name, path


def test_the_support_department_shows_everything_a_department_holds() -> None:
    """The seed's example: shared context, a shared credential, a cap and an alert channel."""
    support = load_department((EXAMPLES / "support" / DEPARTMENT).read_text())
    assert set(support.context) == {"support_email", "company_name"}
    assert support.credentials == frozenset({"helpdesk"})
    assert support.max_concurrent_executions == 5
    assert support.alert_webhooks == ("http://127.0.0.1:8090/alerts",)


@pytest.mark.parametrize("name", sorted(DRY_RUNS))
def test_the_example_is_valid(name: str) -> None:
    assert invoke("validate", str(EXAMPLES / f"{name}.yaml")) == (0, "ok\n")


@pytest.mark.parametrize("name", sorted(DRY_RUNS))
def test_the_example_dry_runs_to_its_output(name: str) -> None:
    code, printed = invoke(
        "dry-run",
        str(EXAMPLES / f"{name}.yaml"),
        "--input",
        (EXAMPLES / f"{name}.input.json").read_text(),
        "--answers",
        str(EXAMPLES / f"{name}.answers.yaml"),
        *department_of(name),
    )
    assert code == 0, printed
    lines = printed.splitlines()
    assert lines[-2] == "status: completed"
    assert json.loads(lines[-1].removeprefix("output: ")) == DRY_RUNS[name]


def test_a_wait_with_no_answered_event_dry_runs_along_its_timeout_edge() -> None:
    code, printed = invoke(
        "dry-run",
        str(EXAMPLES / "ticket-escalation.yaml"),
        "--input",
        '{"ticket_id": "T-9", "priority": "high"}',
    )
    assert code == 0, printed
    assert "path: resolved -> page -> escalated" in printed
    assert json.loads(printed.splitlines()[-1].removeprefix("output: "))["escalated"] is True


def test_an_unresolved_escalation_times_out_and_fails_which_alerts_the_department() -> None:
    code, printed = invoke(
        "dry-run",
        str(EXAMPLES / "support/support-escalation.yaml"),
        "--input",
        '{"ticket_id": "T-9"}',
        *department_of("support/support-escalation"),
    )
    assert code == 1, printed
    assert "status: failed" in printed
    assert "at node 'resolved'" in printed


def test_a_dry_run_without_the_department_fails_at_the_first_dept_name() -> None:
    code, printed = invoke(
        "dry-run",
        str(EXAMPLES / "support/support-survey.yaml"),
        "--input",
        '{"ticket_id": "T-1"}',
    )
    assert code == 1, printed
    assert "dept.support_email" in printed


def test_a_dry_run_refuses_a_department_file_that_is_not_one(tmp_path: Path) -> None:
    bad = tmp_path / "department.yaml"
    bad.write_text("kind: Department\nname: support\nsettings: {node_timeout: soon}\n")
    code, printed = invoke(
        "dry-run", str(EXAMPLES / "support/support-survey.yaml"), "--department", str(bad)
    )
    assert code == 2
    assert "--department" in printed and "settings.node_timeout" in printed


# --- the handlers ----------------------------------------------------------------


@pytest.fixture(scope="module")
def handlers() -> ModuleType:
    """`examples.handlers`, under the name a worker imports it by (`--handlers
    examples.handlers`), so the registry sees the same functions either way."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("examples.handlers")


def answers(name: str) -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / f"{name}.answers.yaml").read_text())


def test_orders_price_gives_the_answer_the_order_chain_shows(handlers: ModuleType) -> None:
    priced = handlers.price_order(
        {"sku": "widget-1", "quantity": 12, "unit_price_cents": 1250, "available": 40}
    )
    assert priced == answers("order-chain")["price"]


def test_orders_price_refuses_more_than_is_in_stock(handlers: ModuleType) -> None:
    with pytest.raises(ValueError, match="only 3 of gadget-7 in stock, 5 asked"):
        handlers.price_order(
            {"sku": "gadget-7", "quantity": 5, "unit_price_cents": 4999, "available": 3}
        )


async def test_alerts_page_gives_the_answer_the_uptime_check_shows(handlers: ModuleType) -> None:
    paged = await handlers.page_on_call(
        {"service": "checkout", "http_status": 503, "said": {"status": "down"}}
    )
    assert paged == answers("uptime-check")["page"]


def test_log_ok_says_the_service_is_up(handlers: ModuleType) -> None:
    assert handlers.log_ok({"service": "checkout", "http_status": 200}) == {
        "logged": True,
        "message": "checkout is up (HTTP 200)",
    }


def test_quotes_b_gives_the_answer_the_fan_out_shows(handlers: ModuleType) -> None:
    assert handlers.quote_carrier_b({"weight_grams": 1800}) == answers("fan-out")["carrier_b"]


def test_billing_tax_gives_the_answer_the_invoice_batch_shows(handlers: ModuleType) -> None:
    taxed = handlers.tax_invoice({"invoice": "inv-1", "country": "DE", "net_cents": 10000})
    assert taxed == answers("invoice-batch")["tax"]


def test_billing_tax_refuses_a_country_without_a_rate(handlers: ModuleType) -> None:
    with pytest.raises(ValueError, match="no VAT rate for 'US'"):
        handlers.tax_invoice({"invoice": "inv-9", "country": "US", "net_cents": 100})
