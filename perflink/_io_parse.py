"""Column specs, value parsers and problem collection (private to :mod:`perflink.io`)."""

from __future__ import annotations

import calendar
import difflib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from perflink._io_read import RawTable
from perflink.errors import InputError

MAX_SHOWN = 20
_MAX_KEPT = 2000  # problems kept for sorting by row; all are counted

ENTITY_KINDS = ("group", "subsidiary", "department")
CENTER_TYPES = ("profit", "cost", "functional")
TARGET_KINDS = ("budget", "assessment")
CATEGORIES = ("financial", "business", "management")
RULES = ("linear", "step", "threshold")


@dataclass(frozen=True)
class Col:
    """One column of the data contract.

    ``type``: ``str`` (text), ``number`` (float64), ``period`` (Period[M]), ``year`` (int64).
    ``column_required``: the header must have it (else it is added, all missing).
    ``value_required``: every row needs a non-empty value. ``allowed``: permitted values.
    """

    name: str
    type: str = "str"
    column_required: bool = True
    value_required: bool = True
    allowed: tuple[str, ...] | None = None


SPECS: dict[str, tuple[Col, ...]] = {
    "entities": (
        Col("entity_id"),
        # One name is enough (a company with English names only): see check_entities.
        Col("name_zh", column_required=False, value_required=False),
        Col("name_en", column_required=False, value_required=False),
        Col("parent_id", value_required=False),
        Col("kind", allowed=ENTITY_KINDS),
        Col("center_type", value_required=False, allowed=CENTER_TYPES),
        Col("business_line", column_required=False, value_required=False),
        Col("manager", column_required=False, value_required=False),
    ),
    "facts": (
        Col("entity_id"),
        Col("period", "period"),
        Col("metric_id"),
        Col("value", "number"),
        Col("source_system"),
        Col("source_ref", column_required=False, value_required=False),
    ),
    "targets": (
        Col("entity_id"),
        Col("year", "year"),
        Col("period", "period", value_required=False),
        Col("metric_id"),
        Col("target", "number"),
        Col("kind", allowed=TARGET_KINDS),
    ),
    "schemes": (
        Col("scheme_id"),
        Col("center_type", allowed=CENTER_TYPES),
        Col("entity_id", value_required=False),
        Col("metric_id"),
        Col("weight", "number"),
        Col("category", allowed=CATEGORIES),
        Col("rule", allowed=RULES),
        Col("floor", "number", column_required=False, value_required=False),
        Col("cap", "number", column_required=False, value_required=False),
        Col("rule_params", column_required=False, value_required=False),
    ),
    "adjustments": (
        Col("entity_id"),
        Col("period", "period"),
        Col("metric_id"),
        Col("amount", "number"),
        Col("reason"),
        Col("approved_by"),
    ),
    "bonus": (
        Col("entity_id"),
        Col("year", "year"),
        Col("base_bonus", "number"),
        Col("pool_budget", "number", value_required=False),
    ),
}

KEYS: dict[str, tuple[str, ...]] = {
    "entities": ("entity_id",),
    "facts": ("entity_id", "period", "metric_id"),
    "targets": ("entity_id", "year", "period", "metric_id", "kind"),
    "schemes": ("scheme_id", "entity_id", "metric_id"),
    "bonus": ("entity_id", "year"),
}

