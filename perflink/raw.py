"""Facts from raw source-system extracts, aggregated in DuckDB.

A catalog may define business or finance metrics as aggregations over raw line-level
extracts (contract lines, shipment lines, GL lines, ...) in an optional ``raw.yaml`` (see
:mod:`perflink._raw_catalog` for the format and the checks on its SQL fragments).
:func:`aggregate_raw` runs those aggregations in DuckDB directly over the Parquet files,
grouped by entity and month, so the raw lines never enter pandas: only the monthly facts do.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from perflink._raw_catalog import RawCatalog, RawMetric, RawSource
from perflink.catalog import Catalog
from perflink.errors import CatalogError, InputError

__all__ = ["aggregate_raw"]

log = logging.getLogger("perflink.raw")

_FACT_COLUMNS = ["entity_id", "period", "metric_id", "value", "source_system", "source_ref"]


def aggregate_raw(
    catalog: Catalog,
    base_dir: str | Path,
    *,
    months: Iterable[pd.Period | str] | pd.Period | str | None = None,
    metrics: Iterable[str] | None = None,
    con=None,
) -> pd.DataFrame:
    """Compute the catalog's raw-defined metrics from Parquet extracts, per entity and month.

    Each metric of ``raw.yaml`` becomes one DuckDB query
    ``SELECT entity, month, SUM(value) ... WHERE <where> GROUP BY entity, month`` over its
    source files (optionally joined to another source to find the entity), so memory is
    bounded by DuckDB, not by the number of lines.

    Parameters
    ----------
    catalog : a catalog with a ``raw.yaml`` (``catalog.raw`` not None).
    base_dir : folder the sources' ``path`` globs are relative to (the sample's folder).
    months : keep these months only: an iterable of monthly periods or ``YYYY-MM`` strings,
        or one period of any frequency (``pd.Period("2026Q3", "Q")`` = its three months).
        None (default) keeps every month in the files.
    metrics : ids of the raw metrics to compute (default: all of ``raw.yaml``).
    con : a ``duckdb`` connection to run on (e.g. one attached to the source database);
        default: a private in-memory connection, closed afterwards.

    Returns
    -------
    DataFrame in the facts contract: ``entity_id`` str, ``period`` Period[M], ``metric_id``
    str, ``value`` float64 (the metric's unit, rounded to the metric's ``decimals``),
    ``source_system`` (the source's system) and ``source_ref`` (``"<source>:<n> lines"``).
    Sorted by entity, period, metric.

    Raises
    ------
    CatalogError
        The catalog has no ``raw.yaml`` or does not define a requested metric.
    InputError
        A source has no files, lacks a declared column, or has lines whose entity or date is
        missing (or whose join key matches no row, or several entities); a SQL fragment fails
        on the data (e.g. a text column in arithmetic).
    """
    import duckdb

    raw = catalog.raw
    if raw is None:
        where = catalog.source or "the catalog"
        raise CatalogError(
            f"{where} has no raw.yaml: it defines no metrics over raw extracts; add raw.yaml "
            "or load the aggregated facts instead"
        )
    chosen = [raw.metric(m) for m in metrics] if metrics is not None else list(raw.metrics)
    month_list = _months(months)
    base = Path(base_dir)
    own = con is None
    con = duckdb.connect() if own else con
    try:
        globs: dict[str, str] = {}
        for m in chosen:
            for name in (m.source, m.join.source) if m.join else (m.source,):
                if name not in globs:
                    globs[name] = _source_glob(con, base, name, raw.sources[name])
        frames = [_aggregate(con, raw, m, globs, month_list) for m in chosen]
    finally:
        if own:
            con.close()
    frames = [f for f in frames if len(f)]
    if not frames:
        from perflink.io import empty_table

        return empty_table("facts")
    facts = pd.concat(frames, ignore_index=True)
    facts["period"] = pd.PeriodIndex(facts["period"], freq="M")
    facts = facts.sort_values(["entity_id", "period", "metric_id"], kind="stable")
    return facts.reset_index(drop=True)[_FACT_COLUMNS]


def _months(months: object) -> list[pd.Period] | None:
    if months is None:
        return None
    try:
        if isinstance(months, (str, pd.Period)):
            p = months if isinstance(months, pd.Period) else pd.Period(months)
            out = list(pd.period_range(p.start_time, p.end_time, freq="M"))
        else:
            out = sorted({pd.Period(m, "M") for m in months})
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"aggregate_raw: months={months!r} is not a month list or a period: {exc}"
        ) from None
    if not out:
        raise InputError("aggregate_raw: months is empty; pass None for every month")
    return out


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _source_glob(con, base: Path, name: str, source: RawSource) -> str:
    """Absolute glob of the source's files, after checking they exist and have the columns."""
    import duckdb

    files = sorted(base.glob(source.path))
    if not files:
        raise InputError(
            f"raw source {name}: no files match {source.path!r} under {base}; write the "
            "extracts there (e.g. `perflink sample-data DIR --raw`) or fix 'path' in raw.yaml"
        )
    pattern = str(base.resolve() / source.path)
    try:
        described = con.execute(
            f"DESCRIBE SELECT * FROM read_parquet({_sql_str(pattern)})"
        ).fetchall()
    except duckdb.Error as exc:
        raise InputError(
            f"raw source {name}: cannot read {pattern}: {str(exc).splitlines()[0]}"
        ) from None
    have = {row[0] for row in described}
    missing = [c for c in source.columns if c not in have]
    if missing:
        raise InputError(
            f"raw source {name} ({pattern}): column(s) {missing} declared in raw.yaml are not "
            f"in the files, which have {sorted(have)}"
        )
    return pattern


def _aggregate(
    con, raw: RawCatalog, m: RawMetric, globs: dict[str, str], months: list[pd.Period] | None
) -> pd.DataFrame:
    import duckdb

    source = raw.sources[m.source]
    date = f'CAST(src."{m.date}" AS DATE)'
    value = f"SUM(CAST(({m.value}) AS DOUBLE))"
    if m.decimals is not None:
        value = f"ROUND({value}, {m.decimals})"
    conditions = [f"({m.where})"] if m.where else []
    if months is not None:
        first, last = months[0].start_time.date(), (months[-1] + 1).start_time.date()
        conditions.append(f"{date} >= DATE '{first}' AND {date} < DATE '{last}'")
        if len(months) != (months[-1] - months[0]).n + 1:  # not contiguous
            listed = ", ".join(f"DATE '{p.start_time.date()}'" for p in months)
            conditions.append(f"date_trunc('month', {date}) IN ({listed})")
    join = ""
    entity = f'src."{m.entity}"'
    if m.join:
        _check_join_key(con, m, globs[m.join.source])
        join = (
            f'LEFT JOIN (SELECT DISTINCT "{m.join.key}", "{m.entity}" AS __perflink_entity '
            f"FROM read_parquet({_sql_str(globs[m.join.source])})) AS dim "
            f'USING ("{m.join.key}")'
        )
        entity = "dim.__perflink_entity"
    sql = (
        f"SELECT CAST({entity} AS VARCHAR) AS entity_id, "
        f"strftime(date_trunc('month', {date}), '%Y-%m') AS period, "
        f"{value} AS value, COUNT(*) AS n_lines "
        f"FROM read_parquet({_sql_str(globs[m.source])}) AS src {join} "
        + (f"WHERE {' AND '.join(conditions)} " if conditions else "")
        + "GROUP BY ALL"
    )
    try:
        out = con.execute(sql).df()
    except duckdb.Error as exc:
        raise InputError(
            f"raw metric {m.metric_id} (source {m.source}): the query failed on the data: "
            f"{str(exc).splitlines()[0]}; check 'value'/'where' in raw.yaml against the "
            "column types"
        ) from None
    lost = out["entity_id"].isna() | out["period"].isna()
    if lost.any():
        n = int(out.loc[lost, "n_lines"].sum())
        why = (
            f"no {m.entity} (or a {m.join.key} not found in source {m.join.source})"
            if m.join
            else f"no {m.entity}"
        )
        raise InputError(
            f"raw metric {m.metric_id}: {n} line(s) of source {m.source} have {why} or no "
            f"{m.date}; fix the extract so every line has an entity and a date"
        )
    log.debug("raw metric %s: %d lines", m.metric_id, int(out["n_lines"].sum()))
    return pd.DataFrame(
        {
            "entity_id": out["entity_id"].astype("str"),
            "period": out["period"].astype("str"),
            "metric_id": m.metric_id,
            "value": out["value"].astype("float64"),
            "source_system": source.system,
            "source_ref": m.source + ":" + out["n_lines"].astype("int64").astype("str") + " lines",
        }
    )


def _check_join_key(con, m: RawMetric, pattern: str) -> None:
    """Each join key must name one entity, or the join would count lines twice."""
    assert m.join is not None
    rows = con.execute(
        f'SELECT CAST("{m.join.key}" AS VARCHAR) FROM read_parquet({_sql_str(pattern)}) '
        f'GROUP BY 1 HAVING COUNT(DISTINCT "{m.entity}") > 1 ORDER BY 1 LIMIT 5'
    ).fetchall()
    if rows:
        keys = ", ".join(str(r[0]) for r in rows)
        raise InputError(
            f"raw metric {m.metric_id}: in source {m.join.source}, {m.join.key} {keys} belong "
            f"to more than one {m.entity}; each key must name one entity for the join"
        )
