"""Rename every metric id, entity id and business line of a generated input folder, run the
review's tasks in-process, and compare two sets of result tables with the ids mapped back.

Used by ``tests/test_metamorphic.py``. Not a test module itself.

The new names are opaque (``qm01``, ``QE001``, ``qbl1``: nothing a package could recognise)
and keep the sort order of the old ones, so that a table sorted by id, or a tie broken by id,
lists the same rows in the same order: a difference then means the code looked at a name,
not that two equal figures swapped places.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

#: Catalog fields whose values are the product's own vocabulary or free text, never a metric
#: reference (``role: headcount`` names a role, not the metric ``headcount``).
VOCABULARY_KEYS = frozenset(
    {
        "role",
        "unit",
        "direction",
        "category",
        "check",
        "scope",
        "severity",
        "source_system",
        "system",
        "owner",
        "frequency",
        "name_zh",
        "name_en",
        "definition",
        "caliber",
        "description",
        "mechanism",
        "path",
        "columns",
        "where",
        "value",
        "entity",
        "date",
        "key",
        "source",
    }
)

#: Input-table columns holding an id of each kind.
ENTITY_COLUMNS = ("entity_id", "parent_id")
METRIC_COLUMNS = ("metric_id",)
LINE_COLUMNS = ("business_line",)

#: Result columns that are hashes of ids (``perflink.summary.finding_id``: task, kind, entity
#: and metric or rule id): renaming changes every value by design. They are compared as a
#: one-to-one correspondence (the same findings merged or kept apart), not by value.
HASHED_COLUMNS = frozenset({"finding_id"})

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Renaming:
    """Old id -> new id, per kind, and the way back."""

    metrics: dict[str, str]
    entities: dict[str, str]
    lines: dict[str, str]

    @property
    def back(self) -> dict[str, str]:
        """Every new id -> its old id (the three kinds never share a new name)."""
        out: dict[str, str] = {}
        for mapping in (self.metrics, self.entities, self.lines):
            out.update({new: old for old, new in mapping.items()})
        return out

    def back_pattern(self) -> re.Pattern[str]:
        """Matches a new id as a token: not inside a longer word or number (``qm07_z`` is
        ``qm07`` then ``_z``; ``QE0011`` is not ``QE001``)."""
        alts = "|".join(sorted(map(re.escape, self.back), key=len, reverse=True))
        return re.compile(rf"(?<![A-Za-z0-9])({alts})(?![A-Za-z0-9])")

    def entity_pattern(self) -> re.Pattern[str]:
        """Matches an old entity id as a token (in document references such as
        ``CRM-S01D01-202301-02``)."""
        alts = "|".join(sorted(map(re.escape, self.entities), key=len, reverse=True))
        return re.compile(rf"(?<![A-Za-z0-9])({alts})(?![A-Za-z0-9])")


def _order_preserving(ids: list[str], prefix: str, width: int) -> dict[str, str]:
    return {old: f"{prefix}{i:0{width}d}" for i, old in enumerate(sorted(ids), start=1)}


def plan(folder: Path) -> Renaming:
    """The renaming of the generated input folder ``folder`` (catalog + entities table)."""
    metrics_doc = yaml.safe_load((folder / "catalog" / "metrics.yaml").read_text("utf-8"))
    metric_ids = [m["id"] for m in metrics_doc["metrics"]]
    entities = pd.read_csv(folder / "entities.csv", dtype=str, keep_default_na=False)
    entity_ids = entities["entity_id"].tolist()
    lines = sorted({b for b in entities["business_line"] if b})
    assert len(metric_ids) < 100 and len(entity_ids) < 1000 and len(lines) < 10
    return Renaming(
        metrics=_order_preserving(metric_ids, "qm", 2),
        entities=_order_preserving(entity_ids, "QE", 3),
        lines=_order_preserving(lines, "qbl", 1),
    )


def _rename_expr(text: str, metrics: dict[str, str]) -> str:
    # Formulas, decompositions, rule sides and 'wmean:<metric>': every identifier that is a
    # metric id is renamed; functions (lag, sum, max, abs) and numbers are left alone.
    return _IDENT.sub(lambda m: metrics.get(m.group(0), m.group(0)), text)


def _rename_catalog_node(node, metrics: dict[str, str], key: str | None = None):
    if isinstance(node, dict):
        return {
            metrics.get(k, k) if isinstance(k, str) else k: _rename_catalog_node(v, metrics, k)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rename_catalog_node(v, metrics, key) for v in node]
    if isinstance(node, str) and key not in VOCABULARY_KEYS:
        return _rename_expr(node, metrics)
    return node


def _rename_params_node(node, ren: Renaming, key: str | None = None):
    # Options name metrics, entities and business lines by their exact id; free text
    # (reason, ...) and the input paths are left alone.
    if isinstance(node, dict):
        return {k: _rename_params_node(v, ren, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_rename_params_node(v, ren, key) for v in node]
    if isinstance(node, str) and key not in {"reason", "quarter", "language", "catalog"}:
        for mapping in (ren.metrics, ren.entities, ren.lines):
            if node in mapping:
                return mapping[node]
    return node


def rename_folder(src: Path, dst: Path, ren: Renaming) -> Path:
    """Copy the generated folder ``src`` to ``dst`` with every id renamed; return the params.

    Catalog YAML files (every ``*.yaml`` of ``catalog/``): metric ids, and every identifier
    that is a metric id in the other fields except :data:`VOCABULARY_KEYS`. Input tables
    (every ``*.csv``): the id columns, and entity ids inside other text (document
    references). Params: every value that is exactly an id. Values are copied as text, so
    every figure is byte-identical.
    """
    shutil.copytree(src, dst)
    for path in sorted((dst / "catalog").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text("utf-8"))
        doc = _rename_catalog_node(doc, ren.metrics)
        path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), "utf-8")
    in_text = ren.entity_pattern()
    for path in sorted(dst.glob("*.csv")):
        raw = path.read_bytes()
        bom = raw.startswith(b"\xef\xbb\xbf")
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        for col in df.columns:
            if col in ENTITY_COLUMNS:
                mapping = ren.entities
            elif col in METRIC_COLUMNS:
                mapping = ren.metrics
            elif col in LINE_COLUMNS:
                mapping = ren.lines
            else:
                df[col] = df[col].map(lambda v: in_text.sub(lambda m: ren.entities[m[1]], v))
                continue
            unknown = sorted(set(df[col]) - set(mapping) - {""})
            assert not unknown, f"{path.name}.{col}: ids {unknown[:5]} not in the renaming"
            df[col] = df[col].map(lambda v, m=mapping: m.get(v, v))
        df.to_csv(path, index=False, encoding="utf-8-sig" if bom else "utf-8", lineterminator="\n")
    params = dst / "params.yaml"
    doc = yaml.safe_load(params.read_text("utf-8"))
    params.write_text(
        yaml.safe_dump(_rename_params_node(doc, ren), allow_unicode=True, sort_keys=False),
        "utf-8",
    )
    return params


# ---------------------------------------------------------------- running the tasks


def run_tasks(params: Path, tables_dir: Path) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Run every task in-process the way the notebooks do; return the saved tables and the
    tasks that failed.

    The calls and table names are those of notebooks/01..05 (the summary reads the other
    tasks' tables from ``tables_dir``, as in a ``perflink review`` run). A task that raises
    is recorded (task -> error and the package line that raised it) and the next task runs,
    so one run shows every failure.
    """
    import perflink
    from perflink.report import save_table

    review = perflink.open_review(params, tables_dir=tables_dir)
    errors: dict[str, str] = {}
    for task, step in _STEPS.items():
        try:
            step(review, save_table)
        except Exception as exc:  # recorded and reported by the test, with its place
            errors[task] = f"{type(exc).__name__}: {exc} (raised at {_package_frame(exc)})"
    tables = {p.stem: pd.read_parquet(p) for p in sorted(tables_dir.glob("*.parquet"))}
    return tables, errors


