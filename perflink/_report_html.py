"""Offline HTML pages: executed task notebooks and the run's landing page.

Not API: import :func:`perflink.report.render_task_html` / :func:`perflink.report.render_index`.
"""

from __future__ import annotations

import copy
import functools
import html.parser
import importlib.resources
import json
import logging
import os
import re
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

import jinja2
import markupsafe
import nbformat

from perflink import _charts_embed
from perflink._report_format import (
    INTERACTIVE,
    PAGE_ROWS,
    ReportError,
    datatables_language,
    fmt_bytes,
    fmt_duration,
    fmt_period,
    fmt_timestamp,
)
from perflink._report_tables import atomic_write
from perflink._version import __version__
from perflink.errors import PerflinkError
from perflink.labels import _check_lang, t, value_label

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE_NAME = "perflink"
_CSS_PATH = TEMPLATES / TEMPLATE_NAME / "static" / "perflink.css"
# Characters left as they are in the bundle's data: URL: none of them can end a JSON string or
# a <script> element, or start a URL fragment.
_URL_SAFE = "-_.~!$'()*+,;=:@/?[]{}|^`"
_TABLES_JS_PATH = TEMPLATES / TEMPLATE_NAME / "static" / "pl_tables.js"
_CHARTS_JS_PATH = TEMPLATES / TEMPLATE_NAME / "static" / "pl_charts.js"
_MARK = f'data-pl-table="{INTERACTIVE}"'
log = logging.getLogger("perflink.report")
_HTML_LANG = {"zh": "zh-CN", "en": "en"}
_XML_PROLOG = re.compile(r"^\s*<\?xml[^>]*\?>\s*(<!DOCTYPE[^>]*>\s*)?")


def _css() -> str:
    return _CSS_PATH.read_text(encoding="utf-8")


@functools.cache
def _datatables_bundle() -> tuple[str, str] | None:
    """DataTables' ES-module bundle as a ``data:`` URL, and its CSS (from the itables package).

    ``None`` (with a warning) when itables is not installed: tables then stay plain.
    """
    try:
        folder = importlib.resources.files("itables") / "html"
        js = (folder / "dt_bundle.js").read_bytes()
        css = (folder / "dt_bundle.css").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        log.warning(
            "report tables stay plain (no search or paging): DataTables could not be loaded "
            "from the itables package (%s); install it with `pip install itables`.",
            exc,
        )
        return None
    # A data: URL keeps the bundle byte-exact (no HTML escaping of script text) and offline.
    # Percent-encoded rather than base64: smaller, and the page keeps no random letter runs
    # (base64 text may contain an entity id, which a scan for other entities' ids rightly flags).
    return "data:text/javascript;charset=utf-8," + urllib.parse.quote(js, safe=_URL_SAFE), css


