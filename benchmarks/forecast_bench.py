"""Benchmark perflink.forecast on the M3 development half.

For every series, forecast the test horizon (18 monthly / 8 quarterly) from the
train part and print sMAPE, MASE, 80%/95% interval coverage and milliseconds per
series, next to the M3 reference table (../shared/data/m3_dev/README.md).

Usage (from the repo root)::

    .venv/bin/python benchmarks/forecast_bench.py                 # both frequencies
    .venv/bin/python benchmarks/forecast_bench.py --freq monthly --limit 100
    .venv/bin/python benchmarks/forecast_bench.py --jobs 2        # joblib (timing then per core-less)
    .venv/bin/python benchmarks/forecast_bench.py --compare       # candidate combinations
    .venv/bin/python benchmarks/forecast_bench.py --compare --holdout  # same, last h train points
    .venv/bin/python benchmarks/forecast_bench.py --calibrate     # interval factor from train holdouts

Data folder: ``<repo>/../shared/data/m3_dev`` or the env var ``PERFLINK_M3_DIR``.
"""

from __future__ import annotations

import os

# One core, set before numpy is imported, so the ms/series figure means one core.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from statistics import NormalDist  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from perflink.forecast import _models as fm  # noqa: E402
from perflink.forecast import accuracy, forecast_series  # noqa: E402

HORIZON = {"monthly": 18, "quarterly": 8}
SEASON = {"monthly": 12, "quarterly": 4}
REFERENCE = {  # M3 submissions on exactly these series (README of the data folder)
    "monthly": {
        "THETA": (13.600, 0.842),
        "ForecastPro": (13.750, 0.842),
        "COMB S-H-D": (14.083, 0.878),
        "DAMPEN": (14.170, 0.884),
        "NAIVE2": (16.341, 1.010),
    },
    "quarterly": {
        "THETA": (9.027, 1.104),
        "ForecastPro": (9.873, 1.228),
        "COMB S-H-D": (9.315, 1.120),
        "DAMPEN": (9.507, 1.154),
        "NAIVE2": (10.050, 1.241),
    },
}
CANDIDATES = [
    ("theta",),
    ("damped",),
    ("arima",),
    ("ses", "holt", "damped"),
    ("theta", "damped"),
    ("theta", "arima"),
    ("theta", "damped", "ses"),
    ("theta", "damped", "arima"),
    ("theta", "damped", "arima", "ses"),
]
ALL_COMPONENTS = ("theta", "damped", "ses", "holt", "arima")