def _package_frame(exc: BaseException) -> str:
    """file:line of the innermost frame of the traceback inside perflink/."""
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/perflink/" in f.filename]
    if not frames:
        return "outside perflink"
    f = frames[-1]
    return f"{f.filename[f.filename.rindex('/perflink/') + 1 :]}:{f.lineno}"


def _mapping(review, save_table) -> None:
    import perflink.mapping

    result = perflink.mapping.run(review)
    save_table(result.to_frame(), "validation_findings", findings=True)
    save_table(result.drivers.to_frame(), "driver_strength")
    save_table(result.quality.to_frame(), "data_quality")


def _kpi(review, save_table) -> None:
    import perflink.kpi
    import perflink.scoring

    decomposition = perflink.kpi.run(review)
    scores = perflink.scoring.run(review, decomposition=decomposition)
    managers = perflink.scoring.assess_managers_review(review, scores)
    save_table(decomposition.to_frame(), "attribution")
    save_table(scores.to_frame(), "scorecard")
    save_table(scores.bonus, "bonus")
    save_table(scores.tenure, "tenure")
    save_table(managers.to_frame(), "manager_assessment", findings=True)
    save_table(scores.audit, "adjustment_audit")
    save_table(scores.findings, "kpi_findings", findings=True)


def _forecast(review, save_table) -> None:
    import perflink.forecast

    result = perflink.forecast.run(review)
    save_table(result.to_frame(), "forecast")
    save_table(result.deviation.to_frame(), "forecast_deviation", findings=True)
    backtest = perflink.forecast.backtest(review)
    save_table(backtest.to_frame(), "forecast_backtest")
    save_table(backtest.calibration, "forecast_backtest_calibration")


