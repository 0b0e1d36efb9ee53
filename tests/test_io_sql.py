"""Input tables from SQL databases (perflink._io_sql via perflink.io and the params).

Unit tests use SQLite files through SQLAlchemy. The slow test loads the sample into a real
PostgreSQL server, runs two review tasks from it and from the CSV files, and compares the
saved tables. It uses the server of ``PERFLINK_TEST_PG_URL`` (a superuser URL; ``.ci/run``
starts one) or else starts a throwaway cluster with Debian's ``initdb``/``pg_ctl``; it is
skipped only when no PostgreSQL binaries exist.
"""

from __future__ import annotations

import glob
import logging
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from perflink.errors import InputError, ParamsError, PerflinkError
from perflink.io import SqlSource, load_inputs, read_table
from perflink.params import load_params

sa = pytest.importorskip("sqlalchemy")

ENTITIES = pd.DataFrame(
    {
        "entity_id": ["G", "S1", "D1", "D2"],
        "name_zh": ["集团", "一公司", "一车间", "销售部"],
        "name_en": ["Group", "First Co.", "Workshop 1", "Sales"],
        "parent_id": [None, "G", "S1", "S1"],
        "kind": ["group", "subsidiary", "department", "department"],
        "center_type": [None, None, "cost", "profit"],
        "business_line": ["shared", "manufacturing", "manufacturing", "manufacturing"],
        "manager": ["甲", "乙", "丙", "丁"],
    }
)
FACTS = pd.DataFrame(
    {
        "entity_id": ["D1", "D2", "D2"],
        "period": ["2026-09", "2026-08", "2026-07"],
        "metric_id": ["revenue", "revenue", "units"],
        "value": [1234.5, 800.0, 120.0],  # a typed REAL column: rendered to text, then checked
        "source_system": ["ERP", "ERP", "MES"],
        "source_ref": ["V-001", None, None],
    }
)
TARGETS = pd.DataFrame(
    {
        "entity_id": ["D1"],
        "year": [2026],
        "period": ["2026-09"],
        "metric_id": ["revenue"],
        "target": [450.0],
        "kind": ["assessment"],
    }
)
SCHEMES = pd.DataFrame(
    {
        "scheme_id": ["P1"],
        "center_type": ["profit"],
        "entity_id": [None],
        "metric_id": ["revenue"],
        "weight": [1.0],
        "category": ["financial"],
        "rule": ["linear"],
        "floor": [0.0],
        "cap": [1.2],
        "rule_params": [None],
    }
)
TABLES = {"entities": ENTITIES, "facts": FACTS, "targets": TARGETS, "schemes": SCHEMES}


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'inputs.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for name, frame in TABLES.items():
            frame.to_sql(name, conn, index=False)
    engine.dispose()
    return url


# --------------------------------------------------------------------------- SQLite units


def test_read_table_from_table_and_query(sqlite_url: str, tmp_path: Path) -> None:
    df = read_table(SqlSource(url=sqlite_url, table="facts"), "facts")
    assert list(df["value"]) == [1234.5, 800.0, 120.0]
    assert str(df["period"].dtype) == "period[M]" and df["period"].iat[0] == pd.Period("2026-09")
    assert df["source_ref"].isna().tolist() == [False, True, True]
    assert df.attrs["source"] == "database table 'facts'"

    q = SqlSource(url=sqlite_url, query="select * from facts where metric_id = 'revenue'")
    assert len(read_table(q, "facts")) == 2

    # the same rows written as CSV load to the same frame
    csv = tmp_path / "facts.csv"
    FACTS.to_csv(csv, index=False)
    pd.testing.assert_frame_equal(
        read_table(csv, "facts"), read_table(SqlSource(url=sqlite_url, table="facts"), "facts")
    )


def test_load_inputs_accepts_mappings(sqlite_url: str) -> None:
    paths = {k: {"url": sqlite_url, "table": k} for k in TABLES}
    inputs = load_inputs(paths, known_metrics={"revenue", "units"})
    assert len(inputs.entities) == 4 and len(inputs.facts) == 3 and inputs.bonus.empty
    assert isinstance(inputs.paths["facts"], SqlSource)
    assert "sqlite" not in inputs.to_frame().to_string()


def test_bad_rows_are_numbered_as_records(sqlite_url: str) -> None:
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text("create table facts_bad as select * from facts"))
        conn.execute(sa.text("update facts_bad set period = '2026-13' where entity_id = 'D2'"))
    engine.dispose()
    with pytest.raises(InputError) as excinfo:
        read_table(SqlSource(url=sqlite_url, table="facts_bad"), "facts")
    msg = str(excinfo.value)
    assert "facts (database table 'facts_bad') records 2, 3" not in msg  # one line per row
    assert "facts (database table 'facts_bad') record 2, column 'period': '2026-13'" in msg
    assert "record 3, column 'period'" in msg
    assert sqlite_url not in msg

    query = "select entity_id, period, metric_id from facts"  # no value column
    with pytest.raises(InputError, match=r"database query 'select entity_id.*missing required"):
        read_table(SqlSource(url=sqlite_url, query=query), "facts")


