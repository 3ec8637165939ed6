"""Task handlers of the examples: `braidflow worker --handlers examples.handlers`.

Small and deterministic: the same input always gives the same output, so a
task that runs twice after a crash (at-least-once delivery) does no harm.
A handler that raises fails its node; the message becomes the node's error.
"""

from __future__ import annotations

from typing import Any

import braidflow

# --- order-chain ---------------------------------------------------------------

BULK_QUANTITY = 10  # from this many items on, 10% off


@braidflow.task("orders.price")
def price_order(input: dict[str, Any]) -> dict[str, Any]:
    """Price `quantity` items at `unit_price_cents`; refuse more than `available`."""
    quantity, available = int(input["quantity"]), int(input["available"])
    if quantity > available:
        raise ValueError(f"only {available} of {input['sku']} in stock, {quantity} asked")
    unit = int(input["unit_price_cents"])
    subtotal = unit * quantity
    discount = subtotal // 10 if quantity >= BULK_QUANTITY else 0
    return {
        "sku": input["sku"],
        "quantity": quantity,
        "unit_price_cents": unit,
        "subtotal_cents": subtotal,
        "discount_cents": discount,
        "total_cents": subtotal - discount,
    }


# --- uptime-check ----------------------------------------------------------------


@braidflow.task("alerts.page")
async def page_on_call(input: dict[str, Any]) -> dict[str, Any]:
    """Page on-call (here: say that we would) about a service that is down."""
    service, status = input["service"], int(input["http_status"])
    return {
        "paged": True,
        "service": service,
        "severity": "critical" if status >= 500 else "warning",
        "message": f"{service} is down (HTTP {status})",
    }


@braidflow.task("log.ok")
def log_ok(input: dict[str, Any]) -> dict[str, Any]:
    return {"logged": True, "message": f"{input['service']} is up (HTTP {input['http_status']})"}


# --- fan-out ---------------------------------------------------------------------

# Carrier b prices in-process; carriers a and c are the demo HTTP services.
CARRIER_B = {"base_cents": 429, "per_500g_cents": 150, "days": 3}


@braidflow.task("quotes.b")
def quote_carrier_b(input: dict[str, Any]) -> dict[str, Any]:
    """Base price plus a rate for every started 500 g, like the HTTP carriers."""
    weight = int(input["weight_grams"])
    if weight <= 0:
        raise ValueError("weight_grams must be positive")
    started_half_kilos = -(-weight // 500)
    price = CARRIER_B["base_cents"] + CARRIER_B["per_500g_cents"] * started_half_kilos
    return {"carrier": "b", "price_cents": price, "days": CARRIER_B["days"]}


# --- new-hire-approval -------------------------------------------------------------


@braidflow.task("hr.check")
def hr_check(input: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "employee": input["employee"]}


@braidflow.task("manager.check")
def manager_check(input: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "note": "welcome aboard"}


# --- invoice-batch -----------------------------------------------------------------

VAT_PERCENT = {"DE": 19, "FR": 20, "NL": 21}


@braidflow.task("billing.tax")
def tax_invoice(input: dict[str, Any]) -> dict[str, Any]:
    """Add VAT to one invoice; a country without a known rate fails the item."""
    country = input["country"]
    if country not in VAT_PERCENT:
        raise ValueError(f"no VAT rate for {country!r}")
    net = int(input["net_cents"])
    vat = net * VAT_PERCENT[country] // 100
    return {"invoice": input["invoice"], "vat_cents": vat, "gross_cents": net + vat}
