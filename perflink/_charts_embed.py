"""Charts drawn by the reader's browser: the perflink altair renderer and the vega-embed bundle.

Not API: :func:`perflink.charts.enable_renderer` enables the renderer (``report.configure``
calls it); :mod:`perflink._report_html` inlines the bundle once in each page that has charts.

Why the browser and not a server-side SVG: vl-convert measures text with the fonts of the
machine that runs the review, so a review run without CJK fonts sized Chinese labels too small
and a reader's browser then cut their first characters. vega-embed lays the chart out where it
is read, with the reader's fonts, and keeps tooltips (and zoom on time series) working.
Nothing is fetched: the bundle (vega, vega-lite, vega-embed; about 0.9 MB) comes from
vl-convert, which bundles the same versions altair writes specs for.
"""

from __future__ import annotations

import copy
import json
import math
import re
import subprocess
import sys
import threading
import uuid
from typing import Any

from perflink.errors import PerflinkError

RENDERER_NAME = "perflink"
#: Output mime type the renderer writes the spec under (altair's own: Vega-Lite 6).
VEGALITE_MIME = "application/vnd.vegalite.v6+json"
#: Any Vega-Lite spec output, whatever version wrote it.
VEGALITE_MIME_RE = re.compile(r"^application/vnd\.vegalite\.v\d+\+json$")
_TIME_LOCALES = {"zh": "zh-CN", "en": "en-US"}
# Marks a chart draws a series with: these get zoom and pan on a continuous x axis.
_SERIES_MARKS = {"line", "area", "trail", "point", "circle", "square"}
_ZOOM_PREFIX = "pl_zoom"
_ZOOM_PADDING = 8  # pixels
_POINT_MARKS = {"point", "circle", "square"}

_lock = threading.Lock()
_state: dict[str, Any] = {"bundle": None, "inline_bundle": True, "lang": "zh"}


def _vl_version(vl_convert) -> str | None:
    """The Vega-Lite version altair writes specs for (``"6.4"``), if vl-convert bundles it."""
    import altair as alt

    wanted = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    return wanted if wanted in vl_convert.get_vegalite_versions() else None


#: Builds the bundle in a child process: vl-convert bundles in a V8 engine that keeps about
#: 120 MB for the rest of the process that ran it, and ``perflink review`` renders every page
#: in its own process while the notebooks run.
_BUILD = (
    "import sys, vl_convert; "
    "sys.stdout.buffer.write(vl_convert.javascript_bundle(vl_version=sys.argv[1] or None)"
    ".encode('utf-8'))"
)
_BUILD_TIMEOUT_S = 300


def bundle() -> str:
    """vega + vega-lite + vega-embed as one classic script (vl-convert; built once per process,
    in a child process: see :data:`_BUILD`).

    Building it takes a second or more, so it is cached; the lock keeps the runner's page
    threads from building it twice.

    Raises
    ------
    PerflinkError
        If vl-convert is not installed, fails, or returns a script that cannot be inlined.
    """
    with _lock:
        if _state["bundle"] is None:
            try:
                import vl_convert
            except ModuleNotFoundError as exc:  # a dependency, but say what to do if it is gone
                raise PerflinkError(
                    "Charts need the vega-embed bundle from vl-convert: install it with "
                    "`pip install vl-convert-python`."
                ) from exc
            version = _vl_version(vl_convert) or ""
            try:
                done = subprocess.run(
                    [sys.executable, "-c", _BUILD, version],
                    capture_output=True, check=True, timeout=_BUILD_TIMEOUT_S,
                )  # fmt: skip
            except (OSError, subprocess.SubprocessError) as exc:
                detail = getattr(exc, "stderr", None) or b""
                last = detail.decode("utf-8", "replace").strip().splitlines()[-1:] or [str(exc)]
                raise PerflinkError(
                    f"vl-convert could not build the charts' vega-embed bundle ({last[0]}); "
                    "reinstall it with `pip install --force-reinstall vl-convert-python`."
                ) from exc
            text = done.stdout.decode("utf-8")
            # Inlined in a <script> element: a "</script" or "<!--" would end or hide it.
            if re.search(r"</script|<!--", text, flags=re.IGNORECASE):
                raise PerflinkError(
                    "The vl-convert javascript bundle holds '</script' or '<!--' and cannot be "
                    "inlined in a page; pin vl-convert-python to a version that works."
                )
            _state["bundle"] = text
        return _state["bundle"]


