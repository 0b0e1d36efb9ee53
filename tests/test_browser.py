"""Report pages open offline in a real headless Chromium and read well (pytest -m browser)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from browser_utils import assert_readable, offline_page, open_offline
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from perflink.report import render_index, render_task_html

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]

# The cells a task notebook would hold: narrative, configure, a table, a wide table, a chart,
# and a warning on stderr that must not reach the page.
_CELLS = [
    new_markdown_cell("# 关键绩效指标评审\n\n本页展示各单位的指标完成情况。\n\n## 完成率概览"),
    new_code_cell(
        "from pathlib import Path\n"
        "import warnings\n"
        "import altair as alt\n"
        "import pandas as pd\n"
        "from perflink import charts, report\n"
        "report.configure(language='zh', tables_dir=Path('tables'))"
    ),
    new_code_cell(
        "df = pd.DataFrame({\n"
        "    'entity_id': ['华东事业部', '华南事业部', '<b>总部</b>'],\n"
        "    'period': pd.period_range('2026-07', periods=3, freq='M'),\n"
        "    'completion': [0.952, 1.083, 0.71],\n"
        "    'value': [12345.6, 823.0, 96.5],\n"
        "    'severity': ['info', 'low', 'high'],\n"
        "})\n"
        "report.save_table(df, 'kpi_overview')\n"
        "report.show(df, units={'value': '万元'})"
    ),
    new_code_cell("warnings.warn('这条警告不应出现在报告中')"),
    new_code_cell(
        "wide = pd.DataFrame({f'指标{i:02d}_说明文字较长的列名': [1234567.891 * i] for i in range(40)})\n"
        "report.show(wide)"
    ),
    new_code_cell(
        "alt.Chart(charts.for_chart(df), title='各单位营业收入（万元）').mark_bar().encode(\n"
        "    x=alt.X('entity_id:N', title='单位'),\n"
        "    y=alt.Y('value:Q', axis=charts.fmt_axis_money('万元', 'zh'), title='营业收入'),\n"
        "    color=alt.Color('severity:N', scale=charts.severity_scale()),\n"
        ")"
    ),
]


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> Path:
    """Execute a small task notebook in a kernel, render its page and the index page."""
    nbclient = pytest.importorskip("nbclient")
    out = tmp_path_factory.mktemp("report")
    nb = new_notebook(
        cells=[c.copy() for c in _CELLS],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "papermill": {"parameters": {"quarter": "2026Q3"}},
        },
    )
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env_path) if p)
    try:
        nbclient.NotebookClient(
            nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(out)}}
        ).execute()
    finally:
        if env_path:
            os.environ["PYTHONPATH"] = env_path
        else:
            del os.environ["PYTHONPATH"]
    nbformat.write(nb, out / "01_kpi.ipynb")
    render_task_html(out / "01_kpi.ipynb", out / "01_kpi.html", language="zh", title="关键绩效指标")
    run = {
        "quarter": "2026Q3",
        "status": "ok",
        "created_at": "2026-10-08 09:00:00",
        "finished_at": "2026-10-08 09:03:12",
        "duration_s": 192.0,
        "language": "zh",
        "tasks": [
            {"name": "01_kpi", "html": "01_kpi.html", "status": "ok", "duration_s": 12.5},
            {"name": "<script>alert(1)</script>", "status": "failed", "duration_s": 1.0},
        ],
        "inputs": [{"name": "facts", "path": "data/facts.csv", "sha256": "ab" * 32, "bytes": 2048}],
        "versions": {"pandas": "3.1", "perflink": "0.1.0"},
        "params": {"quarter": "2026Q3", "db": {"password": "***"}},
    }
    render_index(run, out / "index.html", language="zh")
    return out


def test_task_page_reads_offline(browser, pages, tmp_path):  # noqa: F811 (fixture)
    check = open_offline(browser, pages / "01_kpi.html", shots_dir=tmp_path)
    assert_readable(
        check,
        min_charts=1,
        texts=["关键绩效指标评审", "完成率概览", "华东事业部", "95.2%", "1.23 亿元", "返回目录"],
        lang="zh-CN",
    )
    assert "<b>总部</b>" in check.text  # user data shows as text, not markup
    assert "警告" not in check.text  # stderr (warnings) is dropped
    assert "report.configure" not in check.text  # code is hidden
    assert check.screenshot.stat().st_size > 0


def test_index_page_reads_offline_and_links_task(browser, pages, tmp_path):  # noqa: F811
    check = open_offline(browser, pages / "index.html", shots_dir=tmp_path)
    assert_readable(check, texts=["季度经营业绩评审", "2026年第3季度", "01_kpi", "abababababab"])
    assert "<script>alert(1)</script>" in check.text  # escaped, shown as text
    assert (pages / "01_kpi.html").exists()


# --- charts drawn by the reader's browser (issue 19) ---

_CHARTS_READY_JS = "() => document.documentElement.dataset.plCharts !== undefined"

# For each chart box: is an SVG drawn, how many mark groups, which texts lie outside its SVG.
_CHART_FIT_JS = """
() => Array.from(document.querySelectorAll('.pl-chart')).map((box, i) => {
  const svg = box.querySelector('svg');
  if (!svg) return {i, svg: false, outside: [], marks: 0, text: box.textContent.slice(0, 80)};
  const r = svg.getBoundingClientRect();
  const outside = [];
  for (const t of svg.querySelectorAll('text')) {
    const b = t.getBoundingClientRect();
    if (b.width === 0 && b.height === 0) continue;  // empty or hidden text
    if (b.left < r.left - 1 || b.top < r.top - 1 || b.right > r.right + 1
        || b.bottom > r.bottom + 1) outside.push(t.textContent);
  }
  const marks = Array.from(svg.querySelectorAll('.role-mark'))
    .filter(g => g.childElementCount > 0).length;
  return {i, svg: true, outside, marks, width: r.width, box: box.getBoundingClientRect().width};
})
"""


def chart_problems(page) -> list[str]:
    """What is wrong with the charts of an open page: not drawn, no marks, text outside."""
    page.wait_for_function(_CHARTS_READY_JS)
    return chart_problems_now(page)


def chart_problems_now(page) -> list[str]:
    """:func:`chart_problems` without waiting for a report page's charts to settle."""
    problems = []
    for c in page.evaluate(_CHART_FIT_JS):
        where = f"chart {c['i'] + 1}"
        if not c["svg"]:
            problems.append(f"{where} not drawn: {c['text']!r}")
        elif c["marks"] == 0:
            problems.append(f"{where} draws no mark")
        elif c["outside"]:
            problems.append(f"{where}: text drawn outside the chart: {c['outside'][:5]}")
    return problems


