"""Raw source-system extracts for the sample group (``perflink sample-data DIR --raw``).

Writes line-level Parquet files under ``raw/<source>/part-NNNNN.parquet`` that aggregate,
through the bundled ``catalog/raw.yaml``, to exactly the facts the sample reports:

* ``contract_lines`` (CRM): signed contract lines, tax-inclusive, in 元 with ``vat_rate``;
  plus cancelled and draft lines that the catalog's ``where`` leaves out;
* ``shipment_lines`` (WMS): shipped quantities in 件;
* ``gl_lines`` (ERP-FI): revenue credits on accounts 6001/6051 in 元, plus receivable, output
  VAT and cost-of-sales postings outside the revenue account range;
* ``collection_lines`` (TMS): cash received per customer, without the unit: the catalog finds
  the unit through ``customers`` (CRM customer master) by ``customer_id``.

Each unit-month value (rounded as in ``facts.csv``) is split into lines of random sizes in
whole fen (or whole pieces), with the rounding remainder on the last line, so the lines sum
exactly to the fact.

The planted caliber problem (P01): one subsidiary's units report contract amounts ×1.13 in
the facts. Their CRM records those contracts with ``vat_rate`` 0 — the tax-inclusive amount
booked as if untaxed — so the catalog's ex-tax computation reproduces the (wrong) facts; the
raw lines show where the caliber problem comes from (``vat_rate = 0`` on taxable sales).

Files are written per chunk of units, so memory stays bounded however many lines there are.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["RAW_METRICS", "write_raw"]

#: metric -> (source, hundredths of a line unit per metric unit, split step in hundredths).
#: Lines are in 元 (money, metric in 万元) or 件; amounts are split in fen / whole pieces.
RAW_METRICS = {
    "new_contract_amount": ("contract_lines", 1_000_000, 1),
    "shipped_qty": ("shipment_lines", 100, 100),
    "revenue": ("gl_lines", 1_000_000, 1),
    "cash_collected": ("collection_lines", 1_000_000, 1),
}
VAT_RATE = 0.13
_CUSTOMERS = 8  # customers per unit
_SKUS = pa.array([f"SKU-{i:04d}" for i in range(24)])
_ACCOUNTS = pa.array(["6001", "6051", "1122", "2221", "6401"])  # revenue, other revenue, noise
_STATUS = pa.array(["signed", "cancelled", "draft"])


def write_raw(
    out: Path,
    values: Mapping[str, np.ndarray],
    ids: np.ndarray,
    periods: pd.PeriodIndex,
    *,
    vat_units: np.ndarray,
    seed: int,
    lines: float = 6.0,
    chunk_units: int = 256,
) -> int:
    """Write the raw extracts under ``out/raw``; return the number of lines written.

    Parameters
    ----------
    out : the sample folder (``raw/`` is created inside).
    values : metric -> (units, months) array of the facts' values (rounded as written;
        NaN = not reported) for the metrics of :data:`RAW_METRICS`.
    ids : entity ids of the units (rows of ``values``).
    periods : the months (columns of ``values``).
    vat_units : bool per unit: contracts booked with ``vat_rate`` 0 (the caliber problem).
    seed : random seed; the same seed gives the same files.
    lines : mean number of lines per unit-month and metric.
    chunk_units : units per written file (bounds memory).
    """
    ids = np.asarray(ids, dtype=object)
    month_start = periods.to_timestamp().values.astype("datetime64[D]")
    days = np.asarray(periods.days_in_month)
    total = 0
    for chunk, a in enumerate(range(0, len(ids), chunk_units)):
        b = min(a + chunk_units, len(ids))
        rng = np.random.default_rng([seed, 4, chunk])
        ent = pa.array(list(ids[a:b]), pa.string())
        cust = pa.array([f"{e}-C{j:02d}" for e in ids[a:b] for j in range(_CUSTOMERS)], pa.string())
        ctx = _Chunk(a, ent, cust, month_start, days, rng)
        tables = {
            "customers": pa.table(
                {
                    "customer_id": cust,
                    "entity_id": ent.take(np.repeat(np.arange(b - a), _CUSTOMERS)),
                    "segment": pa.array(
                        np.where(np.arange((b - a) * _CUSTOMERS) % 3 == 0, "key", "regular")
                    ),
                }
            )
        }
        for metric, (source, scale, step) in RAW_METRICS.items():
            arr = values.get(metric)
            if arr is None:
                continue
            block = arr[a:b]
            r, c = np.nonzero(~np.isnan(block))
            amounts = np.round(block[r, c] * scale).astype(np.int64)
            k = 1 + rng.poisson(max(lines - 1.0, 0.0), len(r))
            cell = np.repeat(np.arange(len(r)), k)
            alloc = _split(amounts, k, step, rng)
            maker = _MAKERS[source]
            tables[source] = maker(ctx, r[cell], c[cell], alloc / 100.0, vat_units)
        for source, table in tables.items():
            folder = out / "raw" / source
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, folder / f"part-{chunk:05d}.parquet")
            if source != "customers":
                total += table.num_rows
    return total


class _Chunk:
    def __init__(self, first, ent, cust, month_start, days, rng):
        self.first, self.ent, self.cust = first, ent, cust
        self.month_start, self.days, self.rng = month_start, days, rng

    def dates(self, c: np.ndarray) -> pa.Array:
        offset = (self.rng.random(len(c)) * self.days[c]).astype("timedelta64[D]")
        return pa.array(self.month_start[c] + offset)

    def line_ids(self, r: np.ndarray, salt: int) -> np.ndarray:
        # unique across chunks and sources: unit number, source salt, running number
        return (self.first + r) * 10**9 + salt * 10**8 + np.arange(len(r))

    def customers(self, r: np.ndarray) -> pa.Array:
        return self.cust.take(r * _CUSTOMERS + self.rng.integers(0, _CUSTOMERS, len(r)))


def _split(amounts: np.ndarray, k: np.ndarray, step: int, rng: np.random.Generator) -> np.ndarray:
    """Split each amount into ``k`` random parts (multiples of ``step``) summing exactly."""
    n = int(k.sum())
    cell = np.repeat(np.arange(len(k)), k)
    w = rng.random(n) + 0.25
    share = w / np.bincount(cell, w, minlength=len(k))[cell]
    alloc = (np.floor(share * amounts[cell] / step) * step).astype(np.int64)
    ends = np.cumsum(k)
    alloc[ends - 1] += amounts - np.add.reduceat(alloc, ends - k) if n else 0
    return alloc


def _contracts(ctx: _Chunk, r, c, yuan, vat_units) -> pa.Table:
    rng = ctx.rng
    extra = rng.binomial(len(r), 0.05)  # cancelled and draft lines, left out by 'where'
    pick = rng.integers(0, len(r), extra) if len(r) else np.zeros(0, int)
    r2, c2 = np.r_[r, r[pick]], np.r_[c, c[pick]]
    amount = np.r_[yuan, np.round(rng.uniform(1e3, 5e5, extra), 2)]
    status = np.r_[np.zeros(len(r), int), rng.integers(1, 3, extra)]
    untaxed = vat_units[ctx.first + r2]
    vat = np.where(untaxed, 0.0, VAT_RATE)
    incl = np.round(amount * (1 + vat), 2)
    ids = ctx.line_ids(r2, 1)
    return pa.table(
        {
            "line_id": ids,
            "contract_id": ids // 3,
            "customer_id": ctx.customers(r2),
            "entity_id": ctx.ent.take(r2),
            "signed_date": ctx.dates(c2),
            "status": _STATUS.take(status),
            "amount_incl_tax": incl,
            "vat_rate": vat,
        }
    )


def _shipments(ctx: _Chunk, r, c, qty, vat_units) -> pa.Table:
    return pa.table(
        {
            "line_id": ctx.line_ids(r, 2),
            "entity_id": ctx.ent.take(r),
            "ship_date": ctx.dates(c),
            "sku": _SKUS.take(ctx.rng.integers(0, len(_SKUS), len(r))),
            "qty": qty,
        }
    )


def _gl(ctx: _Chunk, r, c, yuan, vat_units) -> pa.Table:
    rng = ctx.rng
    account = np.where(rng.random(len(r)) < 0.9, 0, 1)  # 6001 main, 6051 other revenue
    extra = rng.binomial(len(r), 0.3)  # receivable, output VAT and cost postings
    pick = rng.integers(0, len(r), extra) if len(r) else np.zeros(0, int)
    noise = np.round(rng.uniform(100, 2e5, extra), 2)
    side = rng.random(extra) < 0.5
    r2, c2 = np.r_[r, r[pick]], np.r_[c, c[pick]]
    return pa.table(
        {
            "line_id": ctx.line_ids(r2, 3),
            "entity_id": ctx.ent.take(r2),
            "posting_date": ctx.dates(c2),
            "account": _ACCOUNTS.take(np.r_[account, rng.integers(2, 5, extra)]),
            "debit": np.r_[np.maximum(-yuan, 0.0), np.where(side, noise, 0.0)],
            "credit": np.r_[np.maximum(yuan, 0.0), np.where(side, 0.0, noise)],
        }
    )


def _collections(ctx: _Chunk, r, c, yuan, vat_units) -> pa.Table:
    return pa.table(
        {
            "line_id": ctx.line_ids(r, 4),
            "customer_id": ctx.customers(r),
            "received_date": ctx.dates(c),
            "amount": yuan,
        }
    )


_MAKERS = {
    "contract_lines": _contracts,
    "shipment_lines": _shipments,
    "gl_lines": _gl,
    "collection_lines": _collections,
}