def time_locale(lang: str) -> dict:
    """d3 time-format locale of the report language (month and day names)."""
    import vl_convert

    return vl_convert.get_time_format_locale(_TIME_LOCALES[lang])


def embed_options(lang: str, extra: dict | None = None) -> dict:
    """vega-embed options for a report chart: SVG, no action menu, month names in ``lang``.

    ``extra`` (altair's ``set_embed_options``) is merged over them; a locale given by name
    (``"zh-CN"``) is replaced by its definition, which vega-embed needs.
    """
    opts: dict[str, Any] = {"renderer": "svg", "actions": False, "timeFormatLocale": lang}
    opts.update(extra or {})
    for key, get in (("timeFormatLocale", "get_time_format_locale"), ("formatLocale", None)):
        value = opts.get(key)
        if isinstance(value, str):
            import vl_convert

            code = _TIME_LOCALES.get(value, value)
            if get is None:
                opts[key] = vl_convert.get_format_locale(code)
            else:
                opts[key] = vl_convert.get_time_format_locale(code)
    return opts


def _is_series(unit: dict) -> bool:
    mark = unit.get("mark")
    mark_type = mark.get("type") if isinstance(mark, dict) else mark
    x = (unit.get("encoding") or {}).get("x")
    if mark_type not in _SERIES_MARKS or not isinstance(x, dict) or x.get("bin"):
        return False
    return x.get("type") == "temporal" or bool(x.get("timeUnit"))


def _has_scale_binding(spec: object) -> bool:
    text = json.dumps(spec)
    return '"bind": "scales"' in text


def _views(spec: dict):
    """Each view that owns its x scale: a unit, a layer, or the inner spec of a facet."""
    if "facet" in spec and isinstance(spec.get("spec"), dict):
        yield from _views(spec["spec"])
    elif "layer" in spec or "mark" in spec:
        yield spec
    for key in ("hconcat", "vconcat", "concat"):
        for sub in spec.get(key) or []:
            if isinstance(sub, dict):
                yield from _views(sub)


def with_zoom(spec: dict) -> dict:
    """A copy of ``spec`` whose time-series views zoom and pan along x (wheel, drag).

    A view qualifies when a line/area/point layer has a temporal x; bar charts, ordinal
    periods (``"2026-09"`` as text) and charts that already bind a selection to scales are
    left alone. The selection is an interval bound to the x scale, so it draws nothing and the
    printed chart is the one shown first. Marks of a zoomable view are clipped to the plot, so
    point marks are left unclipped and a y scale not drawn from zero gets a few pixels of
    padding.
    """
    if not isinstance(spec, dict) or _has_scale_binding(spec) or "repeat" in spec:
        return spec
    out = copy.deepcopy(spec)
    n = 0
    for view in _views(out):
        units = [u for u in view.get("layer", [view]) if isinstance(u, dict)]
        target = next((u for u in units if "mark" in u and _is_series(u)), None)
        if target is None:
            continue
        # Zooming clips marks to the plot. Points (often the flagged month a chart is about)
        # stay unclipped so one on the edge shows whole; a y axis not drawn from zero gets a
        # few pixels of padding. No padding on x: a tick inside it has its label drawn
        # past the chart's edge.
        for unit in units:
            mark = unit.get("mark")
            if (mark.get("type") if isinstance(mark, dict) else mark) in _POINT_MARKS:
                unit["mark"] = {"type": mark, "clip": False} if isinstance(mark, str) else mark
                unit["mark"].setdefault("clip", False)
        enc = target["encoding"].get("y")
        if isinstance(enc, dict) and enc.get("type") == "quantitative":
            scale = enc.get("scale", {})
            if isinstance(scale, dict) and scale.get("zero") is False:
                enc.setdefault("scale", {}).setdefault("padding", _ZOOM_PADDING)
        target.setdefault("params", []).append(
            {
                "name": f"{_ZOOM_PREFIX}_{n}",
                "select": {"type": "interval", "encodings": ["x"]},
                "bind": "scales",
            }
        )
        n += 1
    return out if n else spec


