"""The query path is read-only and confined to the run folder: each attack of issue 23 (reading, writing and
attaching files, extensions, settings, several statements, a crafted run folder) is refused with one line, and
nothing is read or written outside the run folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from flows import query
from flows import report as report_cli
from flows.query import RunFolderError, connect

SECRET = "SECRET-not-in-any-run-7f3a"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the run with a file the query must not read."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.csv").write_text(f"token\n{SECRET}\n")
    return folder


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory: a relative path, or DuckDB's default spill folder `.tmp`, would land here."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in folder.rglob("*")}


def _cli(capsys: pytest.CaptureFixture[str], run: Path, sql: str, *flags: str) -> tuple[int, str, str]:
    rc = query.main(["--out", str(run), "--csv", *flags, sql])
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def test_views_read_the_run_after_the_lockdown(finished_run, capsys, cwd):
    summary = json.loads((finished_run / "funnel.json").read_text())
    rc, out, err = _cli(capsys, finished_run, "SELECT count(*) AS n FROM docs")
    assert rc == 0, err
    assert out.splitlines() == ["n", str(summary["docs_final"])]
    con = connect(finished_run)
    settings = dict(
        con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', 'lock_configuration', "
            "'autoinstall_known_extensions', 'autoload_known_extensions', 'allow_community_extensions', 'temp_directory')"
        ).fetchall()
    )
    assert settings == {
        "enable_external_access": "false",
        "lock_configuration": "true",
        "autoinstall_known_extensions": "false",
        "autoload_known_extensions": "false",
        "allow_community_extensions": "false",
        "temp_directory": "",
    }
    assert con.execute("SELECT count(*) FROM shards").fetchone()[0] > 0  # the placements stay readable too


ATTACKS = [
    ("SELECT * FROM read_csv('{secret}')", "Permission Error: Cannot access file"),
    ("SELECT * FROM read_text('{secret}')", "Permission Error: Cannot access file"),
    ("SELECT * FROM read_csv('/etc/passwd')", 'Permission Error: Cannot access file "/etc/passwd"'),
    ("SELECT * FROM glob('{outside}/*')", "Permission Error: Cannot access file"),
    ("SELECT * FROM read_csv('{run}/funnel.json')", "Permission Error: Cannot access file"),  # only the views' files
    ("COPY (SELECT * FROM docs) TO '{outside}/copy.csv'", "COPY statements are refused"),
    ("COPY (SELECT 1) TO '{run}/copy.csv'", "COPY statements are refused"),
    ("COPY (SELECT 1) TO 'relative.csv'", "COPY statements are refused"),
    ("ATTACH '{outside}/attached.db' AS other", "ATTACH statements are refused"),
    ("EXPORT DATABASE '{outside}/export'", "EXPORT statements are refused"),
    ("CREATE TABLE copy AS SELECT * FROM docs", "CREATE statements are refused"),
    ("INSTALL httpfs", "INSTALL and LOAD statements are refused"),
    ("LOAD httpfs", "INSTALL and LOAD statements are refused"),
    ("SELECT 1; SELECT 2", "one statement per call, got 2"),
    ("SELECT 1; COPY (SELECT * FROM docs) TO '{outside}/second.csv'", "one statement per call, got 2"),
    ("SET enable_external_access = true", "SET and RESET statements are refused"),
    ("RESET lock_configuration", "SET and RESET statements are refused"),
    ("SET threads = 1", "SET and RESET statements are refused"),
    ("SELECT * FROM query('COPY (SELECT 1) TO ''{outside}/nested.csv''')", "Expected a single SELECT statement"),
]


@pytest.mark.parametrize("template, message", ATTACKS, ids=[a[0][:40] for a in ATTACKS])
def test_attack_is_refused_in_one_line_and_touches_nothing(finished_run, outside, cwd, capsys, template, message):
    sql = template.format(secret=outside / "secret.csv", outside=outside, run=finished_run)
    before = _tree(finished_run)
    rc, out, err = _cli(capsys, finished_run, sql)
    assert rc in (1, 2)
    assert message in _one_line_error(err)
    assert SECRET not in out + err and "root:" not in out
    assert sorted(p.name for p in outside.iterdir()) == ["secret.csv"]
    assert _tree(finished_run) == before
    assert list(cwd.iterdir()) == []


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('{secret}')",
        "COPY (SELECT 1) TO '{outside}/copy.csv'",
        "ATTACH '{outside}/attached.db' AS other",
        "INSTALL httpfs",
        "SET enable_external_access = true",
    ],
)
def test_the_connection_itself_is_locked(finished_run, outside, cwd, sql):
    """What `flows.report` uses, without the CLI's statement check: DuckDB itself refuses."""
    con = connect(finished_run)
    with pytest.raises(duckdb.Error):
        con.execute(sql.format(secret=outside / "secret.csv", outside=outside)).fetchall()
    assert sorted(p.name for p in outside.iterdir()) == ["secret.csv"]
    assert list(cwd.iterdir()) == []


