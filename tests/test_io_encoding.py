"""Text encodings: detected with a stated reason, mojibake refused, ``input_encoding`` honoured.

Latin-1 names can be valid GB18030 bytes ('Jérôme Müller' -> 'J閞鬽e M黮ler'); such a guess
is refused with the file, the line and both readings, unless the params state the encoding.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from perflink._io_read import decode_bytes, encoding_for, mojibake_line, text_codec
from perflink.errors import InputError, ParamsError
from perflink.io import load_inputs, read_table
from perflink.params import load_params

ENTITIES = """\
entity_id,name_zh,name_en,parent_id,kind,center_type,business_line,manager
G,集团,Group,,group,,shared,Jérôme Müller
S1,华东制造有限公司,East Manufacturing,G,subsidiary,,manufacturing,Hélène Bérard
D1,一车间,Atelier Nord,S1,department,cost,manufacturing,Renée Lefèvre
"""
# The same table without Chinese: what a French or German ERP exports in Latin-1.
LATIN = ENTITIES.replace("集团", "Groupe").replace("华东制造有限公司", "Usine Est")
LATIN = LATIN.replace("一车间", "Atelier 1")
CHINESE = """\
entity_id,name_zh,name_en,parent_id,kind,center_type,business_line,manager
G,华东集团,East Group,,group,,shared,张伟
S1,华东制造有限公司,ERP-华东,G,subsidiary,,manufacturing,李娜
D1,A级车间,D1车间,S1,department,cost,manufacturing,王强
"""
FACTS = "entity_id,period,metric_id,value,source_system,source_ref\nD1,2026-09,revenue,1,ERP,\n"
TARGETS = "entity_id,year,period,metric_id,target,kind\nD1,2026,,revenue,5,budget\n"
SCHEMES = "scheme_id,center_type,entity_id,metric_id,weight,category,rule\n"


def _write(folder: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return path


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "perflink.io" and r.levelno >= logging.WARNING
    ]


# --------------------------------------------------------------------------- the heuristic


@pytest.mark.parametrize("text", ["J閞鬽e M黮ler", "H閘鑞e B閞ard", "abc\nR閚閑 x"])
def test_mojibake_line_flags_latin_read_as_gb18030(text):
    assert mojibake_line(text) == text.count("\n") + 1


@pytest.mark.parametrize(
    "text",
    ["华东制造有限公司", "张伟", "ERP-华东", "A级车间", "D1车间", "凭证-2026-0917", "Jérôme",
     "East Group 华东集团", "王喆", ""],
)  # fmt: skip
def test_mojibake_line_leaves_real_chinese_and_mixed_text(text):
    assert mojibake_line(text) is None


# --------------------------------------------------------------------------- detection


def test_latin1_read_as_gb18030_is_refused_naming_file_line_and_fix(tmp_path):
    raw = LATIN.encode("latin-1")
    assert raw.decode("gb18030")  # the trap: these bytes are valid GB18030
    path = _write(tmp_path, "entities.csv", LATIN, "latin-1")
    with pytest.raises(InputError) as exc:
        read_table(path, "entities")
    msg = str(exc.value)
    assert msg.startswith("entities.csv:")
    assert "line 2" in msg and "J閞鬽e M黮ler" in msg and "Jérôme Müller" in msg
    assert "input_encoding: {entities: cp1252}" in msg


def test_stated_encoding_reads_latin1_right(tmp_path):
    path = _write(tmp_path, "entities.csv", LATIN, "latin-1")
    df = read_table(path, "entities", encoding="latin-1")
    assert list(df["manager"]) == ["Jérôme Müller", "Hélène Bérard", "Renée Lefèvre"]
    assert df.attrs["encoding"] == "iso8859-1"
    by_kind = read_table(path, "entities", encoding={"entities": "cp1252", "facts": "utf-8"})
    assert by_kind.loc[0, "manager"] == "Jérôme Müller"


def test_stated_gb18030_accepts_what_the_guess_refuses(tmp_path):
    # The escape hatch for a real Chinese file the heuristic doubts: say it is GB18030.
    path = _write(tmp_path, "entities.csv", LATIN, "latin-1")
    df = read_table(path, "entities", encoding="gb18030")
    assert df.loc[0, "manager"] == "J閞鬽e M黮ler"


def test_real_gb18030_chinese_decoded_without_complaint(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="perflink.io")
    path = _write(tmp_path, "entities.csv", CHINESE, "gb18030")
    df = read_table(path, "entities")
    assert df.attrs["encoding"] == "gb18030"
    assert list(df["name_en"].iloc[:2]) == ["East Group", "ERP-华东"]
    assert df.loc[2, "name_zh"] == "A级车间"
    assert _warnings(caplog) == []
    assert "decoded as gb18030: not UTF-8" in caplog.text  # the choice and why, at INFO


def test_utf8_with_bom_unchanged(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="perflink.io")
    path = _write(tmp_path, "entities.csv", ENTITIES, "utf-8-sig")
    df = read_table(path, "entities")
    assert df.attrs["encoding"] == "utf-8-sig"
    assert df.columns[0] == "entity_id" and df.loc[0, "manager"] == "Jérôme Müller"
    assert _warnings(caplog) == []


def test_stated_utf8_drops_bom(tmp_path):
    path = _write(tmp_path, "entities.csv", ENTITIES, "utf-8-sig")
    df = read_table(path, "entities", encoding="utf-8")
    assert df.columns[0] == "entity_id"


def test_stated_encoding_that_does_not_fit_is_refused(tmp_path):
    path = _write(tmp_path, "entities.csv", LATIN, "latin-1")
    with pytest.raises(InputError, match=r"entities.csv: does not decode as 'utf-8'.*line 2"):
        read_table(path, "entities", encoding="utf-8")


def test_charset_normalizer_guess_is_a_warning_with_alternatives(caplog):
    # Not UTF-8, not GB18030 (an accented letter before a comma): charset-normalizer guesses.
    names = ["José", "Renée", "François Lefèvre", "Jürgen Groß", "Hélène Bérard", "André"]
    text = "entity_id,name,manager\n" + "".join(
        f"D{i},Atelier de production {i},{n}\n" for i, n in enumerate(names)
    )
    decoded, chosen = decode_bytes(text.encode("cp1252"), "e.csv", kind="entities")
    assert chosen.startswith("cp125")
    (warning,) = _warnings(caplog)
    assert "e.csv" in warning and f"read as {chosen}" in warning
    assert "charset-normalizer" in warning and "input_encoding: {entities:" in warning
    (record,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    note = record.perflink_note  # what the review puts on the index page
    assert note["kind"] == "encoding_guess" and note["encoding"] == chosen
    assert note["file"] == "e.csv" and note["input"] == "entities"


@pytest.mark.parametrize("name", ["no-such-codec", "rot13", "", 7])
def test_unknown_encoding_is_a_params_error(tmp_path, name):
    with pytest.raises(ParamsError, match="input_encoding: .* is not a text encoding"):
        text_codec(name)
    path = _write(tmp_path, "entities.csv", ENTITIES)
    if isinstance(name, str):
        with pytest.raises(ParamsError, match="not a text encoding"):
            read_table(path, "entities", encoding=name)


def test_encoding_for_resolves_one_codec_or_per_input():
    assert encoding_for(None, "facts") is None
    assert encoding_for("latin-1", "facts") == "iso8859-1"
    assert encoding_for({"entities": "GBK"}, "entities") == "gbk"
    assert encoding_for({"entities": "GBK"}, "facts") is None


# --------------------------------------------------------------------------- params key


def _review(folder: Path, **extra) -> Path:
    _write(folder, "entities.csv", LATIN, "latin-1")
    _write(folder, "facts.csv", FACTS)
    _write(folder, "targets.csv", TARGETS)
    _write(folder, "schemes.csv", SCHEMES)
    (folder / "catalog").mkdir()
    params = {
        "quarter": "2026Q3",
        "inputs": {k: f"{k}.csv" for k in ("entities", "facts", "targets", "schemes")},
        "catalog": "catalog",
        **extra,
    }
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("stated", ["latin-1", {"entities": "cp1252"}])
def test_params_input_encoding_is_honoured(tmp_path, stated):
    params = load_params(_review(tmp_path, input_encoding=stated))
    assert params.input_encoding == stated
    inputs = load_inputs(params.input_paths, encoding=params.input_encoding)
    assert inputs.entities.loc[1, "manager"] == "Hélène Bérard"
    with pytest.raises(InputError, match="J閞鬽e"):
        load_inputs(params.input_paths)


@pytest.mark.parametrize(
    ("stated", "match"),
    [("latin-99", "latin-99"), ({"entitys": "latin-1"}, "entitys"), (["utf-8"], "input_encoding")],
)
def test_params_bad_input_encoding(tmp_path, stated, match):
    with pytest.raises(ParamsError, match=match) as exc:
        load_params(_review(tmp_path, input_encoding=stated))
    assert "input_encoding" in str(exc.value)
