"""Tables as JupyterLab shows them: paginated, searchable, readable (not API).

:func:`perflink.report.show` uses this when a notebook runs for exploration in JupyterLab (a
kernel, and :func:`perflink.report.configure` given no ``tables_dir``); a report run (papermill
from the runner, ``tables_dir`` set) writes the plain tables its HTML page makes interactive
with its own inlined script (see ``pl_tables.js``).

A table :func:`~perflink._report_format.frame_html` marked interactive (more than
:data:`~perflink._report_format.PAGE_ROWS` rows) gets a short script that makes it a DataTable
with the DataTables bundle of the ``itables`` package, loaded once per kernel session by
``itables.init_notebook_mode(connected=False)``: offline, nothing fetched. perflink's own cells
are kept (localised headers and codes, amounts with units, and ``data-order`` keys, so
"1.23 亿元" sorts above "523.4 万元"). Every table gets a scoped style: short text and amounts
on one line, long text columns a minimum width, so rows are not one character wide.
"""

from __future__ import annotations

import json
import re
import uuid

from perflink._report_format import INTERACTIVE, PAGE_ROWS, datatables_language
from perflink.labels import t

_MARKED = re.compile(r'<table (class="[^"]*") data-pl-table="' + INTERACTIVE + '"')
# JupyterLab's own table style (.jp-RenderedHTMLCommon: fixed layout, every cell wraps) gives
# each column the same width: in a table of many columns, text columns shrank to one
# character per line. Short cells shrink to their
# content (width 1%), so long text columns take the rest. Scoped to .pl-lab outputs.
_STYLE = """<style>
.pl-lab table.pl-table {
  table-layout: auto; border-collapse: collapse; font-variant-numeric: tabular-nums; }
.pl-lab table.pl-table th, .pl-lab table.pl-table td {
  white-space: nowrap; text-align: left; vertical-align: top; padding: 3px 8px; }
.pl-lab table.pl-table td.num, .pl-lab table.pl-table th.num { text-align: right; }
.pl-lab table.pl-table td.pl-wrap { white-space: normal; min-width: 16em; }
.pl-lab table.pl-table td.pl-long { white-space: normal; min-width: 28em; }
.pl-lab table.pl-table td:not(.pl-wrap):not(.pl-long) { width: 1%; }
.pl-lab .pl-appendix-note { display: none; }
</style>"""
# Runs when JupyterLab inserts the output (trusted outputs re-create their scripts). Waits for
# the itables bundle (init_notebook_mode(connected=False) loads it once, asynchronously).
_SCRIPT = """<script type="module">
(async () => {
  const table = document.getElementById(%(id)s);
  if (!table || table.classList.contains("dataTable")) return;
  const key = %(key)s;
  const start = async () => {
    const { default: DataTable } = await window[key];
    const numeric = [], keyed = [];
    table.querySelectorAll("thead th").forEach((th, i) => {
      if (th.dataset.plSort === "num") numeric.push(i);
      else if (th.dataset.plSort === "key") keyed.push(i);
    });
    new DataTable(table, Object.assign(%(options)s, {
      columnDefs: [{ targets: numeric, type: "num" }, { targets: keyed, type: "string" }],
    }));
  };
  if (window[key]) start();
  else window.addEventListener(%(event)s, start, { once: true });
})();
</script>"""
_session = {"itables_loaded": False}


def in_kernel() -> bool:
    """Whether this runs in a Jupyter kernel (JupyterLab, papermill), not a plain Python."""
    try:
        from IPython import get_ipython
    except ImportError:  # IPython comes with ipykernel; a bare install may lack it
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def _itables_names() -> tuple[str, str]:
    """The window property holding itables' bundle and the event saying it is loaded."""
    from itables import __version__

    return f"_itables_{re.sub(r'[.-]', '_', __version__)}", f"itables-{__version__}-ready"


def load_itables() -> None:
    """Load itables' DataTables bundle into the notebook once per kernel session (offline)."""
    if _session["itables_loaded"]:
        return
    import itables

    # all_interactive=False: pandas keeps its own repr; only perflink's tables are paged.
    itables.init_notebook_mode(all_interactive=False, connected=False)
    _session["itables_loaded"] = True


def _options(lang: str) -> dict:
    language: dict[str, object] = datatables_language(lang)
    return {
        "pageLength": PAGE_ROWS,
        "lengthMenu": [10, PAGE_ROWS, 100, {"label": t("report.table.dt.all", lang), "value": -1}],
        "order": [],  # keep perflink's order (worst first) until a click
        "autoWidth": False,
        "scrollX": True,  # a wide table scrolls inside its output, its rows stay one line high
        "language": language,
    }


def _json(data: object) -> str:
    """JSON safe inside a <script> element."""
    text = json.dumps(data, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def lab_html(html_text: str, *, lang: str) -> str:
    """``html_text`` (tables from frame_html) as JupyterLab should show it.

    Adds the scoped style, and for each table marked interactive an id and the script that
    pages it; the caller loads itables' bundle first (:func:`load_itables`) when
    :func:`has_interactive` says the output holds such a table.
    """
    key, event = _itables_names()
    scripts: list[str] = []
    options = _json(_options(lang))

    def _mark(match: re.Match) -> str:
        table_id = f"pl-lab-{uuid.uuid4().hex[:12]}"
        scripts.append(
            _SCRIPT
            % {"id": _json(table_id), "key": _json(key), "event": _json(event), "options": options}
        )
        return f'<table id="{table_id}" {match.group(1)} data-pl-table="{INTERACTIVE}"'

    body = _MARKED.sub(_mark, html_text)
    return f'<div class="pl-lab">{_STYLE}{body}{"".join(scripts)}</div>'


def has_interactive(html_text: str) -> bool:
    """Whether ``html_text`` holds a table frame_html marked interactive."""
    return _MARKED.search(html_text) is not None
