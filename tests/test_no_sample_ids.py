"""Nothing in perflink/ names the sample (issue 14): no metric id, entity id, business line,
entity name, metric name or unit of the sample group outside its generator and its bundled
catalog and examples.

What counts as the sample is read from the sample itself, not from a list written here: its
metric ids and names from the bundled catalog (``perflink/data/catalog/metrics.yaml``), its
entity ids, names and business lines from the entities table ``perflink sample-data``
writes (generated once per session).

Where (:func:`sources`):

* every string literal of ``perflink/**/*.py`` (found with :mod:`ast`: docstrings, f-string
  parts and bytes included), except the generator (``perflink/sample.py``,
  ``perflink/_sample_*.py``);
* every key and text of ``perflink/data/labels/*.yaml``;
* every line of ``perflink/data/scaffold/**`` (what ``perflink init`` gives a new company)
  and of ``perflink/templates/**`` (the HTML report's templates, styles and scripts);
* the code cells of ``notebooks/*.ipynb``.

The bundled catalog and examples (``perflink/data/catalog``, ``perflink/data/examples``) are
the sample's and another company's own data and are not read.

The rules (:meth:`Rules.offences`). Several of the sample's metric ids and its business lines
are also English words ("revenue", "equity", "retail", "services") that prose may use as
words, so a rule depends on the kind of text:

1. A **compound metric id** (one with ``_`` or a digit: ``net_profit``, ``shipped_qty``) is no
   English word: it may not appear as a whole identifier in any text.
2. **Entity ids** (``G00``, ``S01``, ``S01D01``) and **entity names** (zh and en) may not appear
   in any text.
3. A **one-word metric id or business line** (``revenue``, ``cogs``, ``retail``):

   * *code* (a string literal that is not a docstring, a notebook code line, a scaffold data
     line, a template line): may not be the whole literal, nor appear as a lower-case word
     (a message saying "revenue" talks about a metric the company may not have);
   * *label texts*: may not appear as a lower-case word; a *label key* may not have it as a
     segment (``kpi.metric.revenue``);
   * *prose* (docstrings, scaffold comments and README): may not appear in a code-like
     context: quoted or in backticks (``'revenue'``, ````revenue````), next to an operator
     (``revenue /``, ``* cogs``, ``revenue ~``, spaced `` - ``), after ``=`` or ``:`` with no
     space (``metric_id=revenue``, ``wmean:revenue``) or before ``:`` with no space after.
   * *patterns*: a literal passed to ``re.compile`` recognises words in a company's own texts
     (``goods and services tax``) and says nothing: only the whole-literal rule applies.

4. **Metric names** of the sample (``净利润``, ``营业收入``; English ``Net profit``,
   ``Revenue``, case-insensitive) may not appear in a label text; the Chinese ones may not
   appear in a code literal either (the English ones are common words: ``yield`` is also a
   Python keyword the formula checker names). A label names a metric through a ``{metric}``
   placeholder filled from the company's catalog.
5. **Units**: ``万元`` and ``CNY`` may not be written into a label text or a code literal
   outside ``perflink/units.py``, the unit registry every unit word comes from. A docstring
   may name them as examples of the catalog units the registry accepts (it formats nothing).

The only allowance: a catalog **role** name (``perflink.catalog.ROLES``) is the product's own
vocabulary even where the sample happens to use the same word as a metric id (``headcount``).

Every offence is reported at once, with its file, line, the offending name and the text.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from perflink.catalog import ROLES
from perflink.sample import generate

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "perflink"
CATALOG = PACKAGE / "data" / "catalog"

#: The sample generator: the one code allowed to name the sample.
GENERATOR = ("sample.py", "_sample_")
#: The unit registry: the one module allowed to write a unit word.
UNIT_REGISTRY = "perflink/units.py"
UNIT_WORDS = ("万元", "CNY")


@dataclass(frozen=True)
class Sample:
    """Names of the sample group, read from its catalog and generated entities table."""

    compound_ids: frozenset[str]
    word_ids: frozenset[str]  # one-word metric ids and business lines
    entity_ids: frozenset[str]
    entity_names: frozenset[str]
    metric_names: frozenset[str]


@dataclass(frozen=True)
class Text:
    """One line of text to check.

    ``kind`` is ``code``, ``pattern``, ``docstring``, ``label_key``, ``label_text``,
    ``prose`` (scaffold comments and README) or ``data`` (scaffold data, template and
    notebook lines); ``whole`` is the whole literal a line belongs to (literals only).
    """

    where: str
    text: str
    kind: str
    whole: str | None = None


def sample_names(folder: Path) -> Sample:
    """The names of the sample in the generated folder ``folder`` and the bundled catalog."""
    doc = yaml.safe_load((CATALOG / "metrics.yaml").read_text("utf-8"))
    metric_ids = {m["id"] for m in doc["metrics"]}
    metric_names = {m[k] for m in doc["metrics"] for k in ("name_zh", "name_en") if m.get(k)}
    entities = pd.read_csv(folder / "entities.csv", dtype=str, keep_default_na=False)
    lines = {b for b in entities["business_line"] if b}
    compound = {m for m in metric_ids if re.search(r"[_0-9]", m)}
    return Sample(
        compound_ids=frozenset(compound),
        word_ids=frozenset((metric_ids - compound) | lines),
        entity_ids=frozenset(entities["entity_id"]),
        entity_names=frozenset(n for c in ("name_zh", "name_en") for n in entities[c] if n),
        metric_names=frozenset(metric_names),
    )


@pytest.fixture(scope="session")
def sample(tmp_path_factory) -> Sample:
    return sample_names(generate(tmp_path_factory.mktemp("sample") / "s", seed=0).parent)


# ---------------------------------------------------------------- where to look


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _docstring_nodes(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
        else:
            continue
        # the docstring, and attribute docstrings: a bare string after an assignment
        for i, stmt in enumerate(body):
            bare = isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
            if bare and (i == 0 or isinstance(body[i - 1], ast.Assign | ast.AnnAssign)):
                found.add(id(stmt.value))
    return found


def _pattern_nodes(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "re"
        ):
            for arg in node.args[:1]:
                found |= {id(n) for n in ast.walk(arg) if isinstance(n, ast.Constant)}
    return found


def python_texts(path: Path, *, name: str | None = None) -> Iterator[Text]:
    """The string literals of a Python file, line by line (``name``: shown instead of the
    path)."""
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    docstrings, patterns = _docstring_nodes(tree), _pattern_nodes(tree)
    where = name or _rel(path)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str | bytes)):
            continue
        value = node.value
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        kind = (
            "docstring" if id(node) in docstrings else "pattern" if id(node) in patterns else "code"
        )
        for i, line in enumerate(value.splitlines() or [value]):
            yield Text(f"{where}:{node.lineno + i}", line, kind, value)


def _label_texts(path: Path) -> Iterator[Text]:
    lines = path.read_text("utf-8").splitlines()
    for key, value in (yaml.safe_load("\n".join(lines)) or {}).items():
        lineno = next((i for i, row in enumerate(lines, 1) if row.startswith(f"{key}:")), 0)
        where = f"{_rel(path)}:{lineno}"
        yield Text(where, str(key), "label_key")
        for text in value.values() if isinstance(value, dict) else [value]:
            yield Text(where, str(text), "label_text")


def _lines(path: Path) -> Iterator[Text]:
    markdown = path.suffix == ".md"
    for i, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if markdown or line.lstrip().startswith("#"):
            yield Text(f"{_rel(path)}:{i}", line, "prose")
        elif "#" in line and path.suffix in (".yaml", ".yml"):
            data, comment = line.split("#", 1)
            yield Text(f"{_rel(path)}:{i}", data, "data")
            yield Text(f"{_rel(path)}:{i}", comment, "prose")
        else:
            yield Text(f"{_rel(path)}:{i}", line, "data")


def _notebook_texts(path: Path) -> Iterator[Text]:
    nb = json.loads(path.read_text("utf-8"))
    for c, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            for i, line in enumerate("".join(cell["source"]).splitlines(), start=1):
                yield Text(f"{_rel(path)} cell {c} line {i}", line, "data")


def sources() -> Iterator[Text]:
    """Every text the rules apply to (see the module docstring)."""
    for path in sorted(PACKAGE.rglob("*.py")):
        if not path.name.startswith(GENERATOR):
            yield from python_texts(path)
    for path in sorted((PACKAGE / "data" / "labels").glob("*.yaml")):
        yield from _label_texts(path)
    for folder in (PACKAGE / "data" / "scaffold", PACKAGE / "templates"):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            yield from _lines(path)
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        yield from _notebook_texts(path)


# ---------------------------------------------------------------- the rules


def _alternation(names) -> str:
    return "|".join(sorted(map(re.escape, names), key=len, reverse=True))


class Rules:
    """The rules of the module docstring, compiled once for a :class:`Sample`."""

    def __init__(self, sample: Sample) -> None:
        self.word_ids = sample.word_ids - set(ROLES)
        words = _alternation(self.word_ids)
        self.compound = re.compile(
            rf"(?<![A-Za-z0-9_])({_alternation(sample.compound_ids)})(?![A-Za-z0-9_])"
        )
        self.word = re.compile(rf"(?<![A-Za-z0-9_])({words})(?![A-Za-z0-9_])")
        op = r"[*/+<>~=]|\s-\s"
        self.code_like = re.compile(
            rf"(?:['\"`]|(?:{op})\s?|[=:])({words})(?![A-Za-z0-9_])"
            rf"|(?<![A-Za-z0-9_])({words})(?:['\"`]|\s?(?:{op})|:(?!\s))"
        )
        self.entity_ids = re.compile(
            rf"(?<![A-Za-z0-9])({_alternation(sample.entity_ids)})(?![A-Za-z0-9])"
        )
        self.entity_names = re.compile(_alternation(sample.entity_names))
        zh = {n for n in sample.metric_names if not n.isascii()}
        en = (
            {n for n in sample.metric_names if n.isascii()}
            - set(ROLES)
            - {r.title() for r in ROLES}
        )
        self.metric_zh = re.compile(_alternation(zh))
        self.metric_en = re.compile(rf"(?<![A-Za-z])({_alternation(en)})(?![A-Za-z])", re.I)
        self.units = re.compile(_alternation(UNIT_WORDS))

    def offences(self, t: Text) -> list[str]:
        """What the text ``t`` names of the sample, each as '<what> <name>'."""
        text, kind = t.text, t.kind
        found = [f"metric id {m[1]!r}" for m in self.compound.finditer(text)]
        found += [f"entity id {m[1]!r}" for m in self.entity_ids.finditer(text)]
        found += [f"entity name {m[0]!r}" for m in self.entity_names.finditer(text)]
        whole = t.whole.strip() if t.whole is not None else None
        if kind in ("code", "pattern") and whole in self.word_ids:
            found.append(f"literal {whole!r}")  # the word rule would say it again
        elif kind == "label_key":
            found += [f"key segment {s!r}" for s in text.split(".") if s in self.word_ids]
        elif kind in ("code", "data", "label_text"):
            found += [f"word {m[1]!r}" for m in self.word.finditer(text)]
        elif kind in ("docstring", "prose"):
            found += [f"identifier {m[1] or m[2]!r}" for m in self.code_like.finditer(text)]
        if kind in ("code", "label_text"):
            found += [f"metric name {m[0]!r}" for m in self.metric_zh.finditer(text)]
        if kind == "label_text":
            found += [f"metric name {m[1]!r}" for m in self.metric_en.finditer(text)]
        if kind in ("code", "label_text") and not t.where.startswith(UNIT_REGISTRY + ":"):
            found += [f"unit word {m[0]!r}" for m in self.units.finditer(text)]
        return list(dict.fromkeys(found))


def report(texts, rules: Rules) -> list[str]:
    """One line per offence: 'file:line [kind]: what in 'text''."""
    return [
        f"{t.where} [{t.kind}]: {o} in {t.text.strip()[:110]!r}"
        for t in texts
        for o in rules.offences(t)
    ]


def test_nothing_in_the_package_names_the_sample(sample: Sample):
    found = report(sources(), Rules(sample))
    assert not found, f"{len(found)} places in the package name the sample:\n" + "\n".join(found)


# ---------------------------------------------------------------- the rules can fail


def test_the_names_come_from_the_sample(sample: Sample):
    assert {"net_profit", "shipped_qty"} <= sample.compound_ids
    assert {"revenue", "cogs", "retail"} <= sample.word_ids
    assert {"G00", "S01", "S01D01"} <= sample.entity_ids
    assert {"净利润", "Revenue"} <= sample.metric_names
    assert any("集团" in n for n in sample.entity_names)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('x = "revenue"\n', "literal 'revenue'"),
        ('x = f"{m} revenue target"\n', "word 'revenue'"),
        ('x = "wmean:shipped_qty"\n', "metric id 'shipped_qty'"),
        ('x = "retail"\n', "literal 'retail'"),
        ('x = "scope S02"\n', "entity id 'S02'"),
        ('x = "S01D01"\n', "entity id 'S01D01'"),
        ('x = "金额（万元）"\n', "unit word '万元'"),
        ('x = "CNY 10k"\n', "unit word 'CNY'"),
        ('x = "{m}：营业收入"\n', "metric name '营业收入'"),
        ('def f():\n    """Ratio ``cogs / revenue``."""\n', "identifier 'cogs'"),
        ('def f():\n    """A formula ``net_profit - x``."""\n', "metric id 'net_profit'"),
        ('def f():\n    """Give metric_id=revenue."""\n', "identifier 'revenue'"),
        ('import re\nP = re.compile("revenue")\n', "literal 'revenue'"),
    ],
)
def test_a_sample_name_in_code_is_found(tmp_path: Path, sample: Sample, source, expected):
    path = tmp_path / "m.py"
    path.write_text(source, encoding="utf-8")
    found = report(python_texts(path, name="m.py"), Rules(sample))
    assert any(expected in f for f in found), found
    assert all(f.startswith("m.py:") for f in found)


@pytest.mark.parametrize(
    "source",
    [
        'def f():\n    """The revenue of a shop and its equity, in its own unit (万元, kUSD)."""\n',
        'x = catalog.role("headcount")\n',
        'import re\nTAX = re.compile(r"goods and services tax")\n',
        'x = "profit / equity_capital"\n',
        'x = "ast.Yield: yield"\n',
    ],
)
def test_words_that_only_look_like_the_sample_pass(tmp_path: Path, sample: Sample, source):
    path = tmp_path / "m.py"
    path.write_text(source, encoding="utf-8")
    assert report(python_texts(path, name="m.py"), Rules(sample)) == []


def test_label_keys_texts_and_notebooks_are_checked(tmp_path: Path, sample: Sample):
    rules = Rules(sample)
    key = Text("x.yaml:1", "kpi.metric.revenue", "label_key")
    text = Text("x.yaml:1", "Revenue and cost forecast", "label_text")
    zh = Text("x.yaml:2", "{entity}净利润低于目标", "label_text")
    cell = Text("nb cell 3 line 1", 'result.chart(metric="revenue")', "data")
    fine = Text("x.yaml:3", "{metric} of {entity} in {unit}", "label_text")
    assert rules.offences(key) == ["key segment 'revenue'"]
    assert rules.offences(text) == ["metric name 'Revenue'"]
    assert rules.offences(zh) == ["metric name '净利润'"]
    assert rules.offences(cell) == ["word 'revenue'"]
    assert rules.offences(fine) == []
