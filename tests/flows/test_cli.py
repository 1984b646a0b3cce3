"""The command-line contract: `python -m flows.stage` (ephemeral Prefect and a real `prefect server`) and
`python -m flows.query`."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import REPO_ROOT, cli_env
from tests.flows.corpus_fixture import RECORDS, write_corpus


def _cli(args: list[str], env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def _help(main, capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def _explained_arguments(help_text: str) -> dict[str, str]:
    """Each argument of an argparse help text (its first flag, or its choices) -> the text that explains it."""
    out: dict[str, str] = {}
    section = name = None
    for line in help_text.splitlines():
        if re.match(r"^\S.*:$", line):
            section, name = line, None
        elif section not in ("positional arguments:", "options:"):
            continue
        elif entry := re.match(r"^  (\S.*?)(?: {2,}(.*))?$", line):
            name = entry.group(1).split()[0].rstrip(",")
            out[name] = entry.group(2) or ""
        elif name and line.startswith("        "):
            out[name] += " " + line.strip()
    return out


def test_help_explains_the_commands(finished_run, monkeypatch, capsys):
    """Every argument of both commands has an explanation, the stage choices are the stages, the views the query
    help names are the views a run has, and every example in the query help runs on a real run."""
    from core.paths import STAGES
    from flows import query, stage

    monkeypatch.setenv("COLUMNS", "100")
    for command in (stage, query):
        arguments = _explained_arguments(_help(command.main, capsys))
        assert len(arguments) > 3 and all(len(text.split()) >= 2 for text in arguments.values()), arguments
    assert "{" + ",".join(STAGES) + "}" in _explained_arguments(_help(stage.main, capsys))
    query_help = _help(query.main, capsys)
    assert "--allow-file-access" in _explained_arguments(query_help)
    con = query.connect(finished_run)
    views = {v for (v,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    # What `lineage` and `synthetic` are built from: not named in the help.
    helpers = {"lineage_steps", "lineage_labelled", "synthetic_generations"}
    description = " ".join(query_help.split("\n\n")[1].split())
    named = set(re.findall(r"\b(" + "|".join(sorted(views)) + r")\b", description))
    assert named == views - helpers, description
    doc_id = con.execute("SELECT min(doc_id) FROM lineage WHERE action = 'dropped'").fetchone()[0]
    examples = re.findall(r'python -m flows\.query "(.*?)"', query_help.split("examples:", 1)[1], re.DOTALL)
    assert len(examples) >= 5
    for sql in examples:
        sql = " ".join(sql.split()).replace("<id>", doc_id)
        assert query.main(["--out", str(finished_run), "--csv", sql]) == 0, (sql, capsys.readouterr().err)
        assert capsys.readouterr().out.strip(), sql  # at least a header row


def test_wrong_sources_file_is_a_short_clear_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[source]]\nname = 'x'\ndomain = 'poetry'\nformat = 'jsonl'\npath = 'a'\n")
    out = _cli(
        ["-m", "flows.stage", "general", "--sources", str(bad), "--out", str(tmp_path / "o")], cli_env(tmp_path)
    )
    assert out.returncode == 2
    assert "'domain' must be one of" in out.stderr and "Traceback" not in out.stderr


# A finished step's line on the terminal (report.progress.step_line): "<step> <n> unit(s) (<run> run) ...".
STEP_LINE = re.compile(r"^(\w+) +([\d,]+) units? \(([\d,]+) run\) ")
TASK_RECORD = re.compile(r"\| INFO +\| Task run '(\w+):[^']*' - Finished in state Completed\(\)$")


def _error_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if "Traceback" in ln or " ERROR " in ln or "ERROR |" in ln]


def test_default_stage_runs_ephemeral_on_embedded_sources(tmp_path):
    """The README's first command, on the embedded default sources, with no Prefect server running, prints what a
    person reads: one line per step and the funnel, no Prefect task record, no traceback and no ERROR line (the
    private server is shut down cleanly). The task records are in the run's Prefect log, one per unit the step
    lines say ran."""
    from pipeline.layout import RunLayout

    out_dir = tmp_path / "run"
    out = _cli(["-m", "flows.stage", "general", "--out", str(out_dir), "--limit", "25"], cli_env(tmp_path))
    console = out.stdout + out.stderr
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "records read" in out.stdout and "dedup_minhash" in out.stdout  # the funnel table goes to stdout
    assert len(console.splitlines()) <= 60, console
    assert not _error_lines(console), console
    assert "Task run" not in console and "Flow run" not in console, console
    ran = {m[1]: int(m[3].replace(",", "")) for m in map(STEP_LINE.match, out.stderr.splitlines()) if m}
    assert {"ingest", "filter", "dedup_exact", "dedup_minhash_edges", "decontam", "final", "tokenize"} <= set(ran)
    layout = RunLayout(out_dir)
    records = [m[1] for m in map(TASK_RECORD.search, layout.prefect_log.read_text().splitlines()) if m]
    assert {step: records.count(step) for step in ran} == ran  # every unit that ran has its record in the file
    server_log = layout.prefect_server_log.read_text()
    assert not _error_lines(server_log), server_log[-3000:]
    summary = json.loads((out_dir / "funnel.json").read_text())
    assert summary["docs_final"] > 0
    assert summary["records_read"] == summary["docs_final"] + summary["dropped"] + summary["quarantined"]
    q = _cli(
        [
            "-m",
            "flows.query",
            "--out",
            str(out_dir),
            "--csv",
            "SELECT domain, count(*) AS n FROM docs GROUP BY 1 ORDER BY 1",
        ],
        cli_env(tmp_path),
    )
    assert q.returncode == 0, q.stderr
    assert "\r" not in q.stdout
    domains = [line.split(",")[0] for line in q.stdout.strip().splitlines()[1:]]
    assert domains == ["books", "code", "stem", "web"]


def test_verbose_brings_the_prefect_records_back_to_the_terminal(tmp_path, prefect_api_env):
    from pipeline.layout import RunLayout

    sources = write_corpus(tmp_path / "corpus")
    out_dir = tmp_path / "run"
    args = ["-m", "flows.stage", "general", "--sources", str(sources), "--out", str(out_dir), "--verbose"]
    out = _cli(args, cli_env(tmp_path, **prefect_api_env))  # the session's server: no private one to start
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    on_terminal = [m[1] for m in map(TASK_RECORD.search, out.stderr.splitlines()) if m]
    in_file = [m[1] for m in map(TASK_RECORD.search, RunLayout(out_dir).prefect_log.read_text().splitlines()) if m]
    assert on_terminal and sorted(on_terminal) == sorted(in_file)
    assert "Flow run" in out.stderr and "records read" in out.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def prefect_server(tmp_path):
    port = _free_port()
    env = cli_env(tmp_path)
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                pytest.fail(f"prefect server exited: {(tmp_path / 'server.log').read_text()[-2000:]}")
            time.sleep(1)
        else:
            pytest.fail("prefect server did not become healthy in 180 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_stage_against_a_running_prefect_server(tmp_path, prefect_server):
    sources = write_corpus(tmp_path / "corpus")
    out_dir = tmp_path / "run"
    env = cli_env(tmp_path, PREFECT_API_URL=prefect_server)
    out = _cli(["-m", "flows.stage", "general", "--sources", str(sources), "--out", str(out_dir)], env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    runs = httpx.post(f"{prefect_server}/flow_runs/filter", json={"limit": 10}, timeout=10).json()
    assert [r["state_type"] for r in runs] == ["COMPLETED"]
    tasks = httpx.post(f"{prefect_server}/task_runs/filter", json={"limit": 200}, timeout=10).json()
    names = {t["name"].split(":")[0] for t in tasks}  # one mapped task run per work unit: "<step>:<unit key>"
    assert {"ingest", "filter", "dedup_exact_keys", "dedup_minhash_edges", "decontam", "final", "tokenize"} <= names
    assert all(t["state_type"] == "COMPLETED" for t in tasks)
    summary = json.loads((out_dir / "funnel.json").read_text())
    assert summary["records_read"] == RECORDS


@pytest.mark.parametrize(
    "table, message",
    [
        ("[filters.langid]\nmin_scor = 0.5\n", "[filters.langid]: unknown key(s) ['min_scor']"),
        ("[shards]\nseq_length = 4096\n", "[shards] unknown key(s) ['seq_length']"),
    ],
)
def test_wrong_stage_table_is_a_short_clear_error(tmp_path, table, message):
    from core.paths import REPO_ROOT as ROOT

    cfg = tmp_path / "stage.toml"
    cfg.write_text(f'sources = "{ROOT / "configs" / "sources" / "default.toml"}"\n{table}')
    out = _cli(["-m", "flows.stage", "general", "--config", str(cfg), "--out", str(tmp_path / "o")], cli_env(tmp_path))
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("path", ["data/*.jsonl", "data/named.jsonl"])
def test_a_source_that_matches_nothing_stops_the_stage_before_any_work(tmp_path, path):
    """A glob or a literal path with no file: exit 2, one line naming the sources file, the source and the path,
    and no run folder (before: rc 0, a warning, and an empty corpus with shards)."""
    (tmp_path / "data").mkdir()
    sources = tmp_path / "sources.toml"
    sources.write_text(f'[[source]]\nname = "gone"\ndomain = "web"\nformat = "jsonl"\npath = "{path}"\n')
    out_dir = tmp_path / "run"
    out = _cli(["-m", "flows.stage", "general", "--sources", str(sources), "--out", str(out_dir)], cli_env(tmp_path))
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"error: {sources}: [[source]] #1 (gone): path '{path}' matches no file"), lines[0]
    assert not out_dir.exists()


def test_the_funnel_table_ends_with_the_warnings_of_optional_sources_and_of_shards():
    from flows.stage import format_funnel

    why = "stage general: the manifest holds 0 shards: the mixture selected 1 document(s) of 12 tokens"
    summary = {
        "stage": "general",
        "run_dir": "runs/general",
        "funnel": [],
        "records_read": 1,
        "docs_final": 1,
        "dropped": 0,
        "quarantined": 0,
        "sources_without_files": ["maybe"],
        "shards": {"warnings": [why]},
    }
    tail = format_funnel(summary).splitlines()[-2:]
    assert tail == ["WARNING: no input file matched for optional source(s) ['maybe']", f"WARNING: {why}"]
