"""Interactive drill-down tables: frame_html marks long tables; task pages inline DataTables once."""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pandas as pd
import pytest
from bs4 import BeautifulSoup
from nbformat.v4 import new_code_cell, new_notebook, new_output

from perflink import report
from perflink._report_format import PAGE_ROWS, TABLE_MAX_ROWS, frame_html
from perflink.report import ReportError, render_task_html


def _units(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "entity_id": [f"U{i:04d}" for i in range(n)],
            "period": [pd.Period("2026-09", "M"), pd.Period("2026-10", "M")] * (n // 2)
            + [pd.Period("2026-09", "M")] * (n % 2),
            "severity": (["info", "critical", "medium"] * n)[:n],
            "value": [float(i) * 1000.5 for i in range(n)],
        }
    )


def _table(html: str):
    return BeautifulSoup(html, "html.parser").select_one("table")


def test_short_table_stays_plain():
    table = _table(frame_html(_units(PAGE_ROWS), lang="en", units={"value": "money"}))
    assert table["class"][0] == "pl-table" and "pl-interactive" not in table["class"]
    assert not table.has_attr("data-pl-table")
    assert table.select("[data-order]") == []


def test_long_table_is_marked_with_sort_keys():
    df = _units(PAGE_ROWS + 1)
    df.loc[3, "value"] = np.nan
    df.loc[4, "value"] = float("inf")
    table = _table(frame_html(df, lang="zh", units={"value": "万元"}))
    assert table["data-pl-table"] == "interactive"
    assert "pl-interactive" in table["class"]
    sorts = [th.get("data-pl-sort") for th in table.select("thead th")]
    assert sorts == [None, "key", "key", "num"]
    assert table.select("thead th")[3]["class"] == ["num"]
    rows = table.select("tbody tr")
    assert len(rows) == PAGE_ROWS + 1
    entity, period, severity, value = rows[1].select("td")
    assert not entity.has_attr("data-order")  # text sorts as shown
    assert (period["data-order"], period.get_text()) == ("2026-10", "2026年10月")
    assert (severity["data-order"], severity.get_text()) == ("0", "严重")  # critical first
    assert (value["data-order"], value.get_text()) == ("1000.5", "1,000 万元")
    assert rows[3].select("td")[3]["data-order"] == ""  # missing: DataTables sorts it lowest
    assert rows[4].select("td")[3]["data-order"] == "Infinity"
    assert rows[0].select("td")[2]["data-order"] == "4"  # info


def test_interactive_can_be_forced_either_way():
    assert _table(frame_html(_units(3), lang="en", interactive=True))["data-pl-table"]
    plain = _table(frame_html(_units(PAGE_ROWS + 5), lang="en", interactive=False))
    assert not plain.has_attr("data-pl-table")


def test_row_cap_default_and_note():
    assert TABLE_MAX_ROWS == 600  # the sample's longest table (552 rows) shows whole
    df = pd.DataFrame({"x": range(TABLE_MAX_ROWS + 7)})
    html = frame_html(df, lang="en")
    assert len(_table(html).select("tbody tr")) == TABLE_MAX_ROWS
    assert f"showing the first {TABLE_MAX_ROWS} of {TABLE_MAX_ROWS + 7} rows" in html
    shown = frame_html(df.head(TABLE_MAX_ROWS), lang="en")
    assert "pl-table-note" not in shown


def test_show_uses_the_higher_cap(monkeypatch):
    out: list = []
    monkeypatch.setattr(report, "_display", out.append)
    report.show(pd.DataFrame({"x": range(TABLE_MAX_ROWS - 1)}), lang="en")
    table = _table(out[0].data)
    assert len(table.select("tbody tr")) == TABLE_MAX_ROWS - 1
    assert table["data-pl-table"] == "interactive"


@pytest.mark.parametrize("bad", [-1, 2.5, "10", True])
def test_bad_max_rows(bad):
    with pytest.raises(ReportError, match="max_rows"):
        frame_html(_units(3), lang="en", max_rows=bad)


def _notebook(tmp_path, *htmls: str):
    cells = [
        new_code_cell("x", outputs=[new_output("display_data", data={"text/html": h})])
        for h in htmls
    ]
    nb = new_notebook(cells=cells, metadata={"papermill": {"parameters": {"quarter": "2026Q3"}}})
    path = tmp_path / "t.ipynb"
    nbformat.write(nb, path)
    return path


def _page(tmp_path, lang: str, *htmls: str) -> BeautifulSoup:
    out = tmp_path / f"t_{lang}.html"
    render_task_html(_notebook(tmp_path, *htmls), out, language=lang, title="t")
    return BeautifulSoup(out.read_text(encoding="utf-8"), "html.parser")


def test_page_without_long_tables_has_no_script(tmp_path):
    soup = _page(tmp_path, "en", frame_html(_units(5), lang="en"))
    assert soup.find_all("script") == []


