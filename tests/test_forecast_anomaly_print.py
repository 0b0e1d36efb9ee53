"""The forecast and anomaly pages as a leader reads and prints them (issue 19).

Slow browser tests on the sample reviewed end to end (zh 2026Q3, en 2026Q4, the shared
``reviewed_quarters`` fixture): each page prints to at most 10 A4 pages with nothing cut on
the right, a zh page shows no identifier and no statistical jargon outside its glossary, an
en page reads as English (plurals, no Chinese units).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser_utils import (
    drawn_page,
    find_identifiers,
    print_overflow,
    print_page_count,
    reader_text,
)

PAGES = ("forecast", "anomaly")


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("quarter", ["2026Q3", "2026Q4"])  # zh, en
def test_page_prints_within_ten_pages_and_nothing_is_cut(
    browser, reviewed_quarters, quarter, name, tmp_path
):
    with drawn_page(browser, reviewed_quarters.reports / quarter / f"{name}.html") as page:
        pages = print_page_count(page, tmp_path / f"{name}_{quarter}.pdf")
        cut = print_overflow(page)
    assert pages <= 10, f"the {quarter} {name} page prints to {pages} A4 pages (at most 10)"
    assert cut == [], cut


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("name", PAGES)
def test_zh_page_shows_no_code_and_explains_its_terms(browser, reviewed_quarters, name):
    with drawn_page(browser, reviewed_quarters.reports / "2026Q3" / f"{name}.html") as page:
        text = reader_text(page)
    assert find_identifiers(text) == []
    for word in ("马氏", "Mahalanobis", "z 分值", "robust z", "cogs", "opex", "revenue"):
        assert word not in text, word
    assert "本页术语" in text  # the terms that stay are explained in the page's glossary
    if name == "forecast":
        assert "MASE" in text.split("本页术语")[1]


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("name", PAGES)
def test_en_page_reads_as_english(browser, reviewed_quarters, name):
    with drawn_page(browser, reviewed_quarters.reports / "2026Q4" / f"{name}.html") as page:
        text = reader_text(page)
    assert "(s)" not in text
    assert not re.search(r"\b[01] months\b", text)
    assert not re.search(r"\ba [8]\d", text)  # "an 87%"
    assert "万" not in text and "元/" not in text
    assert "P(meet" not in text and "Mahalanobis" not in text


@pytest.mark.parametrize("notebook", ["03_deviation_forecast.ipynb", "04_anomaly_detection.ipynb"])
def test_the_pages_glossary_terms_are_defined(notebook):
    """Every term a page's glossary names has its one-line explanation in zh and en (a term
    removed from the labels would stop the notebook)."""
    import ast
    import json

    from perflink import labels

    cells = json.loads((Path(__file__).parents[1] / "notebooks" / notebook).read_text("utf-8"))
    code = "\n".join("".join(c["source"]) for c in cells["cells"] if c["cell_type"] == "code")
    terms = [
        arg.value
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "glossary"
        for arg in node.args
    ]
    assert terms
    for term in terms:
        for lang in ("zh", "en"):
            assert labels.t(f"glossary.{term}", lang) != f"glossary.{term}"