def _anomaly(review, save_table) -> None:
    import perflink.anomaly

    result = perflink.anomaly.run(review)
    save_table(result.to_frame(), "anomalies", findings=True)
    save_table(result.counts.to_frame(), "anomaly_counts")


def _summary(review, save_table) -> None:
    import perflink.summary

    result = perflink.summary.run(review)
    save_table(result.to_frame(), "summary_findings", findings=True)
    save_table(result.actions.to_frame(), "summary_actions", findings=True)
    save_table(result.loop.to_frame(), "summary_forecast_review")


#: Task -> the notebook's calls and saved tables, in run order (the summary last).
_STEPS = {
    "mapping": _mapping,
    "kpi": _kpi,
    "forecast": _forecast,
    "anomaly": _anomaly,
    "summary": _summary,
}


# ---------------------------------------------------------------- comparing the tables


def _map_text(value, pattern: re.Pattern[str], back: dict[str, str]):
    if isinstance(value, str):
        return pattern.sub(lambda m: back[m[1]], value)
    return value


def mapped_back(df: pd.DataFrame, ren: Renaming) -> pd.DataFrame:
    """``df`` of the renamed run with every new id (in cells, column names and the index)
    replaced by the old one."""
    pattern, back = ren.back_pattern(), ren.back
    out = _flat(df)
    out.columns = [_map_text(str(c), pattern, back) for c in out.columns]
    for col in out.columns:
        if not _is_number(out[col]):
            out[col] = out[col].map(lambda v: _map_text(v, pattern, back))
    return out


def _flat(df: pd.DataFrame) -> pd.DataFrame:
    """A named index becomes columns; every index becomes 0..n-1."""
    named = df.index.name is not None or isinstance(df.index, pd.MultiIndex)
    return df.reset_index() if named else df.reset_index(drop=True)


