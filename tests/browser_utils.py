"""Open perflink HTML pages in a real headless Chromium, offline, and check what a reader sees.

Reusable by any test that renders report pages (task pages, the full sample review)::

    from browser_utils import assert_readable, open_offline   # `browser` comes from conftest.py

    @pytest.mark.browser
    def test_my_page(browser, tmp_path):
        check = open_offline(browser, html_path, shots_dir=tmp_path)
        assert_readable(check, min_charts=1, texts=["营业收入"])

Chromium comes from the system (``/usr/bin/chromium``; CI installs it with apt). Never run
``playwright install``: tests skip with a clear reason when the binary is absent. Every request
whose URL is not ``file://`` (or an inline ``data:``/``about:`` URL) is aborted and recorded, so a
page that would fetch a CDN script, font or stylesheet fails the check.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# "file:///" (empty host): "//host/x" in a file page becomes "file://host/x", a remote share.
_LOCAL_SCHEMES = ("file:///", "data:", "about:")
# Selectors of code input: none may be visible in a report page.
INPUT_SELECTORS = ".jp-InputArea, .jp-InputPrompt, .input, .input_area, .jp-CodeMirrorEditor"

# True once a page's interactive tables (if any) are set up: pl_tables.js sets data-pl-tables.
_TABLES_READY_JS = """
() => !document.querySelector('table[data-pl-table="interactive"]')
  || document.documentElement.dataset.plTables !== undefined
"""

_CHARTS_JS = """
() => {
  const boxes = Array.from(document.querySelectorAll(
    '[data-mime-type="image/svg+xml"], .pl-chart, canvas'));
  return boxes.map(box => {
    const el = box.tagName === 'CANVAS' ? box : box.querySelector('svg, canvas, img');
    if (!el) return {ok: false, why: 'no svg/canvas/img inside', tag: box.tagName};
    const r = el.getBoundingClientRect();
    const kids = el.tagName === 'svg' ? el.querySelectorAll('*').length : 1;
    return {ok: r.width > 0 && r.height > 0 && kids > 0, tag: el.tagName,
            w: r.width, h: r.height, kids: kids};
  });
}
"""


@dataclass
class PageCheck:
    """What a page did when opened offline; see :func:`open_offline`."""

    path: Path
    title: str
    lang: str
    text: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    failed_local: list[str] = field(default_factory=list)
    charts: list[dict] = field(default_factory=list)
    visible_inputs: int = 0
    page_width: int = 0
    viewport_width: int = 0
    screenshot: Path | None = None
    pdf: Path | None = None
    pdf_pages: int = 0


@pytest.fixture(scope="session")
def browser():
    """A headless system Chromium (session-wide); skips when /usr/bin/chromium is absent."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} not found: install Chromium with apt (CI does); "
            "do not use `playwright install`."
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _pdf_page_count(data: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?!s)", data))


def _count_pages(pdf_path: Path, data: bytes) -> int:
    """Pages of a PDF: pypdf if installed, else poppler's pdfinfo, else the /Type /Page objects."""
    try:
        import pypdf
    except ImportError:
        pypdf = None
    if pypdf is not None:
        return len(pypdf.PdfReader(str(pdf_path)).pages)
    pdfinfo = shutil.which("pdfinfo")
    if pdfinfo:
        out = subprocess.run(
            [pdfinfo, str(pdf_path)], capture_output=True, text=True, check=True
        ).stdout
        match = re.search(r"^Pages:\s+(\d+)", out, re.MULTILINE)
        if match:
            return int(match.group(1))
    return _pdf_page_count(data)  # Chromium writes one uncompressed /Type /Page per page


_DRAWN_JS = """
() => (!document.querySelector('table[data-pl-table="interactive"]')
       || document.documentElement.dataset.plTables !== undefined)
   && (!document.querySelector('.pl-chart[data-pl-spec]')
       || document.documentElement.dataset.plCharts !== undefined)
"""
# The A4 printable width in CSS px: 210 mm less the 12 mm side margins of perflink.css' @page.
PRINT_WIDTH_PX = round((210 - 2 * 12) / 25.4 * 96)
_PRINT_OVERFLOW_JS = """
() => {
  const out = [];
  const main = document.querySelector('.pl-main') || document.body;
  const right = main.getBoundingClientRect().right + 1;
  for (const el of document.querySelectorAll('table, .pl-chart svg, .pl-chart canvas, img')) {
    if (!el.offsetParent && el.tagName !== 'svg') continue;  // not shown in print
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > right) {
      const head = el.querySelector && el.querySelector('th');
      out.push(`${el.tagName.toLowerCase()} ${Math.round(r.right)}px > ${Math.round(right)}px`
               + (head ? ` (first header: ${head.innerText.trim()})` : ''));
    }
  }
  return out;
}
"""


