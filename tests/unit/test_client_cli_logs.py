"""`braidflow logs ID`: what the handlers logged, by node run, with what was cut."""

from __future__ import annotations

from braidflow.client_cli import node_log_lines

AT = "2026-12-06T04:30:00.123Z"


def line(message: str, level: str = "info") -> dict[str, str]:
    return {"at": AT, "level": level, "message": message}


def test_each_node_run_is_a_heading_over_its_lines_the_cut_said_where_it_was() -> None:
    runs = [
        {"node_id": "fetch", "attempt": 1, "item": None, "lines": [line("start")], "cut": False},
        {
            "node_id": "fetch",
            "attempt": 2,
            "item": 3,
            "lines": [
                line("(cut: 12 lines not kept here)", "warning"),
                line("failed\nTraceback: ...", "error"),
            ],
            "cut": True,
            "cut_lines": 12,
        },
    ]
    assert node_log_lines(runs) == [
        "fetch (attempt 1):",
        f"  {AT}  info     start",
        "fetch (attempt 2, item 3):",
        f"  {AT}  warning  (cut: 12 lines not kept here)",
        f"  {AT}  error    failed",
        f"  {'':24}  {'':8} Traceback: ...",
    ]


def test_a_run_whose_long_lines_were_shortened_says_so() -> None:
    run = {"node_id": "n", "attempt": 1, "lines": [line("x...")], "cut": True, "cut_lines": 0}
    assert node_log_lines([run])[-1] == "  (cut: long lines shortened)"


def test_an_execution_whose_handlers_logged_nothing() -> None:
    assert node_log_lines([]) == ["no log lines"]