@pytest.mark.parametrize(
    ("lang", "search", "all_rows"), [("zh", "搜索：", "全部"), ("en", "Search:", "All")]
)
def test_page_with_long_tables_inlines_datatables_once(tmp_path, lang, search, all_rows):
    long = frame_html(_units(60), lang=lang)
    soup = _page(tmp_path, lang, long, long)
    imports = json.loads(soup.find("script", type="importmap").get_text())["imports"]
    assert list(imports) == ["perflink-datatables"]
    assert imports["perflink-datatables"].startswith("data:text/javascript;charset=utf-8,")
    assert len(soup.find_all("script", type="importmap")) == 1
    modules = soup.find_all("script", type="module")
    assert len(modules) == 1 and 'from "perflink-datatables"' in modules[0].get_text()
    options = json.loads(soup.find("script", id="pl-datatables-options").get_text())
    assert options["pageLength"] == PAGE_ROWS
    assert options["language"]["search"] == search and options["all"] == all_rows
    assert "_TOTAL_" in options["language"]["info"]
    assert len(soup.select('table[data-pl-table="interactive"]')) == 2
    css = "".join(s.get_text() for s in soup.find_all("style"))
    assert ".dt-paging" in css and "@media print" in css


def test_options_json_cannot_close_its_script(tmp_path, monkeypatch):
    from perflink import _report_html

    text = _report_html._script_json({"x": "</script><!-- & >"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"x": "</script><!-- & >"}


def test_offline_check_refuses_a_remote_import_map(tmp_path):
    html = '<script type="importmap">{"imports": {"x": "https://cdn.example.com/x.js"}}</script>'
    with pytest.raises(ReportError, match="cdn.example.com.*offline"):
        _page(tmp_path, "en", html)


def test_keyed_columns_key_every_cell():
    # DataTables reads data-order only where the first row has it: a column whose first cell
    # is missing must still key every cell; a text column gets no keys at all.
    df = pd.DataFrame(
        {
            "value": [np.nan, *range(PAGE_ROWS + 1)],
            "name": [None, *(f"n{i}" for i in range(PAGE_ROWS + 1))],
            "severity": ["bogus", *(["high"] * (PAGE_ROWS + 1))],
        }
    )
    table = _table(frame_html(df, lang="en"))
    first, second = table.select("tbody tr")[:2]
    assert [td.get("data-order") for td in first.select("td")] == ["", None, "bogus"]
    assert [td.get("data-order") for td in second.select("td")] == ["0", None, "1"]
    sorts = [th.get("data-pl-sort") for th in table.select("thead th")]
    assert sorts == ["num", None, "key"]


def test_text_amounts_sort_by_the_values_given_in_order():
    """Amounts formatted per row in mixed units sort by the numbers behind them."""
    amounts = [12_300.0 if i % 2 else 523.4 for i in range(PAGE_ROWS + 1)]
    df = pd.DataFrame(
        {
            "entity_id": [f"U{i:04d}" for i in range(len(amounts))],
            "actual": [report.fmt_number(v, "money", "zh") for v in amounts],
        }
    )
    table = _table(frame_html(df, lang="zh", order={"actual": amounts}))
    assert [th.get("data-pl-sort") for th in table.select("thead th")] == [None, "num"]
    first, second = (row.select("td")[1] for row in table.select("tbody tr")[:2])
    assert (first.get_text(), first["data-order"]) == (df["actual"][0], "523.4")
    assert (second.get_text(), second["data-order"]) == (df["actual"][1], "12300")
    plain = _table(frame_html(df, lang="zh"))  # without order the text is all there is
    assert plain.select("thead th")[1].get("data-pl-sort") is None
    with pytest.raises(ReportError, match="one value per row"):
        frame_html(df, lang="zh", order={"actual": amounts[:-1]})
    with pytest.raises(ReportError, match="not in the table"):
        frame_html(df, lang="zh", order={"target": amounts})


def test_a_table_too_long_for_a_spreadsheet_is_written_as_parquet_only(tmp_path, monkeypatch):
    from perflink import _report_tables

    monkeypatch.setattr(_report_tables, "CSV_MAX_ROWS", 3)
    small, big = pd.DataFrame({"x": [1, 2, 3]}), pd.DataFrame({"x": [1, 2, 3, 4]})
    _report_tables.write_table(small, "t", tmp_path, findings=False)
    assert (tmp_path / "t.csv").is_file() and (tmp_path / "t.parquet").is_file()
    _report_tables.write_table(big, "t", tmp_path, findings=False)  # the stale CSV goes
    assert not (tmp_path / "t.csv").exists()
    assert pd.read_parquet(tmp_path / "t.parquet")["x"].tolist() == [1, 2, 3, 4]


def test_atomic_write_gives_the_writers_buffers_back(tmp_path, monkeypatch) -> None:
    # Whole file or the old one, and the writer's freed buffers go back to the system
    # (release_memory) whether it succeeded or failed.
    from perflink import _report_tables

    released: list[int] = []
    monkeypatch.setattr(_report_tables, "release_memory", lambda: released.append(1))
    path = tmp_path / "t.csv"
    _report_tables.atomic_write(path, lambda tmp: tmp.write_text("a\n1\n", encoding="utf-8"))
    assert path.read_text(encoding="utf-8") == "a\n1\n" and released == [1]

    def broken(tmp):
        tmp.write_text("a\n", encoding="utf-8")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        _report_tables.atomic_write(path, broken)
    assert path.read_text(encoding="utf-8") == "a\n1\n" and released == [1, 1]
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]  # no temporary left
