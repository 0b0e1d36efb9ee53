"""perflink: link business data, financial results and performance assessment.

What analysts call from JupyterLab is re-exported here; submodules (``perflink.mapping``,
``perflink.kpi``, ``perflink.forecast``, ``perflink.anomaly``, ``perflink.report`` ...) load on
first attribute access, so ``import perflink`` stays fast.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from perflink._version import __version__

# jsonschema (imported by altair) registers its "iri" format checks from rfc3987_syntax when
# that is installed, and importing it compiles a Lark grammar: 0.9 s of CPU in every kernel
# of a review (five, on a 2-core machine). The Vega-Lite schema altair validates against
# uses no iri format, so the import is skipped: a None entry in sys.modules makes `import
# rfc3987_syntax` raise ImportError, which jsonschema handles by leaving those checks out.
# See benchmarks/review_bench.py for the effect on a review's wall time.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

_EXPORTS = {
    "open_review": "perflink.review",
    "Review": "perflink.review",
    "load_params": "perflink.params",
    "ReviewParams": "perflink.params",
    "run_review": "perflink.runner",
    "RunResult": "perflink.runner",
    "load_catalog": "perflink.catalog",
    "load_inputs": "perflink.io",
    "read_table": "perflink.io",
    "attribute": "perflink.kpi",
    "forecast_series": "perflink.forecast",
    "detect_series": "perflink.anomaly",
    "PerflinkError": "perflink.errors",
}
_SUBMODULES = frozenset(
    {
        "anomaly",
        "catalog",
        "charts",
        "execution",
        "forecast",
        "formula",
        "io",
        "kpi",
        "labels",
        "mapping",
        "options",
        "panel",
        "params",
        "report",
        "review",
        "runner",
        "sample",
        "scoring",
        "summary",
    }
)

__all__ = [  # noqa: RUF022 — same order as _EXPORTS
    "__version__",
    "open_review",
    "Review",
    "load_params",
    "ReviewParams",
    "run_review",
    "RunResult",
    "load_catalog",
    "load_inputs",
    "read_table",
    "attribute",
    "forecast_series",
    "detect_series",
    "PerflinkError",
]

if TYPE_CHECKING:
    from perflink.anomaly import detect_series
    from perflink.catalog import load_catalog
    from perflink.errors import PerflinkError
    from perflink.forecast import forecast_series
    from perflink.io import load_inputs, read_table
    from perflink.kpi import attribute
    from perflink.params import ReviewParams, load_params
    from perflink.review import Review, open_review
    from perflink.runner import RunResult, run_review


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"perflink.{name}")
    else:
        raise AttributeError(f"module 'perflink' has no attribute {name!r}")
    globals()[name] = value
    return value
