"""Organisation chart of the sample group: subsidiaries, units, centre types, names."""

from __future__ import annotations

import numpy as np
import pandas as pd

GROUP_ID = "G00"

# The first six subsidiaries of the default group; larger groups add regional ones.
_SUBSIDIARIES = [
    ("华东制造有限公司", "East China Manufacturing Co.", "manufacturing"),
    ("华南制造有限公司", "South China Manufacturing Co.", "manufacturing"),
    ("华北零售有限公司", "North China Retail Co.", "retail"),
    ("西南零售有限公司", "Southwest Retail Co.", "retail"),
    ("智能装备有限公司", "Smart Equipment Co.", "manufacturing"),
    ("供应链服务有限公司", "Supply Chain Services Co.", "services"),
]
_REGIONS = [
    ("华中", "Central China"),
    ("西北", "Northwest"),
    ("东北", "Northeast"),
    ("华东二区", "East China II"),
    ("华南二区", "South China II"),
    ("京津冀", "Jing-Jin-Ji"),
    ("长三角", "Yangtze Delta"),
    ("成渝", "Chengdu-Chongqing"),
    ("粤港澳", "Greater Bay"),
]
_LINE_NAMES = {
    "manufacturing": ("制造", "Manufacturing"),
    "retail": ("零售", "Retail"),
    "services": ("服务", "Services"),
}
# Unit templates per business line, cycled to fill a subsidiary: (zh, en, center_type, role).
_UNITS = {
    "manufacturing": [
        ("销售一部", "Sales Dept 1", "profit", "sales"),
        ("第一工厂", "Plant 1", "cost", "plant"),
        ("销售二部", "Sales Dept 2", "profit", "sales"),
        ("研发中心", "R&D Centre", "functional", "rd"),
        ("销售三部", "Sales Dept 3", "profit", "sales"),
        ("第二工厂", "Plant 2", "cost", "plant"),
        ("综合管理部", "Administration", "functional", "admin"),
    ],
    "retail": [
        ("旗舰店", "Flagship Store", "profit", "sales"),
        ("加工配送中心", "Processing & Distribution Centre", "cost", "plant"),
        ("社区店", "Community Store", "profit", "sales"),
        ("综合管理部", "Administration", "functional", "admin"),
        ("商场店", "Mall Store", "profit", "sales"),
        ("线上商城", "Online Store", "profit", "sales"),
        ("财务共享中心", "Finance Shared Services", "functional", "admin"),
    ],
    "services": [
        ("华东服务站", "East Service Branch", "profit", "sales"),
        ("运营中心", "Operations Centre", "cost", "plant"),
        ("华南服务站", "South Service Branch", "profit", "sales"),
        ("综合管理部", "Administration", "functional", "admin"),
        ("华北服务站", "North Service Branch", "profit", "sales"),
        ("技术支持部", "Technical Support", "functional", "rd"),
        ("西部服务站", "West Service Branch", "profit", "sales"),
    ],
}
_SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高")
_GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华")


def build_entities(n_units: int, rng: np.random.Generator) -> pd.DataFrame:
    """The organisation: one group, subsidiaries, and ``n_units`` departments.

    Returns the entities table of the data contract plus a private ``role`` column
    (sales / plant / rd / admin) that the simulation uses and the writer drops.
    """
    n_subs = max(4, round(n_units / 7))
    rows = [
        dict(
            entity_id=GROUP_ID,
            name_zh="星联集团",
            name_en="Xinglian Group",
            parent_id="",
            kind="group",
            center_type="",
            business_line="",
            manager=_name(rng),
            role="group",
        )
    ]
    for s in range(n_subs):
        if s < len(_SUBSIDIARIES):
            zh, en, line = _SUBSIDIARIES[s]
        else:
            line = ("manufacturing", "retail", "services")[s % 3]
            rz, ren = _REGIONS[(s - len(_SUBSIDIARIES)) % len(_REGIONS)]
            k = (s - len(_SUBSIDIARIES)) // len(_REGIONS) + 1
            suffix = "" if k == 1 else str(k)
            zh = f"{rz}{_LINE_NAMES[line][0]}{suffix}有限公司"
            en = f"{ren} {_LINE_NAMES[line][1]} {suffix}".rstrip() + " Co."
        rows.append(
            dict(
                entity_id=f"S{s + 1:02d}",
                name_zh=zh,
                name_en=en,
                parent_id=GROUP_ID,
                kind="subsidiary",
                center_type="",
                business_line=line,
                manager=_name(rng),
                role="subsidiary",
            )
        )
    counts = np.full(n_subs, n_units // n_subs)
    counts[: n_units % n_subs] += 1
    for s, count in enumerate(counts):
        sub = rows[s + 1]
        template = _UNITS[sub["business_line"]]
        for u in range(count):
            zh, en, center, role = template[u % len(template)]
            lap = u // len(template)
            if lap:
                zh, en = f"{zh}（{lap + 1}）", f"{en} ({lap + 1})"
            rows.append(
                dict(
                    entity_id=f"{sub['entity_id']}D{u + 1:02d}",
                    name_zh=f"{sub['name_zh'].removesuffix('有限公司')}{zh}",
                    name_en=f"{sub['name_en'].removesuffix(' Co.')} {en}",
                    parent_id=sub["entity_id"],
                    kind="department",
                    center_type=center,
                    business_line=sub["business_line"],
                    manager=_name(rng),
                    role=role,
                )
            )
    return pd.DataFrame(rows)


def _name(rng: np.random.Generator) -> str:
    return str(rng.choice(_SURNAMES)) + "".join(rng.choice(_GIVEN, size=rng.integers(1, 3)))
