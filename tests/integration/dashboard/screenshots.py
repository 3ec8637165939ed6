"""Screenshots of every dashboard page, on a laptop and a phone, into docs/screenshots/
(docs/dashboard.md shows them). Not part of the suite (its name is not test_*): run it with
`make screenshots`, against a real worker holding a small order scenario."""

from __future__ import annotations

from pathlib import Path

from dashboard_browser import sign_in
from playwright.sync_api import Browser, Page
from waiting import until
from workers import WorkerApi, WorkerProcess

from braidflow.client_cli import quote_id

SHOTS = Path(__file__).parents[3] / "docs" / "screenshots"
INVOICE = """
id: order-invoice
name: Invoice an order
nodes:
  - {id: bill, type: task, params: {handler: test.echo}}
  - {id: done, type: end}
edges:
  - {from: bill, to: done}
"""
FOLLOW_UP = """
id: order-follow-up
name: Ask how it went
triggers:
  - event: {types: [order.shipped]}
nodes:
  - {id: survey, type: task, params: {handler: test.echo}}
  - {id: done, type: end}
edges:
  - {from: survey, to: done}
"""
INTAKE = """
id: order-intake
name: Take an order
nodes:
  - {id: validate, type: task, name: Check the order, params: {handler: test.echo}}
  - {id: prepare, type: parallel}
  - {id: pick, type: task, name: Pick the items, params: {handler: test.slow, input: {value: picked}}}
  - {id: pack, type: task, name: Pack the box, params: {handler: test.slow, input: {value: packed}}}
  - {id: ready, type: join}
  - {id: invoice, type: subworkflow, params: {workflow: order-invoice}}
  - {id: ship, type: approval, name: "Ship it?", params: {message: "Ship this order?",
      choices: [ship, hold], input: {type: object, required: [carrier],
      properties: {carrier: {type: string, enum: [post, courier]}, note: {type: string}}}}}
  - {id: route, type: decision}
  - {id: shipped, type: publish, params: {type: order.shipped, data: {order: "${input.order}"}}}
  - {id: held, type: end}
  - {id: done, type: end}
edges:
  - {from: validate, to: prepare}
  - {from: prepare, to: pick}
  - {from: prepare, to: pack}
  - {from: pick, to: ready}
  - {from: pack, to: ready}
  - {from: ready, to: invoice}
  - {from: invoice, to: ship}
  - {from: ship, to: route}
  - {from: route, to: shipped, when: "nodes.ship.output.choice == 'ship'"}
  - {from: route, to: held, default: true}
  - {from: shipped, to: done}
"""
DELIVERY = """
id: order-delivery
name: Wait for the delivery
nodes:
  - {id: delivered, type: wait_event, params: {type: order.delivered,
      correlate: "event.data.order == input.order"}, timeout: 7d}
  - {id: done, type: end}
edges:
  - {from: delivered, to: done}
"""
CHECK = """
id: stock-check
name: Check the stock
nodes:
  - {id: check, type: task, params: {handler: test.strict, input: {sku: B-7, fixed: false}}}
  - {id: done, type: end}
edges:
  - {from: check, to: done}
"""
PAGES = {
    "workflows": "#/workflows",
    "workflow": "#/workflows/order-intake",
    "execution": "#/executions/{shipped}",
    "approvals": "#/approvals",
    "dead-letters": "#/dead-letters",
    "map": "#/map",
    "events": "#/events",
    "analytics": "#/stats",
}
SIZES = {"": (1280, 860), "-phone": (390, 844)}


def waiting_at(api: WorkerApi, execution_id: str, node_id: str) -> bool:
    view = api.execution(execution_id).body
    nodes = view.get("nodes", [])
    return any(n["node_id"] == node_id and n["status"] == "waiting" for n in nodes)


def waiting_at_ship(api: WorkerApi, execution_id: str) -> bool:
    return waiting_at(api, execution_id, "ship")


def publish(api: WorkerApi, event_id: str, source: str, type_: str, data: dict[str, str]) -> None:
    """Publish a CloudEvent through the API; it must be accepted."""
    event = {"specversion": "1.0", "id": event_id, "source": source, "type": type_, "data": data}
    published = api.post_json("/events", event)
    assert published.status == 202, published


def scenario(worker: WorkerProcess) -> dict[str, str]:
    """The order scenario: one order shipped, one waiting for approval, a failed check."""
    api = worker.api
    for text in (INVOICE, FOLLOW_UP, INTAKE.replace("Ship it?", "Ship?"), INTAKE, CHECK, DELIVERY):
        assert api.deploy(text).status in (200, 201)
    shipped = api.start("order-intake", {"order": "A-1"})
    waiting = api.start("order-intake", {"order": "A-2"})
    failed = api.start("stock-check", {"sku": "B-7"})
    delivery = api.start("order-delivery", {"order": "A-1"})
    until(lambda: waiting_at_ship(api, shipped), "order A-1 at its approval")
    decided = api.post_json(
        f"/executions/{shipped}/approvals/ship",
        {"choice": "ship", "data": {"carrier": "courier"}},
    )
    assert decided.status == 200, decided
    worker.wait_until_finished([shipped])
    until(lambda: waiting_at_ship(api, waiting), "order A-2 at its approval")
    until(
        lambda: api.get("/dead-letters?workflow=stock-check").body["dead_letters"],
        "the stock check's dead letter",
    )
    publish(api, "shop-1", "/shop", "order.shipped", {"order": "A-0"})
    until(
        lambda: len(api.get("/workflows/order-follow-up/executions").body["executions"]) >= 2,
        "the follow-ups the shipped events start",
    )
    until(lambda: waiting_at(api, delivery, "delivered"), "the delivery's wait")
    publish(api, "van-1", "/carrier", "order.delivered", {"order": "A-1"})
    until(
        lambda: any(e["resumed"] for e in api.get("/event-bus").body["events"]),
        "the delivery resumed by its event",
    )
    return {"shipped": shipped, "waiting": waiting, "failed": quote_id(failed)}


def shoot(page: Page, base_url: str, key: str, names: dict[str, str], suffix: str) -> None:
    sign_in(page, base_url, key)
    for name, hash_ in PAGES.items():
        page.goto(f"{base_url}/{hash_.format(**names)}")
        page.wait_for_selector("#page[data-ready]")
        if name in ("workflow", "execution", "map"):
            page.wait_for_selector("svg.graph")
        if name == "execution":
            # A node's detail: its input beside its output.
            page.click('#graph [data-node="pick"]')
            page.wait_for_selector('#node-detail [data-part="input"]')
        if name == "workflow":
            page.click("#diff button[type=submit], form.inline button[type=submit]")
            page.wait_for_selector("pre.diff")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(SHOTS / f"{name}{suffix}.png"), full_page=True)


def test_take_screenshots(browser: Browser, shared_worker: WorkerProcess) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    names = scenario(shared_worker)
    for suffix, (width, height) in SIZES.items():
        context = browser.new_context(viewport={"width": width, "height": height})
        try:
            shoot(
                context.new_page(),
                shared_worker.api.base_url,
                str(shared_worker.api.key),
                names,
                suffix,
            )
        finally:
            context.close()
    assert sorted(p.name for p in SHOTS.glob("*.png")) == sorted(
        f"{name}{suffix}.png" for name in PAGES for suffix in SIZES
    )