def _is_number(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _canonical(df: pd.DataFrame) -> pd.DataFrame:
    out = _flat(df)
    out.columns = [str(c) for c in out.columns]
    keys = [c for c in out.columns if not _is_number(out[c])]
    nums = [c for c in out.columns if _is_number(out[c])]
    order = pd.DataFrame(
        {
            **{f"k{i}": out[c].astype(str) for i, c in enumerate(keys)},
            # numbers break ties only, rounded so that last-bit noise cannot reorder rows
            **{f"n{i}": out[c].astype(float).round(6) for i, c in enumerate(nums)},
        }
    )
    idx = order.sort_values(list(order.columns), kind="stable", na_position="last").index
    result = out.loc[idx].reset_index(drop=True)
    result.attrs["order"] = list(idx)  # original row positions, to align the hashed columns
    return result


def _plain(v) -> str:
    return repr(v.item() if isinstance(v, np.generic) else v)


def _shown(row: pd.Series) -> str:
    return ", ".join(f"{k}={_plain(v)}" for k, v in row.items())


def table_difference(
    name: str, original: pd.DataFrame, renamed: pd.DataFrame, ren: Renaming, *, rtol: float
) -> str | None:
    """None when the renamed run's table, mapped back, equals the original; else one
    sentence naming the table, the column and the first differing row of each."""
    original, renamed = _flat(original), _flat(renamed)
    hashed_a = original.loc[:, [c for c in original.columns if c in HASHED_COLUMNS]]
    hashed_b = renamed.loc[:, [c for c in renamed.columns if c in HASHED_COLUMNS]]
    a = _canonical(original.drop(columns=list(hashed_a.columns)))
    b = _canonical(mapped_back(renamed.drop(columns=list(hashed_b.columns)), ren))
    if list(a.columns) != list(b.columns):
        return f"{name}: columns differ: original {list(a.columns)} vs renamed {list(b.columns)}"
    if len(a) != len(b):
        only_a = a.merge(b, how="left", indicator=True).query("_merge == 'left_only'")
        only_b = b.merge(a, how="left", indicator=True).query("_merge == 'left_only'")
        first = (
            f"first row only in the original: {_shown(only_a.iloc[0].drop('_merge'))}"
            if len(only_a)
            else f"first row only in the renamed run: {_shown(only_b.iloc[0].drop('_merge'))}"
            if len(only_b)
            else "rows repeat a different number of times"
        )
        return f"{name}: {len(a)} rows in the original, {len(b)} in the renamed run; {first}"
    problems = []
    for col in hashed_a.columns:
        if col not in hashed_b.columns:
            problems.append(f"{name}.{col}: missing in the renamed run")
            continue
        x = hashed_a[col].astype(str).to_numpy()[a.attrs["order"]]
        y = hashed_b[col].astype(str).to_numpy()[b.attrs["order"]]
        pairs, nx, ny = len(set(zip(x, y, strict=True))), len(set(x)), len(set(y))
        if not pairs == nx == ny:
            problems.append(
                f"{name}.{col}: the renamed run groups rows differently ({nx} distinct values "
                f"in the original, {ny} renamed, {pairs} pairs)"
            )
    for col in a.columns:
        x, y = a[col], b[col]
        if _is_number(x) and _is_number(y):
            xf, yf = x.astype(float).to_numpy(), y.astype(float).to_numpy()
            same = np.isclose(xf, yf, rtol=rtol, atol=rtol, equal_nan=True)
        else:
            same = (x.astype(str) == y.astype(str)).to_numpy() | (x.isna() & y.isna()).to_numpy()
        if not same.all():
            i = int(np.flatnonzero(~same)[0])
            problems.append(
                f"{name}.{col}: {int((~same).sum())} of {len(a)} rows differ; first at sorted "
                f"row {i}: original {_plain(x.iloc[i])} vs renamed {_plain(y.iloc[i])} (original row: "
                f"{_shown(a.iloc[i])})"
            )
    return "\n".join(problems) or None