def finite(data: object) -> object:
    """``data`` with every NaN or infinite float replaced by ``None`` (JSON ``null``).

    A chart's data may hold missing values altair passes through; JSON (and a browser's
    ``JSON.parse``) has no NaN.
    """
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite(v) for v in data]
    return data


def script_json(data: object) -> str:
    """JSON safe inside a <script> element (no "</script>" or "<!--" can appear)."""
    text = json.dumps(finite(data), ensure_ascii=False, allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# Runs inside a JupyterLab / classic notebook output. The bundle's top-level names are kept in
# a function scope so that a second output (or a re-run cell) does not redeclare them.
_OUTPUT_JS = """(function () {
  var box = document.currentScript && document.currentScript.previousElementSibling;
  if (!box) return;
  %(bundle)s
  if (!window.vegaEmbed) return;
  box.textContent = "";
  window.vegaEmbed(box, %(spec)s, %(opts)s).then(function () {
    box.dataset.plDrawn = "1";  // laid out (sized to its labels): tests wait for it
  }, function (err) {
    box.textContent = String(err);
    console.error("perflink chart:", err);
  });
})();"""
_BUNDLE_JS = "if (!window.vegaEmbed) { (function () {\n%s\n}).call(window); }"


def output_html(spec: dict, opts: dict, *, inline_bundle: bool) -> str:
    """HTML of one chart output in a notebook: a ``pl-chart`` box and the script that draws it.

    With ``inline_bundle`` the output carries the vega-embed bundle (JupyterLab works offline
    and a saved notebook redraws its charts); without it the chart draws only where the page
    already loaded vega-embed (report runs: the HTML page inlines the bundle once).
    """
    # Shown where scripts do not run (an untrusted notebook in JupyterLab); JupyterLab has no
    # page language, so both.
    note = "运行此单元格或信任此笔记本以显示图表 / Run the cell or trust the notebook to draw this chart."
    js = _OUTPUT_JS % {
        "bundle": _BUNDLE_JS % bundle() if inline_bundle else "",
        "spec": script_json(spec),
        "opts": script_json(opts),
    }
    box_id = f"pl-chart-{uuid.uuid4().hex[:12]}"
    return f'<div class="pl-chart" id="{box_id}">{note}</div>\n<script>\n{js}\n</script>'


def renderer(spec: dict, **metadata: Any) -> tuple[dict, dict]:
    """The altair renderer: the Vega-Lite spec (with zoom on time series) and an HTML output.

    The mime bundle holds ``application/vnd.vegalite.v6+json`` (what the HTML report draws,
    once per page with one bundle) and ``text/html`` (what JupyterLab draws: JupyterLab 4
    renders Vega-Lite up to v5 only, and altair's own html renderer loads vega from a CDN).
    """
    spec = finite(with_zoom(spec))
    opts = embed_options(_state["lang"], metadata.get("embed_options"))
    html = output_html(spec, opts, inline_bundle=_state["inline_bundle"])
    data = {VEGALITE_MIME: spec, "text/html": html, "text/plain": "<perflink chart>"}
    return data, {VEGALITE_MIME: {"embed_options": opts}}


def enable(*, lang: str, inline_bundle: bool) -> None:
    """Register and enable the renderer (see :func:`perflink.charts.enable_renderer`)."""
    import altair as alt

    if lang not in _TIME_LOCALES:
        raise PerflinkError(f"charts: language must be 'zh' or 'en', got {lang!r}.")
    _state["lang"] = lang
    _state["inline_bundle"] = bool(inline_bundle)
    alt.renderers.register(RENDERER_NAME, renderer)
    alt.renderers.enable(RENDERER_NAME)