def wait_until_drawn(page) -> None:
    """Wait until the page's interactive tables and browser-drawn charts (if any) are set up."""
    page.wait_for_function(_DRAWN_JS)


@contextlib.contextmanager
def drawn_page(browser, html_path: Path, *, viewport: tuple[int, int] = (1366, 900)):
    """``html_path`` open in a new page once its tables and charts are set up; closed after."""
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    try:
        page.goto(Path(html_path).resolve().as_uri())
        wait_until_drawn(page)
        yield page
    finally:
        page.close()


def reader_text(page) -> str:
    """The page's text as a reader sees it, every row of the long tables shown (the page's
    ``beforeprint`` handlers run first)."""
    page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    return page.inner_text("body")


def print_overflow(page) -> list[str]:
    """Tables and charts that would be cut on the right of an A4 print, one line each.

    Lays the page out as printed (print media, the A4 printable width) and lists every table,
    chart or image reaching past the right edge of the page body; the page is left in print
    media.
    """
    page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    page.emulate_media(media="print")
    page.set_viewport_size({"width": PRINT_WIDTH_PX, "height": 1100})
    page.wait_for_timeout(200)  # charts re-fit to the new width
    return page.evaluate(_PRINT_OVERFLOW_JS)


def print_page_count(page, pdf_path: Path) -> int:
    """Print ``page`` (a playwright Page) as Chromium does to an A4 PDF at ``pdf_path``;
    return its number of pages.

    The page's ``beforeprint`` handlers run first (interactive tables show every row, as when a
    reader prints), and ``afterprint`` ones after. Pages are counted with pypdf when installed,
    else poppler's ``pdfinfo``, else from the PDF's page objects.
    """
    pdf_path = Path(pdf_path)
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    try:
        data = page.pdf(path=str(pdf_path), format="A4", print_background=True)
    finally:
        page.evaluate("window.dispatchEvent(new Event('afterprint'))")
    return _count_pages(pdf_path, data)


def pdf_text(pdf_path: Path) -> str | None:
    """The text of a PDF, pages separated by form feeds (``"\\f"``), from pypdf, else poppler's
    pdftotext; ``None`` if neither is there."""
    try:
        import pypdf
    except ImportError:
        pypdf = None
    if pypdf is not None:
        return "\f".join(p.extract_text() or "" for p in pypdf.PdfReader(str(pdf_path)).pages)
    pdftotext = shutil.which("pdftotext")
    if pdftotext is None:
        return None
    return subprocess.run(
        [pdftotext, "-enc", "UTF-8", str(pdf_path), "-"], capture_output=True, check=True
    ).stdout.decode("utf-8")


# ASCII words a Chinese reader knows as they are: acronyms of management and finance, units.
ALLOWED_ASCII = frozenset(
    {
        "ROE", "ROA", "ROI", "EVA", "KPI", "CRM", "ERP", "MES", "HR", "OA", "BI", "CFO", "CEO",
        "YoY", "MoM", "SHA-256", "UTF-8", "N/A", "e.g", "i.e", "kUSD", "kEUR", "A4",
    }
)  # fmt: skip
_A = re.ASCII  # \w is [A-Za-z0-9_]: Chinese text around a code is not part of it
# What a Chinese page must not show: code a reader cannot read.
_IDENTIFIER_PATTERNS = (
    # Python object reprs: PosixPath('...'), Period('2026-09', 'M'), <perflink.x.Y object at 0x7f>
    re.compile(r"\b[A-Z][A-Za-z]*Path\(|\b[A-Z][A-Za-z]+\((?=['\"])", _A),
    re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>?", _A),
    # file names: mappings.yaml, scorecard.xlsx, facts.csv
    re.compile(
        r"(?<![\w.])[\w-]+(?:\.[\w-]+)*\.(?:ya?ml|xlsx|xls|csv|parquet|json|ipynb|py|html|txt|sql|log)\b",
        _A,
    ),
    # paths and code words joined by '/': reports/2026Q3, /tmp/x, tables/, linear/step/threshold
    re.compile(r"(?<![\w/])~?/?(?:[\w.-]+/)+[\w.-]*|\b[A-Za-z]:\\[\w\\.-]+", _A),
    # dotted keys: kpi.x, summary.h.x (lower-case words joined by dots; not 1.5)
    re.compile(r"(?<![\w.])[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+(?![\w(])", _A),
    # snake_case: net_profit, tier1_missed, mapping_id, n_obs
    re.compile(r"(?<![\w.])[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+(?![\w.])", _A),
    # upper-case codes with dashes: SCH-PROFIT, RULE-FLOW-01
    re.compile(r"\b[A-Z]{2,}(?:-[A-Z0-9]+)+\b", _A),
)
_SLASH_WORDS = 3  # the pattern of words joined by '/': in English "actual/implied" is a word
# English pages: only real paths (/tmp/x/y, reports/2026Q3/tables, tables/).
_EN_PATHS = re.compile(
    r"(?<![\w/])(?:~?/[\w.-]+(?:/[\w.-]*)+|(?:[\w.-]+/){2,}[\w.-]*|[\w.-]+/(?![\w.]))", _A
)


