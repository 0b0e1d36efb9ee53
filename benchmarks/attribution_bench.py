"""Benchmark perflink.kpi.attribute_frame on a tree-sized panel (entities x months).

Run: PYTHONPATH=. .venv/bin/python benchmarks/attribution_bench.py [--entities 2000] [--months 12]
Prints wall time and peak traced memory per formula; nothing is asserted.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd

from perflink.formula import parse
from perflink.kpi import attribute, attribute_frame

FORMULAS = {
    "price-volume (2 inputs)": "price * qty",
    "DuPont (4 raw inputs)": "net_profit / revenue * revenue / assets * assets / equity",
    "EVA-like (5 inputs)": "(revenue - cogs - opex) * 0.75 - 0.08 / 12 * invested_capital / equity",
    "PVM 6 products (12 inputs, 6 terms)": " + ".join(f"q{i} * p{i}" for i in range(6)),
    "one 10-input term": "(" + " + ".join(f"x{i}" for i in range(10)) + ") / (1 + y)",
}


def _frames(names: list[str], rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    base = pd.DataFrame(rng.uniform(1.0, 100.0, (rows, len(names))), columns=names)
    actual = base * rng.uniform(0.8, 1.2, base.shape)
    return base, actual


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=2000)
    parser.add_argument("--months", type=int, default=12)
    opts = parser.parse_args()
    rows = opts.entities * opts.months
    print(f"attribute_frame, {rows:,} rows ({opts.entities} entities x {opts.months} months)")
    for label, text in FORMULAS.items():
        names = list(parse(text).inputs)
        base, actual = _frames(names, rows, seed=0)
        for method in ("shapley", "sequential"):
            tracemalloc.start()
            start = time.perf_counter()
            attribute_frame(text, base, actual, method=method)
            seconds = time.perf_counter() - start
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            print(f"  {label:<38} {method:<10} {seconds:8.3f} s  peak {peak:7.1f} MiB")
    names = [f"x{i}" for i in range(16)]
    base, actual = _frames(names, 1, seed=1)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        attribute(" * ".join(names), base.iloc[0].to_dict(), actual.iloc[0].to_dict())
    print(
        f"attribute, 16-input product (sampled, 2000 permutations): {time.perf_counter() - start:.3f} s"
    )
    names = [f"x{i}" for i in range(13)]
    base, actual = _frames(names, 2000, seed=2)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        attribute_frame(" * ".join(names), base, actual, n_permutations=500)
    print(
        f"attribute_frame, 13-input product, 2,000 rows (sampled, 500 permutations): {time.perf_counter() - start:.3f} s"
    )


if __name__ == "__main__":
    main()