def _script_json(data: object) -> str:
    """JSON safe to place inside a <script> element (no "</script>" or "<!--" can appear)."""
    text = json.dumps(data, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _datatables(nb: nbformat.NotebookNode, lang: str) -> dict[str, str] | None:
    """What the page template inlines to make marked tables interactive, or ``None``.

    Only pages holding a table that :func:`frame_html` marked get the bundle (about 0.8 MB).
    """
    marked = any(
        _MARK in ("".join(text) if isinstance(text, list) else str(text))
        for cell in nb.cells
        for out in cell.get("outputs", [])
        if (text := out.get("data", {}).get("text/html")) is not None
    )
    bundle = _datatables_bundle() if marked else None
    if bundle is None:
        return None
    url, css = bundle
    language: dict[str, object] = datatables_language(lang)
    language["aria"] = {
        "orderable": t("report.table.dt.orderable", lang),
        "orderableReverse": t("report.table.dt.orderable_reverse", lang),
        "paginate": {
            k: t(f"report.table.dt.{k}", lang) for k in ("first", "previous", "next", "last")
        },
    }
    options = {"pageLength": PAGE_ROWS, "all": t("report.table.dt.all", lang), "language": language}
    return {
        "css": css,
        "importmap": _script_json({"imports": {"perflink-datatables": url}}),
        "options": _script_json(options),
        "script": _TABLES_JS_PATH.read_text(encoding="utf-8"),
    }


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _quarter_text(quarter: object, lang: str) -> str:
    if quarter in (None, ""):
        return ""
    try:
        return fmt_period(str(quarter), lang)
    except ReportError:
        return str(quarter)


_TITLE_ONLY = re.compile(r"\s*# [^\n]*\s*")


def _chart_spec(data: Mapping) -> dict | None:
    """The Vega-Lite spec of an output (the perflink renderer's, or altair's mimetype one)."""
    for mime, value in data.items():
        if _charts_embed.VEGALITE_MIME_RE.match(mime):
            spec = json.loads(value) if isinstance(value, str) else value
            return spec if isinstance(spec, Mapping) else None
    return None


def _chart_box(spec: Mapping, n: int) -> str:
    """A chart's place in the page: its spec as JSON and the box pl_charts.js draws it in.

    The box is empty until the reader's browser lays the chart out (vega-embed, inlined once
    per page), so chart text is measured with the fonts it is drawn with.
    """
    return (
        f'<script type="application/json" id="pl-chart-spec-{n}">'
        f"{_charts_embed.script_json(spec)}</script>\n"
        f'<div class="pl-chart" data-pl-spec="pl-chart-spec-{n}"></div>'
    )


def _clean_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop stderr streams (warnings, progress bars) and output-less code cells; place charts.

    A chart output (a Vega-Lite spec) becomes a box and its spec, drawn in the page by
    vega-embed; its notebook HTML form (which carries a script per chart) is dropped. SVG
    outputs (from other renderers) are inlined without their XML prolog.

    The notebook's own title cell (a leading Markdown cell holding only a ``# ...`` line, for analysts in
    JupyterLab) is dropped too: the page header already shows the task title in the report
    language, and the notebook prints its localised heading itself.
    """
    nb = copy.deepcopy(nb)
    cells = []
    n_charts = 0
    first = next((c for c in nb.cells if c.cell_type != "raw"), None)
    for cell in nb.cells:
        if cell is first and cell.cell_type == "markdown" and _TITLE_ONLY.fullmatch(cell.source):
            continue
        if cell.cell_type == "code":
            outputs = [
                o
                for o in cell.get("outputs", [])
                if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
            ]
            for out in outputs:
                data = out.get("data", {})
                spec = _chart_spec(data)
                if spec is not None:
                    out["data"] = {"text/html": _chart_box(spec, n_charts)}
                    out["metadata"] = {}
                    n_charts += 1
                    continue
                svg = data.get("image/svg+xml")
                if isinstance(svg, list):  # nbformat may store multi-line strings as lists
                    svg = "".join(svg)
                if isinstance(svg, str):
                    data["image/svg+xml"] = _XML_PROLOG.sub("", svg)
            if not outputs:
                continue
            cell.outputs = outputs
        cells.append(cell)
    nb.cells = cells
    nb.metadata["perflink_charts"] = n_charts
    return nb


def _charts(n_charts: int, lang: str) -> dict[str, str] | None:
    """What the page template inlines to draw its charts, or ``None`` for a page without.

    The vega-embed bundle (about 0.9 MB) once per page, the embed options (SVG, no action
    menu, month names in the page language) and pl_charts.js.
    """
    if not n_charts:
        return None
    return {
        "bundle": _charts_embed.bundle(),
        "options": _charts_embed.script_json(_charts_embed.embed_options(lang)),
        "script": _CHARTS_JS_PATH.read_text(encoding="utf-8"),
    }


def render_task_html(executed_nb: Path, out_html: Path, *, language: str, title: str) -> None:
    """Convert an executed task notebook to a self-contained, offline HTML page.

    Code inputs and prompts are hidden, stderr outputs (warnings) are dropped, and the page
    loads nothing from outside the file (no CDN scripts or fonts). Charts (Vega-Lite specs
    written by the perflink renderer) are drawn by the reader's browser with vega-embed,
    inlined once per page that has charts (about 0.9 MB); they print as the SVG on screen.
    The header shows ``title``, the review quarter (from papermill's ``quarter`` parameter,
    if any) and a link back to ``index.html`` in the same folder.

    If an output holds a table :func:`perflink.report.show` marked as interactive (more than
    :data:`~perflink._report_format.PAGE_ROWS` rows), the page inlines DataTables (from the
    ``itables`` package, about 0.8 MB, once per page) and a short script that makes those
    tables searchable, sortable and paginated, with the controls in the page language; when
    printed, every row is shown and the controls are hidden. Other pages carry no script.

    Parameters
    ----------
    executed_nb
        Path of the executed ``.ipynb`` (papermill output).
    out_html
        Where to write the page; written atomically, parent folders created.
    language
        ``"zh"`` or ``"en"``: page language (``<html lang>``) and header labels.
    title
        Page title shown in the header and the browser tab.

    Raises
    ------
    ReportError
        If the notebook is missing or not a valid notebook file.
    ParamsError
        If ``language`` is not supported.
    """
    from nbconvert import HTMLExporter  # heavy import; only needed when rendering

    lang = _check_lang(language)
    executed_nb = Path(executed_nb)
    if not executed_nb.is_file():
        raise ReportError(
            f"render_task_html: notebook {executed_nb} does not exist; run the task first."
        )
    try:
        nb = nbformat.read(executed_nb, as_version=4)
    except Exception as exc:  # nbformat raises several unrelated types for bad files
        raise ReportError(
            f"render_task_html: {executed_nb} is not a readable notebook ({exc})."
        ) from None
    params = nb.metadata.get("papermill", {}).get("parameters", {}) or {}
    exporter = HTMLExporter(
        template_name=TEMPLATE_NAME,
        extra_template_basedirs=[str(TEMPLATES)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        exclude_anchor_links=True,
    )
    resources = {
        "perflink": {
            "html_lang": _HTML_LANG[lang],
            "title": title,
            "quarter": _quarter_text(params.get("quarter"), lang),
            "back": t("report.page.back", lang),
            "css": _css(),
            "version": __version__,
            "datatables": _datatables(nb, lang),
        }
    }
    cleaned = _clean_outputs(nb)
    resources["perflink"]["charts"] = _charts(cleaned.metadata.pop("perflink_charts"), lang)
    body, _ = exporter.from_notebook_node(cleaned, resources=resources)
    _check_offline(body, executed_nb)
    _atomic_write_text(Path(out_html), body)


_REMOTE = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)


class _RemoteFinder(html.parser.HTMLParser):
    """Collect what a page would fetch over the network: src/href/data URLs, import maps.

    A bare tokenizer, not a document tree: pages with thousands of table rows are checked
    in seconds.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.remote: list[str] = []
        self._importmap: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        urls = [attr.get("src")]
        urls += [attr.get("href")] if tag == "link" else []
        urls += [attr.get("data")] if tag == "object" else []
        self.remote += [u for u in urls if u and _REMOTE.match(u)]
        if tag == "script" and (attr.get("type") or "").lower() == "importmap":
            self._importmap = []

    def handle_data(self, data: str) -> None:
        if self._importmap is not None:
            self._importmap.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._importmap is not None:
            # Module imports resolve through import maps: only inline data: modules are offline.
            try:
                imports = json.loads("".join(self._importmap) or "{}").get("imports", {})
            except (json.JSONDecodeError, AttributeError):
                imports = {"importmap": "(unreadable import map)"}
            self.remote += [str(u)[:60] for u in imports.values() if not str(u).startswith("data:")]
            self._importmap = None


