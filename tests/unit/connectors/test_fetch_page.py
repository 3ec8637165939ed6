"""What a fetch_page node picks out of a page, with plain HTML."""

from __future__ import annotations

import subprocess
import sys

import pytest

from braidflow.connectors.fetch_page import picked
from braidflow.topology import DefinitionError, load_workflow

PAGE = """<html><head><title>  Shop
 front </title></head><body>
<h2 class="item">  Tea
  pot </h2><h2 class="item">Cup</h2>
<a class="more btn" href="/more" rel="next">More</a>
</body></html>"""


def test_the_first_match_text_collapsed_every_match_attributes_and_misses() -> None:
    select = {
        "first": "h2.item",
        "names": {"css": "h2.item", "all": True},
        "link": {"css": "a", "attr": "href"},
        "classes": {"css": "a", "attr": "class"},
        "absent_attr": {"css": "a", "attr": "title"},
        "none": "table td",
        "none_all": {"css": "table td", "all": True},
    }
    assert picked(PAGE, select) == {
        "title": "Shop front",
        "fields": {
            "first": "Tea pot",
            "names": ["Tea pot", "Cup"],
            "link": "/more",
            "classes": "more btn",
            "absent_attr": None,
            "none": None,
            "none_all": [],
        },
    }


def test_a_page_without_markup_or_title() -> None:
    assert picked("", {"x": "p"}) == {"title": None, "fields": {"x": None}}


def _definition(select: str) -> str:
    return f"""
id: pages
nodes:
  - id: read
    type: fetch_page
    params: {{url: "https://example.com", select: {select}}}
  - id: done
    type: end
edges:
  - {{from: read, to: done}}
"""


def test_selectors_are_checked_at_validation_naming_node_and_field() -> None:
    load_workflow(_definition('{a: "div > p:nth-child(2)", b: {css: "a", attr: href}}'))
    with pytest.raises(DefinitionError) as refused:
        load_workflow(_definition('{good: "p", bad: "p[["}'))
    [problem] = refused.value.problems
    assert problem.where == "node 'read'"
    assert problem.message.startswith("params.select.bad: 'p[[' is not a CSS selector")


def test_select_must_name_at_least_one_field() -> None:
    with pytest.raises(DefinitionError, match="select"):
        load_workflow(_definition("{}"))


def test_a_worker_imports_no_page_parser_until_a_page_is_read() -> None:
    # Their imports took a tenth of a second of every worker start and `braidflow validate`.
    code = "import sys, braidflow.runtime; print(sorted({'bs4', 'soupsieve'} & set(sys.modules)))"
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == "[]"