def test_allow_file_access_opens_files_but_not_extensions_or_settings(finished_run, outside, cwd, capsys):
    rc, out, err = _cli(
        capsys, finished_run, f"SELECT * FROM read_csv('{outside / 'secret.csv'}')", "--allow-file-access"
    )
    assert rc == 0 and SECRET in out, err
    rc, _, err = _cli(
        capsys, finished_run, f"COPY (SELECT count(*) FROM docs) TO '{outside / 'n.csv'}'", "--allow-file-access"
    )
    assert rc == 0 and (outside / "n.csv").is_file(), err
    for sql, message in [
        ("INSTALL httpfs", "INSTALL and LOAD"),
        ("SET threads = 1", "SET and RESET"),
        ("SELECT 1; SELECT 2", "one statement per call"),
    ]:
        rc, _, err = _cli(capsys, finished_run, sql, "--allow-file-access")
        assert rc == 2 and message in _one_line_error(err)


# Before issue 23 the stage name went into `SELECT '{stage}' AS stage`: this one ran a COPY on every query.
INJECTION = "general' AS stage, 1 AS x; COPY (SELECT 42 AS pwned) TO 'pwned.csv'; SELECT 'x"


def _crafted_copy(finished_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "crafted"
    shutil.copytree(finished_run, run, symlinks=True)
    return run


def test_stage_name_injection_is_a_clear_error(finished_run, tmp_path, cwd, capsys):
    run = _crafted_copy(finished_run, tmp_path)
    funnel = json.loads((run / "funnel.json").read_text())
    (run / "funnel.json").write_text(json.dumps({**funnel, "stage": INJECTION}))
    shutil.copytree(run / "shards" / "general", run / "shards" / INJECTION)  # the placements the glob would find
    with pytest.raises(RunFolderError, match="is not one of"):
        connect(run)
    rc, out, err = _cli(capsys, run, "SELECT count(*) FROM docs")
    assert rc == 2 and "is not one of ['general', 'reasoning', 'long_context']" in _one_line_error(err)
    rc = report_cli.main([str(run)])
    _, err = capsys.readouterr()
    assert rc == 2 and "is not one of" in _one_line_error(err)
    assert list(cwd.iterdir()) == []


def test_a_stage_folder_with_an_unknown_name_is_ignored(finished_run, tmp_path, cwd, capsys):
    """No funnel.json: the stage is the only known stage folder under shards/; a crafted folder name is not one."""
    run = _crafted_copy(finished_run, tmp_path)
    (run / "funnel.json").unlink()
    (run / "shards" / "general").rename(run / "shards" / INJECTION)
    rc, out, err = _cli(capsys, run, "SELECT count(*) AS n FROM shards")
    assert rc == 0 and out.splitlines() == ["n", "0"], err
    assert list(cwd.iterdir()) == []


@pytest.mark.parametrize("where", ["corpus/lineage/zz-part-00000.parquet", "corpus/docs/domain=web/source=zz"])
def test_a_link_out_of_the_run_folder_is_refused(finished_run, tmp_path, outside, cwd, capsys, where):
    run = _crafted_copy(finished_run, tmp_path)
    duckdb.sql(f"COPY (SELECT '{SECRET}' AS doc_id) TO '{outside / 'zz-part-00000.parquet'}'")
    link = run / where
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside / link.name if link.suffix else outside)
    with pytest.raises(RunFolderError, match="leads outside the run folder"):
        connect(run)
    rc, out, err = _cli(capsys, run, "SELECT * FROM lineage")
    assert rc == 2 and "leads outside the run folder" in _one_line_error(err) and SECRET not in out