def _check_offline(page: str, source: Path) -> None:
    """Refuse a page that would load anything over the network when opened."""
    finder = _RemoteFinder()
    finder.feed(page)
    finder.close()
    remote = finder.remote
    if remote:
        raise ReportError(
            f"render_task_html: {source} has outputs that load {', '.join(remote[:3])} from "
            "the network, so the page would not open offline. Show charts through "
            "perflink.report.show()/configure() (drawn offline by the inlined vega-embed) "
            "and embed images instead of linking them."
        )


def _href(path: object, name: str, out_dir: Path) -> str:
    """Relative, URL-quoted link to a task page (never an absolute or scheme URL)."""
    target = Path(str(path)) if path else Path(f"{name}.html")
    if target.is_absolute():
        target = Path(os.path.relpath(target, out_dir))
    return urllib.parse.quote(target.as_posix())


def _task_title(task: Mapping, lang: str) -> str:
    key = task.get("title_key")
    if key:
        try:
            return t(key, lang)
        except PerflinkError:  # a missing label must not break the landing page
            pass
    return str(task.get("name", ""))


def render_index(run: dict, out_html: Path, *, language: str) -> None:
    """Write the run's landing page (``index.html``) from the run manifest.

    Parameters
    ----------
    run
        Manifest dict with keys ``quarter``, ``status``, ``created_at``, ``finished_at``,
        ``duration_s`` (seconds), ``tasks`` (list of dicts with ``name``, ``html``, ``status``,
        ``duration_s``, ``title_key``), ``inputs`` (list of dicts with ``name``, ``path``,
        ``sha256``, ``bytes`` and optionally ``rows``), ``versions`` (package -> version) and
        ``params`` (redacted). ``quarter``, ``status`` and ``tasks`` are required.
    out_html
        Where to write the page (task links are relative to its folder).
    language
        ``"zh"`` or ``"en"``.

    Raises
    ------
    ReportError
        If a required key is missing or a task has no ``name``.
    """
    lang = _check_lang(language)
    if not isinstance(run, Mapping):
        raise ReportError(f"render_index: run must be the manifest dict, got {type(run).__name__}.")
    missing = [k for k in ("quarter", "status", "tasks") if k not in run]
    if missing:
        raise ReportError(
            f"render_index: run manifest lacks key(s) {', '.join(missing)} "
            f"(has: {', '.join(map(str, run))})."
        )
    out_html = Path(out_html)
    tasks = []
    for i, task in enumerate(run["tasks"] or []):
        if not isinstance(task, Mapping) or not task.get("name"):
            raise ReportError(f"render_index: run['tasks'][{i}] has no 'name': {task!r}.")
        status = str(task.get("status", ""))
        tasks.append(
            {
                "name": str(task["name"]),
                "title": _task_title(task, lang),
                "href": _href(task.get("html"), str(task["name"]), out_html.parent),
                "status": value_label("status", status, lang),
                "status_code": re.sub(r"[^a-z0-9_-]", "", status.lower()),
                "duration": fmt_duration(task.get("duration_s"), lang),
            }
        )
    # Leadership reads the summary first: it leads the page and the task list.
    tasks.sort(key=lambda task: task["name"] != "summary")
    lead = next((x for x in tasks if x["name"] == "summary" and x["href"]), None)
    inputs = [
        {
            "name": item.get("name", ""),
            "path": item.get("path", ""),
            "sha256": item.get("sha256", ""),
            "sha_short": str(item.get("sha256") or "")[:12],
            "bytes": fmt_bytes(item.get("bytes")),
            "rows": f"{item['rows']:,}" if isinstance(item.get("rows"), int) else "",
        }
        for item in run.get("inputs") or []
    ]
    status = str(run["status"])
    labels = {
        k: t(f"report.index.{k}", lang)
        for k in (
            "run", "status", "created_at", "finished_at", "duration", "tasks", "task",
            "inputs", "input_name", "input_path", "sha256", "bytes", "rows", "versions",
            "package", "version", "params", "no_tasks", "lead", "scope", "notes",
        )
    }  # fmt: skip
    params = run.get("params")
    context = {
        "html_lang": _HTML_LANG[lang],
        "title": t("report.index.title", lang),
        "quarter": _quarter_text(run["quarter"], lang),
        "scope": run.get("scope") or "",
        "status": value_label("status", status, lang),
        "status_code": re.sub(r"[^a-z0-9_-]", "", status.lower()),
        "created_at": fmt_timestamp(run.get("created_at"), lang),
        "finished_at": fmt_timestamp(run.get("finished_at"), lang),
        # notebooks run side by side: their times add up to more than the run's
        "overlap": t("report.index.overlap", lang) if len(tasks) > 1 else "",
        "duration": fmt_duration(run.get("duration_s"), lang),
        "tasks": tasks,
        "lead": lead,
        "inputs": inputs,
        # notes about the inputs (rows left out, extra columns, encoding guesses)
        "notes": [
            str((n.get("text") or {}).get(lang) or n.get("message") or "")
            for n in run.get("input_notes") or []
            if isinstance(n, Mapping)
        ],
        "show_rows": any(item["rows"] for item in inputs),
        "versions": sorted((str(k), str(v)) for k, v in (run.get("versions") or {}).items()),
        "params": json.dumps(params, ensure_ascii=False, indent=2, default=str) if params else "",
        "L": labels,
        "css": markupsafe.Markup(_css()),
        "version": __version__,
        "generated_by": t("report.index.generated_by", lang, version=__version__),
    }
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES / TEMPLATE_NAME),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    html_text = env.get_template("run_index.html.j2").render(**context)
    _atomic_write_text(out_html, html_text)