def find_identifiers(text: str, lang: str = "zh") -> list[str]:
    """ASCII identifiers in the visible text of a Chinese page, each once, in order found.

    Flags what a reader of a zh page cannot read: snake_case words (``net_profit``), dotted
    keys (``kpi.x``, ``summary.h.x``), file names (``mappings.yaml``, ``scorecard.xlsx``),
    paths (``reports/2026Q3``, ``tables/``), dashed codes (``SCH-PROFIT``) and Python object
    reprs (``PosixPath(``, ``<... object at 0x...>``). Ordinary words, numbers, units
    (``kUSD``) and the acronyms a Chinese reader knows (:data:`ALLOWED_ASCII`: ROE, EVA, KPI,
    CRM, ERP, ...) are not flagged; nor are dates (``2026-09``) and numbers (``1.5``).

    With ``lang="en"`` (an English page) words joined by one '/' (``actual/implied``,
    ``USD/unit``) are English, not code: only paths (``/tmp/x``, ``reports/2026Q3/tables``,
    ``tables/``) are flagged among them.
    """
    patterns = list(_IDENTIFIER_PATTERNS)
    if lang == "en":
        patterns[_SLASH_WORDS] = _EN_PATHS
    found: list[str] = []
    for pattern in patterns:
        for match in pattern.finditer(text):
            hit = match.group(0)
            if hit in ALLOWED_ASCII or _is_number_like(hit) or _is_system_name(hit):
                continue
            if hit not in found:
                found.append(hit)
    return found


def _is_system_name(hit: str) -> bool:
    """A source system as the company names it (ERP-FI, CRM-2): an acronym a reader knows,
    then a dash; data shown as entered, not code."""
    head, dash, _ = hit.partition("-")
    return bool(dash) and head in ALLOWED_ASCII and head.isupper()


def _is_number_like(hit: str) -> bool:
    """Dates, ratios and numbers written with '/' or '.' (2026/09, 1/2, 3.5) are not code."""
    return re.fullmatch(r"[\d.,/:-]+", hit) is not None


@dataclass
class OfflinePage:
    """A page opened by :func:`offline_page`, and what it did so far."""

    page: object  # playwright.sync_api.Page
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    failed_local: list[str] = field(default_factory=list)


@contextlib.contextmanager
def offline_page(browser, html_path: Path, *, viewport: tuple[int, int] = (1280, 800)):
    """Open ``html_path`` in a fresh context with network access cut off; yield an OfflinePage.

    For tests that interact with a page (type, click, print) before checking it. Requests
    that leave ``file://`` are aborted and recorded in ``blocked``.
    """
    html_path = Path(html_path).resolve()
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    opened = OfflinePage(page=page)

    def _record(url: str) -> None:
        if not url.startswith(_LOCAL_SCHEMES) and url not in opened.blocked:
            opened.blocked.append(url)

    def _route(route):
        url = route.request.url
        if url.startswith(_LOCAL_SCHEMES):
            route.continue_()
        else:
            _record(url)
            route.abort()

    page.route("**/*", _route)
    page.on("request", lambda r: _record(r.url))
    page.on(
        "console", lambda m: opened.console_errors.append(m.text) if m.type == "error" else None
    )
    page.on("pageerror", lambda exc: opened.page_errors.append(str(exc)))
    page.on(
        "requestfailed",
        lambda r: opened.failed_local.append(r.url) if r.url.startswith("file:///") else None,
    )
    try:
        page.goto(html_path.as_uri(), wait_until="load")
        page.wait_for_load_state("networkidle")
        # charts are drawn by vega-embed after load: pl_charts.js sets data-pl-charts when done
        if page.locator(".pl-chart[data-pl-spec]").count():
            page.wait_for_function(
                "() => document.documentElement.dataset.plCharts !== undefined", timeout=30_000
            )
        yield opened
    finally:
        context.close()