def _data_dir() -> Path:
    env = os.environ.get("PERFLINK_M3_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared/data/m3_dev"


def _load(freq: str, limit: int | None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    df = pd.read_csv(_data_dir() / f"m3_{freq}_dev.csv")
    out = []
    for sid, g in df.groupby("series_id", sort=False):
        g = g.sort_values("t")
        train = g.loc[g["split"] == "train", "value"].to_numpy(float)
        test = g.loc[g["split"] == "test", "value"].to_numpy(float)
        out.append((str(sid), train, test))
        if limit and len(out) >= limit:
            break
    return out


def _one(train: np.ndarray, test: np.ndarray, freq: str) -> dict:
    h, m = HORIZON[freq], SEASON[freq]
    y = pd.Series(train, index=pd.period_range("2000-01", periods=len(train), freq=freq[0].upper()))
    t0 = time.perf_counter()
    fc = forecast_series(y, h)
    ms = (time.perf_counter() - t0) * 1000
    snaive = fm.seasonal_naive(train, h, m)
    acc = accuracy(test, fc["mean"].to_numpy(), train, m)
    acc_n = accuracy(test, snaive, train, m)
    return {
        "smape": acc["smape"],
        "mase": acc["mase"],
        "smape_snaive": acc_n["smape"],
        "mase_snaive": acc_n["mase"],
        "cov80": float(np.mean((test >= fc["lo_80"]) & (test <= fc["hi_80"]))),
        "cov95": float(np.mean((test >= fc["lo_95"]) & (test <= fc["hi_95"]))),
        "ms": ms,
        "method": fc.attrs["method"],
    }


def _run(freq: str, limit: int | None, jobs: int) -> None:
    series = _load(freq, limit)
    t0 = time.perf_counter()
    if jobs > 1:
        from joblib import Parallel, delayed

        rows = Parallel(n_jobs=jobs)(delayed(_one)(tr, te, freq) for _, tr, te in series)
    else:
        rows = [_one(tr, te, freq) for _, tr, te in series]
    wall = time.perf_counter() - t0
    r = pd.DataFrame(rows)
    load = os.getloadavg()[0]
    print(f"\n== M3 {freq} dev: {len(r)} series, horizon {HORIZON[freq]} ==")
    print(f"{'method':<22}{'sMAPE':>8}{'MASE':>8}{'cov80':>8}{'cov95':>8}")
    print(
        f"{'perflink':<22}{r.smape.mean():8.3f}{r.mase.mean():8.3f}"
        f"{100 * r.cov80.mean():7.1f}%{100 * r.cov95.mean():7.1f}%"
    )
    print(f"{'seasonal naive (run)':<22}{r.smape_snaive.mean():8.3f}{r.mase_snaive.mean():8.3f}")
    for name, (s, m) in REFERENCE[freq].items():
        print(f"{name + ' (M3)':<22}{s:8.3f}{m:8.3f}")
    print(
        f"time: {r.ms.mean():.1f} ms/series in forecast_series (median {r.ms.median():.1f}); "
        f"wall {wall:.1f} s with jobs={jobs}; load average at end {load:.2f} on {os.cpu_count()} cores"
    )
    print("methods used:", r.method.value_counts().to_dict())


def _compare(freq: str, limit: int | None, holdout: bool) -> None:
    """Mean and median of each candidate; ``holdout``: last h *train* points (test unused)."""
    h, m = HORIZON[freq], SEASON[freq]
    scores: dict[tuple, list] = {(c, agg): [] for c in CANDIDATES for agg in ("mean", "median")}
    for _, train, test in _load(freq, limit):
        if holdout:
            train, test = train[:-h], train[-h:]
        core = fm.forecast_core(train, h, m, combination=ALL_COMPONENTS)
        for c, agg in scores:
            if agg == "median" and len(c) < 3:
                continue
            f = getattr(np, agg)([core.components[k] for k in c], axis=0)
            f = np.maximum(f, 0.0) if core.nonneg else f
            a = accuracy(test, f, train, m)
            scores[(c, agg)].append((a["smape"], a["mase"]))
    part = "train holdout (last h train points)" if holdout else "test"
    print(f"\n== candidate combinations, M3 {freq} dev, {part} ==")
    for (c, agg), v in scores.items():
        if v:
            s = np.mean(v, axis=0)
            print(f"{agg + '(' + ','.join(c) + ')':<34}{s[0]:8.3f}{s[1]:8.3f}")


def _calibrate(freq: str, limit: int | None) -> None:
    """Standardised errors on the last h points of each *train* part (test points unused)."""
    h, m = HORIZON[freq], SEASON[freq]
    z = []
    for _, train, _test in _load(freq, limit):
        fit, hold = train[:-h], train[-h:]
        core = fm.forecast_core(fit, h, m)
        ok = core.sd > 0
        z.append(np.abs(hold - core.mean)[ok] / (core.sd[ok] / fm.scale_factor(m)))
    z = np.concatenate(z)
    q80, q95 = np.quantile(z, [0.8, 0.95])
    print(f"\n== calibration, M3 {freq} dev train holdouts ({len(z)} points) ==")
    print(f"|z| quantiles: 80% {q80:.3f}  95% {q95:.3f}")
    for name, z80, z95 in [
        ("normal", NormalDist().inv_cdf(0.9), NormalDist().inv_cdf(0.975)),
        (f"t{fm.T_DF}", fm.interval_z(80), fm.interval_z(95)),
    ]:
        print(f"{name}: factor for 80% {q80 / z80:.3f}   for 95% {q95 / z95:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--freq", choices=["monthly", "quarterly"], default=None)
    ap.add_argument("--limit", type=int, default=None, help="first N series only")
    ap.add_argument("--jobs", type=int, default=1, help="joblib workers (default 1)")
    ap.add_argument("--compare", action="store_true", help="score candidate combinations")
    ap.add_argument("--holdout", action="store_true", help="--compare on train holdouts")
    ap.add_argument("--calibrate", action="store_true", help="interval factor from train holdouts")
    args = ap.parse_args()
    if not _data_dir().is_dir():
        print(f"M3 data folder not found: {_data_dir()} (set PERFLINK_M3_DIR); skipping.")
        return
    for freq in [args.freq] if args.freq else ["monthly", "quarterly"]:
        if args.compare:
            _compare(freq, args.limit, args.holdout)
        elif args.calibrate:
            _calibrate(freq, args.limit)
        else:
            _run(freq, args.limit, args.jobs)


if __name__ == "__main__":
    main()
