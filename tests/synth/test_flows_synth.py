"""`python -m flows.synth` as a user runs it, against a fake OpenAI-compatible server (a thread in this process:
the command's contract, not the engine, is under test here; test_synth_vllm.py runs the real one): wrong input
is one line before any work, and a run answers `SELECT * FROM synthetic`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, cli_env
from tests.synth.scripted_stage import run_stage_at, scripted_engine, synth_stage_config


def _synth(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flows.synth", *args],
        cwd=REPO_ROOT,
        env=cli_env(tmp, PREFECT_LOGGING_LEVEL="WARNING"),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory) -> tuple[Path, Path]:
    """A finished `general` run to seed from, and a stage config (the seed run's, without its [synth]); once per
    module: the tests only read it."""
    tmp = tmp_path_factory.mktemp("seed-run")
    cfg = synth_stage_config(tmp / "seed", tmp / "no-model", "http://127.0.0.1:9", count=1)
    cfg.write_text(cfg.read_text().split("[synth]")[0])
    run = tmp / "general"
    run_stage_at(cfg, run)
    return run, cfg


def test_wrong_input_is_one_line_before_any_work(tmp_path, seed_run, fake_model):
    run, cfg = seed_run
    out = tmp_path / "out"
    common = ["--count", "3", "--out", str(out), "--config", str(cfg)]
    cases = [
        (["--from", str(tmp_path / "nothing"), "--model", str(fake_model)], "no finished corpus there"),
        (["--from", str(run), "--model", str(tmp_path)], "not a Hugging Face model folder"),
        (["--from", str(run), "--model", str(fake_model), "--servers", "127.0.0.1:8000"], "expected a base URL"),
        (["--from", str(run), "--model", str(fake_model), "--templates", "nope"], "unknown template 'nope'"),
    ]
    for args, message in cases:
        res = _synth(tmp_path, *args, *common)
        assert res.returncode == 2, res.stderr[-2000:]
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], res.stderr
    assert not out.exists()  # nothing was started or written


def test_a_run_answers_the_synthetic_query(tmp_path, seed_run, fake_model, fake_engines):
    run, cfg = seed_run
    engine = scripted_engine(fake_engines)
    out = tmp_path / "out"
    res = _synth(
        tmp_path,
        "--from",
        str(run),
        "--model",
        str(fake_model),
        "--count",
        "6",
        "--out",
        str(out),
        "--servers",
        engine.url,
        "--templates",
        "textbook_section",
        "--config",
        str(cfg),
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "synth" in res.stdout  # the funnel has the synth row
    q = subprocess.run(
        [
            sys.executable,
            "-m",
            "flows.query",
            "--out",
            str(out),
            "--csv",
            "SELECT doc_id, seed_doc_id, template, template_version, model, model_sha256, finish_reason, "
            "fate FROM synthetic ORDER BY doc_id",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert q.returncode == 0, q.stderr
    rows = [line.split(",") for line in q.stdout.strip().splitlines()[1:]]
    assert len(rows) == 6 and len(engine.prompts) == 6
    # Seeds are documents of the seed run (its ids), and a copy of a seed-run document lost to it.
    from flows.query import connect

    seed_ids = {i for (i,) in connect(run).execute("SELECT id FROM docs").fetchall()}
    assert {r[1] for r in rows} <= seed_ids
    assert "exact_dedup_duplicate" in {r[7] for r in rows} and "kept" in {r[7] for r in rows}
