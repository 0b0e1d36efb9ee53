"""Injection benchmark for perflink.anomaly.detect_series on the M3 monthly series.

Data: the train part of every series in ``m3_monthly_dev.csv`` (714 odd-numbered
monthly M3 series, 48-126 points), from ``<repo>/../shared/data/m3_dev`` or the
folder in env ``PERFLINK_M3_DIR``.

Injection (fixed seed, same positions / signs for every K):

- one anomaly per series, half spikes and half level shifts (random assignment
  of exactly half), at a uniformly random point in the last two thirds;
- size K x noise sd, with noise sd = 1.4826 x MAD of the lag-12 differences / sqrt(2);
  sign random; a shift persists to the end of the series.

Scoring, per detector, kind and K:

- a spike is found when its point is flagged; a shift when any of its first three
  points (those inside the series) is flagged: these are the *credited* points;
- false alarms = flags on the injected series at points that are not credited
  (genuine outliers of the real series count here too);
- precision = found / (found + false alarms); F1 from precision and recall;
- flag rate = flags per 100 points on the same series *without* injection.

Detectors: ``detect_series`` at its default operating point (``flag_rate`` = 1 flag
per 100 points), and two baselines measured in the same run: robust z of the lag-12
differences (|z| > 3.5, flag at the later point of each difference) and robust STL
residuals (statsmodels STL, robust=True, |z| > 5, z = (r - median) / (1.4826 MAD)).

The curve: ``detect_series`` at each ``flag_rate`` of ``CURVE_RATES`` (the params'
``anomaly.flag_rate``), with the measured flags per 100 uninjected points and the recall
by kind at K = 3, 4, 6; the chosen operating point is marked.  The same curve follows
for the 378 M3 quarterly development series (``m3_quarterly_dev.csv``, injection size
from the lag-4 differences), which have their own tail tables.  ``--tails`` prints the
tail tables of ``perflink/anomaly/_rates.py`` (flags per 100 points at each threshold)
for the two halves of the series (even / odd position), so their agreement shows.

Run from the repository root::

    .venv/bin/python benchmarks/anomaly_bench.py            # all 714 series
    .venv/bin/python benchmarks/anomaly_bench.py --limit 100
    .venv/bin/python benchmarks/anomaly_bench.py --tails

Also prints the time per series of detect_series and of detect_frame on a
synthetic panel of equal-length series.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from perflink.anomaly import detect_frame, detect_series  # noqa: E402

SEED = 20261122
KS = (3.0, 4.0, 6.0)
SEASON = 12
CURVE_RATES = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
OPERATING_RATE = 1.0


def _data_dir() -> Path:
    env = os.environ.get("PERFLINK_M3_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared/data/m3_dev"


def load_series(limit: int | None, freq: str = "M") -> list[np.ndarray]:
    name = "m3_monthly_dev.csv" if freq == "M" else "m3_quarterly_dev.csv"
    df = pd.read_csv(_data_dir() / name)
    df = df[df["split"] == "train"].sort_values(["series_id", "t"])
    order = sorted(df["series_id"].unique(), key=lambda s: int(s[1:]))
    if limit:
        order = order[:limit]
    groups = {k: g["value"].to_numpy(float) for k, g in df.groupby("series_id")}
    return [groups[k] for k in order]


def noise_sd(y: np.ndarray, season: int = SEASON) -> float:
    d = y[season:] - y[:-season]
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2))


def plan_injections(
    series: list[np.ndarray], rng: np.random.Generator, season: int = SEASON
) -> list[dict]:
    n_s = len(series)
    kinds = np.array(["spike"] * (n_s // 2) + ["shift"] * (n_s - n_s // 2))
    rng.shuffle(kinds)
    plans = []
    for y, kind in zip(series, kinds, strict=True):
        n = len(y)
        pos = int(rng.integers(int(np.ceil(n / 3)), n))
        sign = float(rng.choice([-1.0, 1.0]))
        plans.append({"kind": str(kind), "pos": pos, "sign": sign, "sd": noise_sd(y, season)})
    return plans


def inject(y: np.ndarray, plan: dict, k: float) -> tuple[np.ndarray, np.ndarray]:
    """Return the injected copy and the boolean mask of credited points."""
    z = y.copy()
    size = plan["sign"] * k * plan["sd"]
    credited = np.zeros(len(y), dtype=bool)
    p = plan["pos"]
    if plan["kind"] == "spike":
        z[p] += size
        credited[p] = True
    else:
        z[p:] += size
        credited[p : p + 3] = True
    return z, credited


def perflink_flags(y: np.ndarray, flag_rate: float = OPERATING_RATE) -> np.ndarray:
    idx = pd.period_range("2000-01", periods=len(y), freq="M")
    return detect_series(pd.Series(y, index=idx), flag_rate=flag_rate)["is_anomaly"].to_numpy()


def batched_flags(ys: list[np.ndarray], flag_rate: float, freq: str = "M") -> list[np.ndarray]:
    """detect_frame on the series grouped by length: same flags as detect_series, faster."""
    out: list[np.ndarray] = [np.zeros(0, dtype=bool)] * len(ys)
    by_len: dict[int, list[int]] = {}
    for i, y in enumerate(ys):
        by_len.setdefault(len(y), []).append(i)
    for n, idx in by_len.items():
        wide = pd.DataFrame(
            np.stack([ys[i] for i in idx]).T,
            index=pd.period_range("2000-01", periods=n, freq=freq),
        )
        flags = detect_frame(wide, flag_rate=flag_rate)["is_anomaly"].to_numpy().reshape(-1, n)
        for j, i in enumerate(idx):
            out[i] = flags[j]
    return out


def curve(series: list[np.ndarray], plans: list[dict], freq: str = "M") -> pd.DataFrame:
    """Recall by kind at each K and flags per 100 uninjected points, per flag_rate."""
    n_points = sum(len(y) for y in series)
    injected = {k: [inject(y, p, k) for y, p in zip(series, plans, strict=True)] for k in KS}
    rows = []
    for rate in CURVE_RATES:
        clean = batched_flags(series, rate, freq)
        row = {
            "flag_rate": rate,
            "flags_per_100": 100.0 * sum(int(f.sum()) for f in clean) / n_points,
        }
        for k in KS:
            flags = batched_flags([z for z, _ in injected[k]], rate, freq)
            found = np.array(
                [bool(f[c].any()) for f, (_, c) in zip(flags, injected[k], strict=True)]
            )
            kinds = np.array([p["kind"] for p in plans])
            row[f"K{k:g}"] = found.mean()
            row[f"K{k:g}_spike"] = found[kinds == "spike"].mean()
            row[f"K{k:g}_shift"] = found[kinds == "shift"].mean()
        row["chosen"] = "<-" if rate == OPERATING_RATE else ""
        rows.append(row)
    return pd.DataFrame(rows)


def end_recall(series: list[np.ndarray], plans: list[dict]) -> pd.DataFrame:
    """Recall at the operating point when the anomaly sits at one of the last 3 points.

    The review flags the months of its quarter, the end of every series, where the
    model sees the new value from one side only.  Same kinds and signs as the plans.
    """
    rows = []
    for back in (1, 2, 3):
        moved = [{**p, "pos": len(y) - back} for y, p in zip(series, plans, strict=True)]
        for k in (4.0, 6.0):
            inj = [inject(y, p, k) for y, p in zip(series, moved, strict=True)]
            flags = batched_flags([z for z, _ in inj], OPERATING_RATE)
            found = np.array([bool(f[c].any()) for f, (_, c) in zip(flags, inj, strict=True)])
            kinds = np.array([p["kind"] for p in plans])
            rows.append(
                {
                    "point": f"n-{back}",
                    "K": k,
                    "recall": found.mean(),
                    "spike": found[kinds == "spike"].mean(),
                    "shift": found[kinds == "shift"].mean(),
                }
            )
    return pd.DataFrame(rows)


def tails(series: list[np.ndarray]) -> pd.DataFrame:
    """Flags per 100 points at each threshold, spike and shift test, per half of the series."""
    from perflink.anomaly._core import Settings, detect_block

    rows = []
    for half, idx in (("even", range(0, len(series), 2)), ("odd", range(1, len(series), 2))):
        ys = [series[i] for i in idx]
        n_points = sum(len(y) for y in ys)
        for z in (2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0):
            spikes = sum(
                int((np.abs(detect_block(y[None], SEASON)["z_spike"]) > z).sum()) for y in ys
            )
            shifts = sum(
                int(
                    (
                        detect_block(y[None], SEASON, Settings(shift_z=max(z, 4.0)))["kind"] >= 2
                    ).sum()
                )
                for y in ys
            )
            rows.append(
                {
                    "half": half,
                    "z": z,
                    "spike_per_100": 100.0 * spikes / n_points,
                    "shift_per_100": 100.0 * shifts / n_points if z >= 4.0 else np.nan,
                }
            )
    return pd.DataFrame(rows).pivot(index="z", columns="half")


def seasonal_diff_flags(y: np.ndarray) -> np.ndarray:
    d = y[SEASON:] - y[:-SEASON]
    mad = 1.4826 * np.median(np.abs(d - np.median(d)))
    flags = np.zeros(len(y), dtype=bool)
    if mad > 0:
        flags[SEASON:] = np.abs(d - np.median(d)) / mad > 3.5
    return flags


def stl_flags(y: np.ndarray) -> np.ndarray:
    from statsmodels.tsa.seasonal import STL

    r = STL(y, period=SEASON, robust=True).fit().resid
    mad = 1.4826 * np.median(np.abs(r - np.median(r)))
    if mad == 0:
        return np.zeros(len(y), dtype=bool)
    return np.abs(r - np.median(r)) / mad > 5.0


DETECTORS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "perflink.detect_series": perflink_flags,
    "baseline seasonal-diff |z|>3.5": seasonal_diff_flags,
    "baseline robust STL |z|>5": stl_flags,
}


def run(series: list[np.ndarray], plans: list[dict]) -> tuple[pd.DataFrame, dict, dict]:
    rows = []
    clean_rate, timing = {}, {}
    n_points = sum(len(y) for y in series)
    for name, fn in DETECTORS.items():
        t0 = time.perf_counter()
        clean = sum(int(fn(y).sum()) for y in series)
        timing[name] = (time.perf_counter() - t0) / len(series) * 1e3
        clean_rate[name] = 100.0 * clean / n_points
        for k in KS:
            stats = {kind: [0, 0, 0, 0] for kind in ("spike", "shift")}  # n, found, fa, points
            for y, plan in zip(series, plans, strict=True):
                z, credited = inject(y, plan, k)
                flags = fn(z)
                st = stats[plan["kind"]]
                st[0] += 1
                st[1] += int(flags[credited].any())
                st[2] += int((flags & ~credited).sum())
                st[3] += len(y)
            tot = [sum(v[i] for v in stats.values()) for i in range(4)]
            for kind, (n, found, fa, pts) in [*stats.items(), ("all", tot)]:
                rec = found / n if n else np.nan
                prec = found / (found + fa) if found + fa else np.nan
                f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
                rows.append(
                    {
                        "detector": name,
                        "K": k,
                        "kind": kind,
                        "n": n,
                        "recall": rec,
                        "false_alarms": fa,
                        "fa_per_100": 100.0 * fa / pts if pts else np.nan,
                        "precision": prec,
                        "F1": f1,
                        "clean_flags_per_100": clean_rate[name],
                    }
                )
    return pd.DataFrame(rows), clean_rate, timing


def time_panel(n_series: int, n_months: int = 48) -> float:
    rng = np.random.default_rng(SEED)
    t = np.arange(n_months)
    base = 100 + 0.3 * t + 8 * np.sin(2 * np.pi * t / 12)
    mat = base[:, None] * rng.uniform(0.5, 2, n_series) + rng.normal(0, 2, (n_months, n_series))
    wide = pd.DataFrame(mat, index=pd.period_range("2023-01", periods=n_months, freq="M"))
    t0 = time.perf_counter()
    detect_frame(wide)
    return (time.perf_counter() - t0) / n_series * 1e3


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="use the first N series only")
    ap.add_argument("--panel", type=int, default=5000, help="series in the detect_frame timing")
    ap.add_argument("--tails", action="store_true", help="print the tail tables and stop")
    args = ap.parse_args(argv)

    series = load_series(args.limit)
    if args.tails:
        with pd.option_context("display.width", 160):
            print(tails(series).to_string(float_format=lambda v: f"{v:.4f}"))
        return
    plans = plan_injections(series, np.random.default_rng(SEED))
    fmt = {"float_format": lambda v: f"{v:.3f}"}
    cur = curve(series, plans)
    print("recall versus flag rate (detect_series at each anomaly.flag_rate; K in noise sd):")
    with pd.option_context("display.width", 200):
        print(cur.to_string(index=False, **fmt))
    op = cur[cur["flag_rate"] == OPERATING_RATE].iloc[0]
    print(
        f"operating point flag_rate={OPERATING_RATE:g}: {op['flags_per_100']:.2f} flags/100, "
        f"K=4 recall {op['K4']:.3f} (spike {op['K4_spike']:.3f}, shift {op['K4_shift']:.3f}); "
        f"K=3 {op['K3']:.3f}, K=6 {op['K6']:.3f}"
    )
    print("\nthe same at the operating point with the anomaly at one of the last 3 points:")
    print(end_recall(series, plans).to_string(index=False, **fmt))
    qs = load_series(args.limit, "Q")
    qcur = curve(qs, plan_injections(qs, np.random.default_rng(SEED), 4), "Q")
    print(
        f"\nthe same on the M3 quarterly development series ({len(qs)} series, "
        f"{sum(len(y) for y in qs)} points; season 4, own tail tables):"
    )
    with pd.option_context("display.width", 200):
        print(qcur.to_string(index=False, **fmt))
    print()
    table, _, timing = run(series, plans)
    n_points = sum(len(y) for y in series)
    print(f"M3 monthly train series: {len(series)} ({n_points} points), seed {SEED}")
    print("flags per 100 points on the uninjected series and time per series:")
    for name, rate in table.groupby("detector", sort=False)["clean_flags_per_100"].first().items():
        print(f"  {name:34s} {rate:5.2f} flags/100   {timing[name]:6.2f} ms/series")
    print()
    with pd.option_context("display.width", 160, "display.max_rows", 200):
        print(table.drop(columns="clean_flags_per_100").to_string(index=False, **fmt))
    if args.panel:
        ms = time_panel(args.panel)
        print(f"\ndetect_frame, {args.panel} series x 48 months: {ms:.3f} ms/series")


if __name__ == "__main__":
    main()