_NUMBER = re.compile(r"[+-]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_PLAIN = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"  # ASCII, no thousands separator
_PERIOD_PATTERNS = (
    # no '.' separator: Excel turns 2026.10 into the number 2026.1, which would read as January
    re.compile(r"(?P<y>\d{4})[-/](?P<m>\d{1,2})"),
    re.compile(r"(?P<y>\d{4})(?P<m>\d{2})"),
    re.compile(r"(?P<y>\d{4})年(?P<m>\d{1,2})月"),
    re.compile(r"(?P<y>\d{4})[-/](?P<m>\d{1,2})[-/](?P<d>\d{1,2})(?: 00:00:00)?"),
)
_NAT = np.iinfo(np.int64).min


class Problems:
    """Collects problems in one table; shows the first :data:`MAX_SHOWN`, counts all."""

    def __init__(self, table: RawTable, kind: str) -> None:
        self.table, self.kind = table, kind
        self.lines: list[tuple[tuple[str, int], str]] = []
        self.count = 0

    def add(self, line: str, pos: int | None = None) -> None:
        """Record one problem; ``pos`` (data row position) orders the report by row."""
        self.count += 1
        if len(self.lines) < _MAX_KEPT:
            key = ("", 0) if pos is None else (self.table.sources[pos], int(self.table.rows[pos]))
            self.lines.append((key, line))

    def add_rows(self, positions: Iterable[int], column: str, message: str) -> None:
        """One problem per row; ``message`` may use ``{value}`` for the raw cell."""
        raw = self.table.frame.get(column)
        for i in positions:
            value = "" if raw is None else raw.iat[i]
            self.add(
                f"{self.table.where(i)}, column '{column}': " + message.format(value=repr(value)),
                int(i),
            )

    def locate(self, positions: list[int]) -> str:
        """``'facts.csv rows 5, 17'`` for several data rows (first five shown)."""
        rows = [int(self.table.rows[i]) for i in positions]
        src = sorted({self.table.sources[i] for i in positions})
        word = self.table.row_word + ("s" if len(rows) > 1 else "")
        more = f" (+{len(rows) - 5} more)" if len(rows) > 5 else ""
        return f"{', '.join(src)} {word} {', '.join(map(str, rows[:5]))}{more}"

    def add_group(self, positions: list[int], column: str, message: str) -> None:
        """One problem for several rows sharing the same bad value."""
        self.add(f"{self.locate(positions)}, column '{column}': {message}", positions[0])

    def raise_if_any(self) -> None:
        if not self.count:
            return
        more = f" (showing the first {MAX_SHOWN})" if self.count > MAX_SHOWN else ""
        head = (
            f"{self.table.label}: {self.count} problem(s) in the {self.kind} table{more}. "
            "Fix them in the source file and load again:"
        )
        shown = [line for _, line in sorted(self.lines, key=lambda kl: kl[0])[:MAX_SHOWN]]
        raise InputError("\n".join([head, *("  " + line for line in shown)]))


def suggest(value: str, known: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest known value, or ``""``."""
    close = difflib.get_close_matches(value, list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _map_unique(s: pd.Series, fn) -> np.ndarray:
    """``fn`` applied to each distinct value only (ids and months repeat a lot)."""
    codes, uniques = pd.factorize(s.astype(object), use_na_sentinel=False)
    return np.asarray([fn(u) for u in uniques], dtype=object)[codes]


def _nfkc(v: str) -> str:
    # NFKC folds full-width digits and punctuation typed with a Chinese IME (１２３，．) to ASCII.
    return v if v.isascii() else unicodedata.normalize("NFKC", v)


def _normalize(s: pd.Series) -> pd.Series:
    return pd.Series(_map_unique(s, _nfkc), index=s.index, dtype=object)


def parse_number(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Parse strings to float64. Returns ``(values, bad)``; empty cells are NaN, not bad.

    Accepts ``1234.5``, ``-1,234.5`` (comma = thousands separator), ``1e6`` and full-width digits.
    """
    # Fast path: plain ASCII numbers (nearly every cell of a big table) parse in one vectorised
    # call; only the rest (empty, thousands separators, full-width digits, junk) is checked
    # cell by cell. A plain number is one the pattern accepts too, so both paths agree.
    values = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan, copy=True)
    plain = np.isfinite(values) & s.str.fullmatch(_PLAIN).to_numpy(dtype=bool, na_value=False)
    values[~plain] = np.nan
    bad = np.zeros(len(s), dtype=bool)
    rest = np.flatnonzero(~plain)
    if len(rest):
        values[rest], bad[rest] = _parse_number_slow(s.iloc[rest])
    return values, bad


def _parse_number_slow(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    norm = _normalize(s)
    empty = (norm == "").to_numpy()
    ok = _map_unique(norm, lambda v: v == "" or _NUMBER.fullmatch(v) is not None).astype(bool)
    values = np.full(len(s), np.nan)
    good = ok & ~empty
    if good.any():
        values[good] = pd.to_numeric(norm[good].str.replace(",", "", regex=False)).to_numpy(
            dtype=float
        )
    bad = ~ok | (good & ~np.isfinite(values))
    return values, bad


def number_hint(value: str) -> str:
    if "%" in value:
        return " Rates are fractions: write 0.95, not 95%."
    text = value.strip()
    # a number with a unit or currency around it: "1,200万元", "12 kUSD", "$5", "¥300"
    if re.match(r"^[$¥€£]?\s*-?[\d.,]+\s*[^\d\s.,]", text) or re.match(r"^[$¥€£]\s*[\d.,]+$", text):
        return (
            " Write a plain number in the metric's catalog unit (metrics.yaml 'unit'), without "
            "unit words or currency signs."
        )
    return ""


def _period_ordinal(v: str) -> int | None:
    """Monthly ordinal of one normalized cell; ``_NAT`` for empty, ``None`` if not a month."""
    if v == "":
        return _NAT
    for pat in _PERIOD_PATTERNS:
        m = pat.fullmatch(v)
        if m:
            y, mo = int(m["y"]), int(m["m"])
            day = int(m["d"]) if "d" in pat.groupindex else 1
            if 1 <= mo <= 12 and 1 <= day <= calendar.monthrange(y, mo)[1]:
                return (y - 1970) * 12 + mo - 1
    return None


def parse_period(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Parse strings to monthly Period ordinals. Returns ``(ordinals, bad)``; empty -> NaT.

    Accepts ``2026-09``, ``2026/09``, ``202609``, ``2026年9月`` and a date in the month
    (``2026-09-01``, ``2026-09-30``, Excel date cells).
    """
    parsed = _map_unique(_normalize(s), _period_ordinal)
    bad = np.array([p is None for p in parsed], dtype=bool)
    parsed[bad] = _NAT
    return parsed.astype(np.int64), bad


def periods_from_ordinals(ordinals: np.ndarray) -> pd.Series:
    return pd.Series(pd.PeriodIndex.from_ordinals(ordinals, freq="M"))


def parse_year(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Parse 4-digit years (1900-2100) to int64. Returns ``(values, bad)``; empty is bad."""
    norm = _normalize(s)
    ok = norm.str.fullmatch(r"\d{4}").fillna(False).to_numpy(dtype=bool)
    values = np.zeros(len(s), dtype=np.int64)
    values[ok] = norm[ok].astype(int).to_numpy()
    ok = ok & (values >= 1900) & (values <= 2100)
    return values, ~ok
