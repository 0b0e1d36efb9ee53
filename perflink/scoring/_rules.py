"""Scheme scoring rules and the bonus coefficient (not API; see :mod:`perflink.scoring`).

Reading of schemes.csv. Each rule scores the row's *attainment*
(:func:`perflink.kpi.attainment`: the completion ratio for ratio-basis metrics with a positive
target, the points gap scaled to the ``status:`` block for rates and growth, points of
``|target|`` for a target at or below zero), called completion below:

``linear``     score = 100 x min(completion, cap); 0 when completion < floor.
``step``       ``{"steps": [[c1, s1], [c2, s2], ...]}``: the score of the highest step whose
               completion ci <= completion; 0 below the first step.
``threshold``  ``{"threshold": x, "pass": s, "fail": s}``: ``pass`` when completion >= x,
               else ``fail`` (the threshold applies to completion, like the other rules).

Every score is clipped to [0, 100 x cap]; an unknown completion gives NaN.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from perflink.errors import InputError


def parse_params(text: object, *, rule: str, where: str) -> dict:
    """The scheme row's ``rule_params`` JSON, checked for its rule."""
    if text is None or (isinstance(text, float) and np.isnan(text)) or text == "":
        params = {}
    else:
        try:
            params = json.loads(str(text))
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: rule_params {text!r} is not JSON ({exc.msg})") from None
    if rule == "step":
        steps = params.get("steps")
        ok = (
            isinstance(steps, list)
            and steps
            and all(isinstance(s, list | tuple) and len(s) == 2 for s in steps)
        )
        if not ok:
            raise InputError(
                f"{where}: rule 'step' needs rule_params {{\"steps\": [[completion, score], ...]}}"
                f", got {text!r}"
            )
    elif rule == "threshold":
        if not all(k in params for k in ("threshold", "pass", "fail")):
            raise InputError(
                f"{where}: rule 'threshold' needs rule_params with threshold, pass and fail, "
                f"got {text!r}"
            )
    elif rule != "linear":
        raise InputError(f"{where}: rule {rule!r} is unknown; use linear, step or threshold")
    return params


def score(completion: float, rule: str, floor: float, cap: float, params: dict) -> float:
    """Score (0 .. 100 x cap) of one completion under one scheme rule."""
    if completion is None or not np.isfinite(completion):
        return float("nan")
    if rule == "linear":
        value = 0.0 if completion < floor else 100.0 * min(completion, cap)
    elif rule == "step":
        value = 0.0
        for c, s in sorted(params["steps"]):
            if completion >= c:
                value = float(s)
    else:
        ok = completion >= params["threshold"]
        value = float(params["pass"] if ok else params["fail"])
    return float(min(max(value, 0.0), 100.0 * cap))


def score_frame(frame: pd.DataFrame) -> np.ndarray:
    """Scores of rows with ``completion, rule, floor, cap, params`` (dict)."""
    return np.array(
        [
            score(c, r, f, cp, p)
            for c, r, f, cp, p in zip(
                frame["completion"],
                frame["rule"],
                frame["floor"],
                frame["cap"],
                frame["params"],
                strict=True,
            )
        ],
        dtype=float,
    )


def coefficient(scores: np.ndarray | pd.Series, steps) -> np.ndarray:
    """Bonus coefficient of each score from the policy's ``bonus_coefficient`` steps."""
    s = np.asarray(scores, dtype=float)
    mins = np.array([st.min_score for st in steps])
    coefs = np.array([st.coefficient for st in steps])
    idx = np.searchsorted(mins, s, side="right") - 1
    out = np.where(idx >= 0, coefs[np.clip(idx, 0, None)], 0.0)
    return np.where(np.isfinite(s), out, np.nan)
