"""Table-level checks of the data contract (private to :mod:`perflink.io`).

Each check takes the converted table, the positions of rows whose cells failed to parse (so
they are not reported twice), and adds messages to a :class:`~perflink._io_parse.Problems`.
"""

from __future__ import annotations

import json
from collections.abc import Collection

import numpy as np
import pandas as pd

from perflink._io_parse import KEYS, Problems, suggest


def _positions_by_value(values: pd.Series, mask: np.ndarray) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i in np.flatnonzero(mask):
        groups.setdefault(str(values.iat[i]), []).append(int(i))
    return groups


def _fmt(v: object) -> str:
    return "(none)" if pd.isna(v) else str(v)


def check_duplicates(df: pd.DataFrame, kind: str, bad: pd.DataFrame, problems: Problems) -> None:
    """Rows repeating the key of the table (see ``KEYS``); names all their row numbers."""
    keys = list(KEYS.get(kind, ()))
    if not keys:
        return
    sub = df.loc[~bad[keys].any(axis=1).to_numpy(), keys]
    dup = sub[sub.duplicated(keep=False)]
    if dup.empty:
        return
    for key, grp in dup.groupby(keys, dropna=False, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        pos = grp.index.tolist()
        what = ", ".join(f"{k}={_fmt(v)}" for k, v in zip(keys, key, strict=True))
        problems.add(
            f"{problems.locate(pos)}: duplicate {kind} row ({what}) appears {len(pos)} times. "
            "Keep one row (or correct the key).",
            pos[0],
        )


def check_known(
    df: pd.DataFrame,
    column: str,
    known: Collection[str] | None,
    what: str,
    fix: str,
    bad: pd.DataFrame,
    problems: Problems,
) -> None:
    """Values of ``column`` must be in ``known`` (empty cells are skipped)."""
    if known is None or column not in df:
        return
    known_set = set(known)
    values = df[column]
    mask = ~bad[column].to_numpy() & values.notna().to_numpy() & ~values.isin(known_set).to_numpy()
    for value, pos in _positions_by_value(values, mask).items():
        problems.add_group(
            pos, column, f"'{value}' is not {what}{suggest(value, known_set)}. {fix}"
        )


def check_period_range(
    df: pd.DataFrame,
    period_range: tuple[pd.Period, pd.Period] | None,
    bad: pd.DataFrame,
    problems: Problems,
) -> None:
    """``period`` within ``period_range`` (facts, adjustments); ``year`` within its years."""
    if period_range is None:
        return
    start, end = period_range
    if "year" in df:
        years = df["year"]
        mask = ~bad["year"].to_numpy() & ((years < start.year) | (years > end.year)).to_numpy()
        for value, pos in _positions_by_value(years, mask).items():
            problems.add_group(
                pos,
                "year",
                f"year {value} is outside the review years {start.year}-{end.year}. "
                "Fix the year (a typo?) or remove these rows; a review accepts years within "
                "inputs_window_years of its quarter (review params).",
            )
        return
    periods = df["period"]
    mask = periods.notna().to_numpy() & ((periods < start) | (periods > end)).to_numpy()
    for value, pos in _positions_by_value(periods, mask).items():
        problems.add_group(
            pos,
            "period",
            f"period {value} is outside the review range {start} to {end}. "
            "Fix the period (a typo?) or remove these rows; a review accepts periods within "
            "inputs_window_years of its quarter (review params).",
        )


def check_entities(df: pd.DataFrame, bad: pd.DataFrame, problems: Problems) -> None:
    """One name per row, one group root, parents exist, no cycles, centre type on departments."""
    table = problems.table
    _check_names(df, problems)
    bad_kind = bad["kind"].to_numpy()
    kind, parent, center = df["kind"], df["parent_id"], df["center_type"]
    is_group = (kind == "group").to_numpy()
    groups = np.flatnonzero(is_group)
    if len(groups) != 1:
        where = ", ".join(table.where(i) for i in groups) or "none found"
        problems.add(
            f"{table.label}: there must be exactly one row with kind 'group' (the root); "
            f"found {len(groups)} ({where}). Keep one group row and give the others kind "
            "'subsidiary'.",
            int(groups[1]) if len(groups) > 1 else None,
        )
    has_parent = parent.notna().to_numpy()
    problems.add_rows(
        np.flatnonzero(is_group & has_parent),
        "parent_id",
        "{value} is set on the group row; the group is the root. Leave parent_id empty.",
    )
    problems.add_rows(
        np.flatnonzero(~is_group & ~has_parent & ~bad_kind),
        "parent_id",
        "is empty; every subsidiary and department needs its parent entity_id.",
    )
    ids = set(df["entity_id"].dropna())
    missing = has_parent & ~parent.isin(ids).to_numpy()
    for value, pos in _positions_by_value(parent, missing).items():
        problems.add_group(
            pos,
            "parent_id",
            f"'{value}' is not an entity_id in this table{suggest(value, ids)}. "
            "Add the parent row or fix the id.",
        )
    is_dept = (kind == "department").to_numpy()
    problems.add_rows(
        np.flatnonzero(is_dept & center.isna().to_numpy()),
        "center_type",
        "is empty; departments need one of profit, cost, functional.",
    )
    problems.add_rows(
        np.flatnonzero(~is_dept & ~bad_kind & center.notna().to_numpy()),
        "center_type",
        "{value} is set on a group/subsidiary row; only departments have a centre type. "
        "Leave it empty.",
    )
    _check_cycles(df, problems)


def _check_names(df: pd.DataFrame, problems: Problems) -> None:
    """``name_zh`` or ``name_en``: either may be empty, not both (pages fall back to the other)."""
    unnamed = (df["name_zh"].isna() & df["name_en"].isna()).to_numpy()
    if len(df) and unnamed.all():
        problems.add(
            f"{problems.table.label}: no entity has a name; add a column 'name_en' (English "
            "names) or 'name_zh' (Chinese names), or both, and fill it on every row."
        )
        return
    for i in np.flatnonzero(unnamed):
        problems.add(
            f"{problems.table.where(int(i))}, columns 'name_zh' and 'name_en': both are empty; "
            "give the entity a name in at least one of them (the report shows the other "
            "language's name where one is missing).",
            int(i),
        )


def _check_cycles(df: pd.DataFrame, problems: Problems) -> None:
    parent_of = {
        e: p for e, p in zip(df["entity_id"], df["parent_id"], strict=True) if isinstance(p, str)
    }
    pos_of = {e: i for i, e in enumerate(df["entity_id"])}
    reported: set[str] = set()
    for start in parent_of:
        seen: list[str] = []
        node: str | None = start
        while node in parent_of and node not in seen:
            seen.append(node)
            node = parent_of[node]
        if node in seen and node not in reported:
            cycle = seen[seen.index(node) :]
            reported.update(cycle)
            chain = " -> ".join([*cycle, node])
            problems.add(
                f"{problems.table.where(pos_of[node])}, column 'parent_id': the parent chain "
                f"loops ({chain}). Fix parent_id so every chain ends at the group row.",
                pos_of[node],
            )


def check_targets(df: pd.DataFrame, bad: pd.DataFrame, problems: Problems) -> None:
    """A monthly target's period must lie in its ``year``."""
    period = df["period"]
    has = period.notna().to_numpy() & ~bad["year"].to_numpy()
    mismatch = np.zeros(len(df), dtype=bool)
    if has.any():
        mismatch[has] = period[has].dt.year.to_numpy() != df["year"].to_numpy()[has]
    for i in np.flatnonzero(mismatch):
        problems.add(
            f"{problems.table.where(int(i))}, column 'period': period {period.iat[i]} is not in "
            f"year {df['year'].iat[i]}. Fix the year or the period (empty period = annual target).",
            int(i),
        )


def check_schemes(df: pd.DataFrame, bad: pd.DataFrame, problems: Problems) -> None:
    """``floor <= cap``; ``rule_params`` is empty or a JSON object."""
    floor, cap = df["floor"].to_numpy(), df["cap"].to_numpy()
    with np.errstate(invalid="ignore"):
        inverted = floor > cap
    for i in np.flatnonzero(inverted):
        problems.add(
            f"{problems.table.where(int(i))}, column 'floor': floor {floor[i]:g} is above cap "
            f"{cap[i]:g}. Swap them or fix one.",
            int(i),
        )
    for i, text in enumerate(df["rule_params"]):
        if not isinstance(text, str):
            continue
        try:
            ok = isinstance(json.loads(text), dict)
        except json.JSONDecodeError:
            ok = False
        if not ok:
            problems.add_rows(
                [i],
                "rule_params",
                '{value} is not a JSON object; write e.g. {{"steps": [0.9, 1.0]}} or leave it empty.',
            )