def test_unknown_table_and_bad_query(sqlite_url: str) -> None:
    with pytest.raises(InputError, match=r"there is no table 'factz'"):
        read_table(SqlSource(url=sqlite_url, table="factz"), "facts")
    with pytest.raises(InputError, match=r"cannot read from sqlite:///.*OperationalError"):
        read_table(SqlSource(url=sqlite_url, query="select nope from facts"), "facts")


def test_secret_url_never_in_messages_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    password = "pw-" + secrets.token_hex(8)
    app = "app-" + secrets.token_hex(8)
    # Nothing listens on port 1: the connection is refused.
    url = f"postgresql+psycopg://someone:{password}@127.0.0.1:1/db?application_name={app}"
    source = SqlSource(url=url, table="facts")
    assert password not in repr(source) and password not in str(source)
    with caplog.at_level(logging.DEBUG), pytest.raises(InputError) as excinfo:
        read_table(source, "facts")
    msg = str(excinfo.value)
    assert "someone:***@127.0.0.1:1/db" in msg
    assert "Check that the server is running" in msg
    for secret in (password, app):
        assert secret not in msg and secret not in caplog.text
        assert excinfo.value.__cause__ is None and excinfo.value.__suppress_context__


def test_bad_sources_raise_perflink_errors(tmp_path: Path) -> None:
    with pytest.raises(PerflinkError, match="exactly one of 'table'"):
        load_inputs(dict.fromkeys(TABLES, {"url": "sqlite://", "table": "a", "query": "b"}))
    with pytest.raises(InputError, match="no database driver for 'nosuchdb'"):
        read_table(SqlSource(url="nosuchdb://h/x", table="t"), "facts")
    with pytest.raises(InputError, match="not a SQLAlchemy URL"):
        read_table(SqlSource(url="not a url", table="t"), "facts")


def _params_file(folder: Path, inputs: dict) -> Path:
    (folder / "catalog").mkdir(exist_ok=True)
    path = folder / "params.yaml"
    text = yaml.safe_dump({"quarter": "2026Q3", "inputs": inputs, "catalog": "catalog"})
    path.write_text(text, encoding="utf-8")
    return path


def test_params_take_database_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "postgresql+psycopg://u:" + secrets.token_hex(8) + "@db.example/x"
    monkeypatch.setenv("PERFLINK_TEST_DB", secret)
    db = {k: {"url": "${PERFLINK_TEST_DB}", "table": k} for k in TABLES}
    db["facts"] = {"url": "${PERFLINK_TEST_DB}", "query": "select * from facts"}
    params = load_params(_params_file(tmp_path, db))
    assert params.input_paths["entities"].url == secret
    assert params.input_paths["facts"].query == "select * from facts"
    assert params.redacted()["inputs"]["entities"] == {
        "url": "${PERFLINK_TEST_DB}",
        "table": "entities",
    }
    assert secret not in repr(params)


def test_params_reject_bad_database_sources(tmp_path: Path) -> None:
    both = {"url": "sqlite://", "table": "t", "query": "select 1"}
    with pytest.raises(ParamsError, match=r"inputs\.facts.*exactly one of"):
        load_params(
            _params_file(tmp_path, {k: both if k == "facts" else f"{k}.csv" for k in TABLES})
        )
    literal = {"url": "postgresql://u:hunter22@h/db", "table": "t"}
    with pytest.raises(ParamsError, match="holds a password written in the params") as excinfo:
        load_params(_params_file(tmp_path, dict.fromkeys(TABLES, literal)))
    assert "hunter22" not in str(excinfo.value)


# --------------------------------------------------------------------------- PostgreSQL


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_cluster(bindir: Path):
    """Start a throwaway cluster on 127.0.0.1 (scram passwords); yield its superuser URL."""
    root = Path(tempfile.mkdtemp(prefix="perflink-pg-"))
    password = secrets.token_hex(12)
    (root / "pw").write_text(password + "\n", encoding="utf-8")
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(root, "postgres")
        shutil.chown(root / "pw", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()
    subprocess.run(
        [*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "perflink", "-E", "UTF8",
         "--pwfile", str(root / "pw"), "--auth-host=scram-sha-256", "--auth-local=trust"],
        check=True, capture_output=True,
    )  # fmt: skip
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"),
         "-w", "start"],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield f"postgresql+psycopg://perflink:{password}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False, capture_output=True,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def pg_admin_url():
    given = os.environ.get("PERFLINK_TEST_PG_URL")
    if given:
        yield given
        return
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries (initdb); install Debian's postgresql (.ci/run does)")
    yield from _start_cluster(bindir)