def open_offline(
    browser,
    html_path: Path,
    *,
    shots_dir: Path,
    pdf: bool = True,
    viewport: tuple[int, int] = (1280, 800),
) -> PageCheck:
    """Open ``html_path`` with network access cut off; record errors, charts, screenshot, PDF.

    Parameters
    ----------
    browser
        The :func:`browser` fixture.
    html_path
        The page to open (opened as ``file://``).
    shots_dir
        Folder for ``<stem>.png`` (full page) and ``<stem>.pdf`` (A4 print).
    pdf
        Also print the page to an A4 PDF.
    viewport
        Window size in CSS pixels (a laptop screen by default).
    """
    html_path = Path(html_path).resolve()
    shots_dir.mkdir(parents=True, exist_ok=True)
    with offline_page(browser, html_path, viewport=viewport) as opened:
        page = opened.page
        # Interactive tables are set up by a module script; wait until it has run.
        page.wait_for_function(_TABLES_READY_JS)
        inputs = page.locator(INPUT_SELECTORS)
        visible = sum(inputs.nth(i).is_visible() for i in range(inputs.count()))
        check = PageCheck(
            path=html_path,
            title=page.title(),
            lang=page.evaluate("document.documentElement.lang"),
            text=page.inner_text("body"),
            console_errors=opened.console_errors,
            page_errors=opened.page_errors,
            blocked=opened.blocked,
            failed_local=opened.failed_local,
            charts=page.evaluate(_CHARTS_JS),
            visible_inputs=visible,
            page_width=page.evaluate("document.documentElement.scrollWidth"),
            viewport_width=viewport[0],
        )
        check.screenshot = shots_dir / f"{html_path.stem}.png"
        page.screenshot(path=str(check.screenshot), full_page=True)
        if pdf:
            check.pdf = shots_dir / f"{html_path.stem}.pdf"
            data = page.pdf(path=str(check.pdf), format="A4", print_background=True)
            check.pdf_pages = _pdf_page_count(data)
    return check


def assert_readable(
    check: PageCheck,
    *,
    min_charts: int = 0,
    texts: tuple[str, ...] | list[str] = (),
    lang: str | None = None,
) -> None:
    """Assert a page opened offline cleanly and shows what a reader needs.

    No console or script errors, no request leaving ``file://``, no missing local file, every
    chart drawn (non-empty SVG/canvas with a size), at least ``min_charts`` charts, each of
    ``texts`` present, no code input visible, no horizontal page scroll on a laptop screen,
    and (if printed) a PDF with at least one page.
    """
    where = check.path.name
    assert check.blocked == [], f"{where} tried to load external resources: {check.blocked}"
    assert check.failed_local == [], f"{where} references missing files: {check.failed_local}"
    assert check.console_errors == [], f"{where} console errors: {check.console_errors}"
    assert check.page_errors == [], f"{where} script errors: {check.page_errors}"
    bad = [c for c in check.charts if not c.get("ok")]
    assert bad == [], f"{where}: charts not drawn: {bad}"
    assert len(check.charts) >= min_charts, (
        f"{where}: expected at least {min_charts} chart(s), found {len(check.charts)}"
    )
    for text in texts:
        assert text in check.text, f"{where}: text {text!r} not shown"
    assert check.visible_inputs == 0, f"{where}: {check.visible_inputs} code input(s) visible"
    assert check.page_width <= check.viewport_width, (
        f"{where}: page is {check.page_width}px wide on a {check.viewport_width}px screen "
        "(a wide table or chart should scroll inside its box)"
    )
    if lang is not None:
        assert check.lang == lang, f"{where}: <html lang> is {check.lang!r}, expected {lang!r}"
    if check.pdf is not None:
        assert check.pdf_pages > 0, f"{where}: printing to PDF produced no pages"
