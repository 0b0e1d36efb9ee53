"""Benchmark perflink.mapping.validate on a large generated group.

Usage::

    .venv/bin/python benchmarks/mapping_bench.py [--entities 2000] [--months 48] [--dir DIR]

Generates the sample (once; reused when ``DIR/params.yaml`` exists), loads it, then times each
part of the validation and the whole of :func:`perflink.mapping.validate`. Prints figures only:
speed is never asserted in tests.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import perflink
import perflink.mapping as pm
from perflink import sample


def _timed(label: str, fn):
    start = time.perf_counter()
    out = fn()
    print(f"{label:<22} {time.perf_counter() - start:7.2f} s")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entities", type=int, default=2000)
    ap.add_argument("--months", type=int, default=48)
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    folder = (
        args.dir or Path(tempfile.gettempdir()) / f"perflink-mapping-{args.entities}x{args.months}"
    )
    if not (folder / "params.yaml").exists():
        _timed(
            "generate sample",
            lambda: sample.generate(folder, entities=args.entities, months=args.months),
        )
    review = perflink.open_review(folder / "params.yaml", language="en")
    facts = _timed("load inputs", lambda: review.facts)
    print(f"facts rows: {len(facts):,}; units: {facts['entity_id'].nunique():,}")
    cat, ents, q = review.catalog, review.entities, review.quarter
    _timed("check_catalog", lambda: pm.check_catalog(cat))
    comp = _timed("check_completeness", lambda: pm.check_completeness(facts, ents, cat, quarter=q))
    rules = _timed(
        "check_rules",
        lambda: pm.check_rules(facts, cat, quarter=q, entities=ents, expected=comp.expected),
    )
    _timed(
        "check_calibers",
        lambda: pm.check_calibers(facts, cat, quarter=q, entities=ents, expected=comp.expected),
    )
    _timed("driver_strength", lambda: pm.driver_strength(facts, cat, quarter=q))
    _timed("data_quality", lambda: pm.data_quality(comp, rules, cat))
    result = _timed("validate (total)", lambda: pm.validate(review))
    print(f"findings: {len(result.to_frame()):,}")


if __name__ == "__main__":
    main()