def test_task_page_charts_are_drawn_by_the_browser_and_print_within_the_page(browser, pages):
    from bs4 import BeautifulSoup

    page_html = (pages / "01_kpi.html").read_text(encoding="utf-8")
    assert page_html.count("window.vegaEmbed=") == 1  # the bundle, once
    assert BeautifulSoup(page_html, "html.parser").find_all("svg") == []  # no server-side SVG
    with offline_page(browser, pages / "01_kpi.html") as opened:
        assert chart_problems(opened.page) == []
        assert opened.page.evaluate("document.documentElement.dataset.plCharts") == "1"
        # the chart's own text is laid out by the browser, in the page language
        labels = opened.page.locator(".pl-chart svg text").all_text_contents()
        assert "营业收入" in labels and "单位" in labels
        # printed: the chart is scaled to the printable width (A4 less 15 mm margins)
        natural = opened.page.evaluate(
            "+document.querySelector('.pl-chart svg').getAttribute('width')"
        )
        opened.page.set_viewport_size({"width": int(natural) // 2, "height": 800})
        opened.page.emulate_media(media="print")
        fit = opened.page.evaluate(_CHART_FIT_JS)
        assert fit and all(c["width"] <= c["box"] + 1 for c in fit), fit
        assert fit[0]["width"] < natural  # scaled down, not cut
        assert opened.blocked == [] and opened.console_errors == [] and opened.page_errors == []


# JupyterLab inserts an HTML output with innerHTML and re-creates its scripts (trusted outputs
# only); this page does the same with the renderer's outputs, so they are tested as Lab runs
# them: offline, several charts on one page (the bundle defined once), tooltips and zoom.
_LAB_PAGE = """<!doctype html><html><body><script>
const outputs = %s;
for (const html of outputs) {
  const host = document.createElement("div");
  host.innerHTML = html;
  document.body.appendChild(host);
  for (const old of Array.from(host.getElementsByTagName("script"))) {
    const s = document.createElement("script");
    s.textContent = old.textContent;
    old.parentNode.replaceChild(s, old);
  }
}
</script></body></html>"""


def test_jupyterlab_chart_outputs_draw_offline_with_tooltips_and_zoom(browser, tmp_path):
    import json

    import altair as alt
    import pandas as pd

    from perflink import charts

    charts.theme()
    charts.enable_renderer(lang="zh", inline_bundle=True)
    months = pd.DataFrame(
        {"t": pd.date_range("2025-01-01", periods=24, freq="MS"), "v": range(24), "n": "华南"}
    )
    line = alt.Chart(months).mark_line(point=True).encode(x="t:T", y="v:Q")
    bar = (
        alt.Chart(months.head(3).assign(n=["华南制造", "西南销售", "华东研发"]))
        .mark_bar()
        .encode(x="v:Q", y="n:N", tooltip=[alt.Tooltip("n:N", title="单位")])
    )
    outputs = [c._repr_mimebundle_()[0]["text/html"] for c in (line, bar, line)]
    path = tmp_path / "lab.html"
    path.write_text(_LAB_PAGE % json.dumps(outputs).replace("<", "\\u003c"), encoding="utf-8")
    with offline_page(browser, path) as opened:
        page = opened.page
        page.wait_for_function("document.querySelectorAll('.pl-chart[data-pl-drawn]').length === 3")
        page.evaluate("document.documentElement.dataset.plCharts = '3'")
        assert chart_problems(page) == []
        # tooltip: hover the second bar of the bar chart
        bar_box = page.locator(".pl-chart").nth(1).locator(".role-mark path").nth(1).bounding_box()
        page.mouse.move(bar_box["x"] + bar_box["width"] / 2, bar_box["y"] + bar_box["height"] / 2)
        page.wait_for_selector("#vg-tooltip-element.visible")
        assert "西南销售" in page.inner_text("#vg-tooltip-element")
        # zoom: the mouse wheel over the time series narrows its x axis
        axis_labels = page.locator(".pl-chart").first.locator(".role-axis-label text")
        before = axis_labels.first.text_content()
        svg = page.locator(".pl-chart").first.locator("svg").bounding_box()
        page.mouse.move(svg["x"] + svg["width"] / 2, svg["y"] + svg["height"] / 2)
        page.mouse.wheel(0, -400)
        page.wait_for_timeout(300)
        after = axis_labels.first.text_content()
        assert before == "2025-01" and after != before, (before, after)
        assert opened.blocked == [] and opened.console_errors == [] and opened.page_errors == []


# Charts of the sample review's pages, zh (2026Q3) and en (2026Q4): each drawn by the browser
# with marks, no chart text outside its chart's box, no console error, nothing fetched.
# A chart a page engineer still has to fix is marked xfail with the page and the chart.
_CHART_PAGES = ["summary", "mapping", "kpi", "forecast", "anomaly"]
_CHART_XFAIL: dict[tuple[str, str], str] = {}


@pytest.mark.slow
@pytest.mark.kernel
@pytest.mark.parametrize(
    ("quarter", "page_name"),
    [
        pytest.param(
            q,
            name,
            marks=[pytest.mark.xfail(strict=False, reason=_CHART_XFAIL[(q, name)])]
            if (q, name) in _CHART_XFAIL
            else [],
            id=f"{'zh' if q == 'q3' else 'en'}-{name}",
        )
        for q in ("q3", "q4")
        for name in _CHART_PAGES
    ],
)
def test_sample_review_charts_fit_their_box(reviewed_quarters, browser, quarter, page_name):
    path = getattr(reviewed_quarters, quarter).report_dir / f"{page_name}.html"
    with offline_page(browser, path, viewport=(1366, 900)) as opened:
        problems = chart_problems(opened.page)
        n = int(opened.page.evaluate("document.documentElement.dataset.plCharts"))
        assert n > 0, f"{path.name}: no chart"
        assert problems == [], f"{path.name}:\n" + "\n".join(problems)
        assert opened.blocked == [], f"{path.name} fetched {opened.blocked}"
        assert opened.console_errors == [] and opened.page_errors == [], (
            opened.console_errors + opened.page_errors
        )


_LAB_CELL = """import altair as alt
import pandas as pd
from perflink import report
report.configure(language="zh", tables_dir=None)
d = pd.DataFrame({"t": pd.date_range("2025-01-01", periods=12, freq="MS"), "v": range(12)})
d["n"] = "华南制造有限公司"
alt.Chart(d).mark_line(point=True).encode(x="t:T", y="v:Q", tooltip=["n:N", "v:Q"])"""


# A step of about 4 s: its bar shows after PROGRESS_DELAY (2 s).
_LAB_PROGRESS_CELL = """import time
from perflink.execution import progress
with progress("demo step", 8, unit="step") as bar:
    for _ in range(8):
        time.sleep(0.5)
        bar.update()"""


@pytest.mark.slow
@pytest.mark.kernel
def test_charts_are_interactive_in_jupyterlab(browser, tmp_path):
    """A chart cell run in a real JupyterLab 4 draws offline and shows its tooltip; a long
    step shows its progress bar."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    pytest.importorskip("jupyterlab")
    nb = new_notebook(
        cells=[new_code_cell(_LAB_CELL), new_code_cell(_LAB_PROGRESS_CELL)],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )
    (tmp_path / "work").mkdir()
    nbformat.write(nb, tmp_path / "work" / "charts.ipynb")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ)
    env.update(
        {f"JUPYTER_{k}_DIR": str(tmp_path / k.lower()) for k in ("DATA", "CONFIG", "RUNTIME")}
    )
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("PERFLINK_PROGRESS", None)  # as an analyst's kernel: bars on
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}",
         "--IdentityProvider.token=", "--ServerApp.password=",
         f"--ServerApp.root_dir={tmp_path / 'work'}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{base}/api/status", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        context = browser.new_context(viewport={"width": 1300, "height": 1000})
        page = context.new_page()
        remote: list[str] = []

        def _route(route):
            if route.request.url.startswith((base, "data:", "blob:")):
                route.continue_()
            else:
                remote.append(route.request.url)
                route.abort()

        page.route("**/*", _route)
        page.goto(f"{base}/lab/tree/charts.ipynb")
        page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=180_000)
        # the kernel is started and idle (the status bar says so), so the cell runs
        page.wait_for_function("document.body.innerText.includes('| Idle')", timeout=180_000)
        page.click(".jp-Notebook .jp-Cell .cm-content")
        page.keyboard.press("Shift+Enter")
        page.wait_for_selector(".jp-OutputArea .pl-chart[data-pl-drawn]", timeout=180_000)
        assert chart_problems_now(page) == []
        point = page.locator(".jp-OutputArea .pl-chart svg .mark-symbol path").nth(5).bounding_box()
        page.mouse.move(point["x"] + point["width"] / 2, point["y"] + point["height"] / 2)
        page.wait_for_selector("#vg-tooltip-element.visible", timeout=10_000)
        assert "华南制造有限公司" in page.inner_text("#vg-tooltip-element")
        # a step of several seconds shows its progress bar under the cell, and its last
        # line (100%) stays there when it ends
        page.keyboard.press("Escape")
        page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")
        outputs = "Array.from(document.querySelectorAll('.jp-OutputArea-output'))" \
            ".map(e => e.innerText).join('\\n')"  # fmt: skip
        page.wait_for_function(f"{outputs}.includes('demo step:')", timeout=60_000)
        running = page.evaluate(outputs)
        assert "%|" in running and "8/8" not in running, running
        page.wait_for_function(f"{outputs}.includes('8/8')", timeout=60_000)
        assert "100%|" in page.evaluate(outputs)
        assert remote == []
        context.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_chart_check_finds_text_drawn_outside_the_chart(browser, tmp_path):
    """The check above fails on the defect it is for: labels cut at the chart's edge (here a
    chart laid out without room for its axis, as server-side SVG was with the wrong fonts)."""
    import altair as alt
    import pandas as pd
    from nbformat.v4 import new_output

    from perflink import charts

    charts.theme()
    charts.enable_renderer(lang="zh", inline_bundle=False)
    names = pd.DataFrame({"n": ["华南制造有限公司", "西南零售有限公司"], "v": [1, 2]})
    clipped = (
        alt.Chart(names)
        .mark_bar()
        .encode(x="v:Q", y=alt.Y("n:N", title=None))
        .properties(autosize={"type": "none"}, padding=0)
    )
    data, meta = clipped._repr_mimebundle_()
    nb = new_notebook(cells=[new_code_cell("c", outputs=[new_output("display_data", data=data)])])
    nbformat.write(nb, tmp_path / "c.ipynb")
    render_task_html(tmp_path / "c.ipynb", tmp_path / "c.html", language="zh", title="t")
    with offline_page(browser, tmp_path / "c.html") as opened:
        problems = chart_problems(opened.page)
    assert len(problems) == 1 and "text drawn outside the chart" in problems[0], problems


@pytest.mark.parametrize("quarter", ["q3", "q4"], ids=["zh", "en"])
def test_kpi_page_drills_from_a_subsidiary_to_its_units(reviewed_quarters, browser, quarter):
    """Clicking a subsidiary in the drill-down lists that subsidiary's units, offline."""
    from perflink.labels import t

    review = getattr(reviewed_quarters, quarter)
    lang = "zh" if quarter == "q3" else "en"
    path = review.report_dir / "kpi.html"
    with offline_page(browser, path, viewport=(1366, 900)) as opened:
        box = opened.page.locator(".pl-chart", has_text=t("scoring.drill.subsidiaries", lang))
        assert box.count() == 1, f"{path.name}: no drill-down chart"
        name_key = t("report.col.entity_name", lang)

        def names(bars) -> list[str]:
            labels = [bars.nth(i).get_attribute("aria-label") for i in range(bars.count())]
            return [re.search(rf"{name_key}: ([^;]+)", a).group(1) for a in labels]

        def shown():
            bars = box.locator("path[aria-roledescription='bar']")
            texts = box.locator("g.mark-text text").all_text_contents()
            return names(bars), texts

        # the upper panel's bars (subsidiaries) come first, the selected units' after them
        upper = box.locator("g.mark-rect.role-mark").first.locator(
            "path[aria-roledescription='bar']"
        )
        subs = names(upper)
        assert len(subs) >= 2
        before, texts = shown()
        captions = [x for x in texts if x.startswith(subs[0])]
        assert captions, f"no caption names the lowest-scoring subsidiary {subs[0]}: {texts}"
        units_before = before[len(subs) :]
        assert units_before and not set(units_before) & set(subs)
        upper.nth(1).click()
        opened.page.wait_for_timeout(300)
        after, texts = shown()
        assert any(x.startswith(subs[1]) for x in texts), texts
        units_after = after[len(subs) :]
        assert units_after and not set(units_after) & set(units_before)
        assert opened.console_errors == [] and opened.page_errors == []