@pytest.fixture(scope="module")
def pg_url(pg_admin_url: str):
    """A fresh role with a random password, owning a fresh database; its URL."""
    name = "perflink_t" + secrets.token_hex(4)
    password = "pw" + secrets.token_hex(12)
    admin = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"create role {name} login password '{password}'"))
        conn.execute(sa.text(f"create database {name} owner {name}"))
    host = sa.make_url(pg_admin_url)
    url = host.set(username=name, password=password, database=name).render_as_string(
        hide_password=False
    )
    try:
        yield url + f"?application_name=app{secrets.token_hex(6)}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"drop database if exists {name} with (force)"))
            conn.execute(sa.text(f"drop role if exists {name}"))
        admin.dispose()


def _output_blobs(folder: Path):
    import pyarrow.parquet as pq

    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            yield path, (frame.to_csv() + str(pq.read_metadata(path).metadata)).encode()
        elif path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as zf:
                for part in zf.namelist():
                    yield path, zf.read(part)
        yield path, path.read_bytes()


@pytest.mark.slow
@pytest.mark.kernel
def test_review_from_postgresql_matches_csv(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from perflink.runner import run_review
    from perflink.sample import generate

    csv_params = generate(tmp_path / "sample", seed=0)
    sample = csv_params.parent
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        for kind in ("entities", "facts", "targets", "schemes", "adjustments", "bonus"):
            frame = pd.read_csv(sample / f"{kind}.csv", dtype=str, keep_default_na=False)
            if kind == "facts":  # a typed column too: double precision, rendered back to text
                frame["value"] = pd.to_numeric(frame["value"])
            frame.to_sql(kind, conn, index=False, chunksize=5000, method="multi")
    engine.dispose()

    monkeypatch.setenv("PERFLINK_PG_URL", pg_url)
    db = yaml.safe_load(csv_params.read_text(encoding="utf-8"))
    db["inputs"] = {k: {"url": "${PERFLINK_PG_URL}", "table": k} for k in db["inputs"]}
    db_params = sample / "params_db.yaml"
    db_params.write_text(yaml.safe_dump(db, allow_unicode=True), encoding="utf-8")

    tasks = ["mapping", "anomaly"]
    from_csv = run_review(csv_params, out_dir=tmp_path / "csv", tasks=tasks, jobs=2)
    from_db = run_review(db_params, out_dir=tmp_path / "db", tasks=tasks, jobs=2)
    assert from_csv.status == from_db.status == "ok"

    names = sorted(p.name for p in (from_csv.report_dir / "tables").glob("*.parquet"))
    assert names and names == sorted(
        p.name for p in (from_db.report_dir / "tables").glob("*.parquet")
    )
    for name in names:
        pd.testing.assert_frame_equal(
            pd.read_parquet(from_csv.report_dir / "tables" / name),
            pd.read_parquet(from_db.report_dir / "tables" / name),
            obj=name,
        )

    manifest = from_db.manifest["inputs"]
    assert [e["path"] for e in manifest][0] == {"url": "${PERFLINK_PG_URL}", "table": "entities"}
    assert all(len(e["sha256"]) == 64 and e["rows"] > 0 for e in manifest)

    url = sa.make_url(pg_url)
    needles = [pg_url, url.password, url.query["application_name"]]
    assert all(len(n) >= 10 for n in needles)
    for path, blob in _output_blobs(from_db.report_dir):
        for needle in needles:
            assert needle.encode() not in blob, f"a secret of the URL appears in {path}"


def test_database_read_once_and_hashed_during_the_read(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import perflink._io_sql as io_sql
    from perflink import _runner_output as out
    from perflink.params import load_params as load

    reads: list[str] = []
    real = io_sql.read_sql_raw

    def counting(source, kind):
        reads.append(kind)
        return real(source, kind)

    monkeypatch.setattr("perflink.io.read_sql_raw", counting)
    monkeypatch.setattr(io_sql, "read_sql_raw", counting)
    facts = read_table(SqlSource(url=sqlite_url, table="facts"), "facts")
    assert reads == ["facts"]
    expected = io_sql.content_sha256(real(SqlSource(url=sqlite_url, table="facts"), "facts"))
    assert facts.attrs["sha256"] == expected and facts.attrs["rows_read"] == 3

    monkeypatch.setenv("PERFLINK_TEST_DB", sqlite_url)
    folder = Path(sqlite_url.removeprefix("sqlite:///")).parent
    params = load(_params_file(folder, {k: {"url": "${PERFLINK_TEST_DB}", "table": k}
                                        for k in TABLES}))  # fmt: skip
    inputs = load_inputs(params.input_paths, known_metrics={"revenue", "units"})
    reads.clear()
    entries, _ = out.input_hashes(params, inputs=inputs)  # the manifest reads nothing again
    assert reads == []
    row = {e["name"]: e for e in entries}["facts"]
    assert row["sha256"] == expected and row["rows"] == 3
    assert sqlite_url not in str(entries)
    out.input_hashes(params)  # without the inputs: read (and hashed) here
    assert sorted(reads) == sorted(TABLES)
