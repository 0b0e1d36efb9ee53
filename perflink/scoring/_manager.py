"""Middle-manager assessment from the unit scorecards (not API; see perflink.scoring).

Rule: each department's manager is assessed on three dimensions, the scheme categories of the
unit's scorecard:

* business process      <- ``business`` metrics,
* financial result      <- ``financial`` metrics,
* management efficiency <- ``management`` metrics.

A dimension's score is the weight-averaged score of its scored metrics (a metric without a
score, e.g. missing data, leaves its weight to the others of the same dimension, so the
dimension keeps the weight the scheme gives it). The dimension weight is the sum of the
scheme's weights in that category: the scheme of the unit's centre type, or its own scheme.
The manager score is the weight-averaged dimension score over the scored dimensions. The
weights are checked against the catalog policy's bounds for the centre type (``policy.yaml``
``constraints``: a minimum and/or maximum summed weight per category) and a breach is
a ``high`` finding; otherwise the severity follows the score (below ``manager_fail_score``:
medium, below ``manager_warn_score``: low, else info).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perflink._report_format import fmt_number
from perflink.catalog import Policy
from perflink.labels import t

DIMENSIONS = ("business", "financial", "management")
COLUMNS = [
    "entity_id",
    "period",
    "scope",
    "rule_id",
    "manager",
    "center_type",
    "scheme_id",
    *[f"{d}_weight" for d in DIMENSIONS],
    *[f"{d}_score" for d in DIMENSIONS],
    "manager_score",
    "policy_ok",
    "policy_breach",
    "severity",
    "message",
]

_CENTERS = ("profit", "cost", "functional")  # centre types with a name in the labels


def manager_table(
    card: pd.DataFrame,
    entities: pd.DataFrame,
    policy: Policy,
    *,
    scope: str,
    fail_score: float,
    warn_score: float,
    names: dict,
    lang: str,
    schemes: dict | None = None,
) -> pd.DataFrame:
    """One row per department manager: dimension weights and scores, score, policy check."""
    deps = entities[(entities["kind"] == "department") & entities["manager"].notna()]
    part = card[(card["scope"] == scope) & card["entity_id"].isin(deps["entity_id"])]
    if part.empty:
        return pd.DataFrame(columns=COLUMNS)
    period = str(part["period"].iloc[0])
    p = part.assign(
        w_ok=part["weight"].where(part["score"].notna()),
        ws=part["weight"] * part["score"],
    )
    g = p.groupby(["entity_id", "category"], sort=True)
    cat = pd.DataFrame(
        {"weight": g["weight"].sum(), "score": g["ws"].sum(min_count=1) / g["w_ok"].sum()}
    )
    weight = cat["weight"].unstack("category").reindex(columns=list(DIMENSIONS)).fillna(0.0)
    score = cat["score"].unstack("category").reindex(columns=list(DIMENSIONS))
    ok_w = weight.where(score.notna(), 0.0)
    total = (weight * score).sum(axis=1, min_count=1) / ok_w.sum(axis=1).replace(0.0, np.nan)
    out = deps.set_index("entity_id")[["manager", "center_type"]].join(
        part.groupby("entity_id")["scheme_id"].first(), how="inner"
    )
    for d in DIMENSIONS:
        out[f"{d}_weight"] = weight[d]
        out[f"{d}_score"] = score[d]
    out["manager_score"] = total
    breaches = [
        _breaches(center, [out.at[e, f"{d}_weight"] for d in DIMENSIONS], policy)
        for e, center in zip(out.index, out["center_type"], strict=True)
    ]
    out["policy_ok"] = [not b for b in breaches]
    out["policy_breach"] = [
        "; ".join(f"{d}_{side}" for d, side, _, _ in b) if b else "" for b in breaches
    ]
    s = out["manager_score"]
    out["severity"] = np.select(
        [~out["policy_ok"], s.isna() | (s < fail_score), s < warn_score],
        ["high", "medium", "low"],
        default="info",
    )
    out = out.reset_index()
    out["message"] = [
        _message(r, b, names, lang, schemes or {})
        for r, b in zip(out.itertuples(), breaches, strict=True)
    ]
    out["period"] = period
    out["scope"] = scope
    out["rule_id"] = "manager_assessment"
    return out.reindex(columns=COLUMNS).sort_values(
        ["manager_score", "entity_id"], kind="stable", ignore_index=True, na_position="first"
    )


def _breaches(center: str, weights: list[float], policy: Policy) -> list[tuple]:
    """(dimension, 'min'/'max', share, bound) for every policy bound the weights break."""
    tol = policy.weight_tolerance
    share = dict(zip(DIMENSIONS, weights, strict=True))
    out = []
    for category, bound in policy.constraints.get(center, {}).items():
        value = float(share.get(category, 0.0))
        if bound.min is not None and value < bound.min - tol:
            out.append((category, "min", value, bound.min))
        if bound.max is not None and value > bound.max + tol:
            out.append((category, "max", value, bound.max))
    return out


def _fmt(x: float) -> str:
    # the manager table's own formatting (fmt_number without a unit), so a row's sentence
    # and its cells read the same figure: 95.24, 110
    return fmt_number(x, None, "en")


def _message(r, breaches: list[tuple], names: dict, lang: str, schemes: dict) -> str:
    def label(kind: str, key: str) -> str:  # a dimension's or centre type's name; else the id
        known = DIMENSIONS if kind == "dim" else _CENTERS
        return t(f"scoring.msg.manager_{kind}.{key}", lang) if key in known else key

    name = names.get(r.entity_id, r.entity_id)
    parts = t("scoring.msg.manager_part_sep", lang).join(
        t("scoring.msg.manager_part", lang, dim=label("dim", d), score=_fmt(s), weight=f"{w:.0%}")
        for d in DIMENSIONS
        for s, w in [(getattr(r, f"{d}_score"), getattr(r, f"{d}_weight"))]
    )
    head = t(
        "scoring.msg.manager_head",
        lang,
        name=name,
        manager=r.manager,
        center=label("center", r.center_type),
        scheme=schemes.get(r.scheme_id, r.scheme_id),  # its name, not the schemes table's code
        parts=parts,
        score=_fmt(r.manager_score),
    )
    if not breaches:
        return t("scoring.msg.manager_complies", lang, head=head)
    why = t("scoring.msg.manager_breach_sep", lang).join(
        t(
            "scoring.msg.manager_breach",
            lang,
            dim=label("dim", d),
            weight=f"{v:.0%}",
            op="≥" if side == "min" else "≤",
            limit=f"{lim:.0%}",
        )
        for d, side, v, lim in breaches
    )
    return t("scoring.msg.manager_breaks", lang, head=head, why=why)
