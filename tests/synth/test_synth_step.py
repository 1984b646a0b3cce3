"""The synth step inside a stage, against fake OpenAI-compatible servers (a thread in this process that answers
like vLLM; the real engine end to end is in test_synth_vllm.py): every generation gets a fate, a synthetic copy
of a real document loses to it in exact dedup, provenance is queryable, survivors reach the shards, a rerun
sends nothing, a SIGKILLed run resumes without sending a finished request again."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from flows.query import connect
from tests.conftest import REPO_ROOT
from tests.flows.corpus_fixture import PARAGRAPHS
from tests.synth.scripted_stage import run_stage_at, scripted_engine, synth_stage_config


def test_every_generation_has_a_fate_and_real_text_wins_dedup(tmp_path, fake_engines, fake_model):
    engine = scripted_engine(fake_engines)
    cfg = synth_stage_config(tmp_path, fake_model, engine.url, count=8)
    out = tmp_path / "run"
    summary = run_stage_at(cfg, out)
    assert summary["synth"]["generations"] == 8
    assert summary["records_read"] == summary["docs_final"] + summary["dropped"] + summary["quarantined"]
    con = connect(out)
    rows = con.execute(
        "SELECT doc_id, seed_doc_id, template, template_version, model, model_sha256, "
        "finish_reason, fate FROM synthetic ORDER BY key"
    ).fetchall()
    assert len(rows) == 8
    fates = sorted({r[7] for r in rows})
    assert "kept" in fates and "synth_truncated" in fates and "exact_dedup_duplicate" in fates, fates
    # Provenance: each generation names a real seed document of this run, the template and the model.
    seeds = {r[0] for r in con.execute("SELECT id FROM ingested").fetchall()}
    assert all(r[1] in seeds for r in rows)
    assert {(r[2], r[3]) for r in rows} == {("textbook_section", 1)}
    assert {r[4] for r in rows} == {str(fake_model.resolve())} and all(len(r[5]) == 64 for r in rows)
    # The copy of a real document was the duplicate; the real one survived.
    real = con.execute(
        "SELECT d.id FROM docs d WHERE d.text = ? AND d.source NOT LIKE 'synth-%'", [PARAGRAPHS[3]]
    ).fetchall()
    assert len(real) == 1
    # Kept generations are in the corpus with their provenance in metadata, and (as the mixture samples) in the
    # shards.
    kept = [r[0] for r in rows if r[7] == "kept"]
    meta = con.execute(
        "SELECT id, json_extract(metadata, '$.synthetic'), json_extract_string(metadata, "
        "'$.seed_doc_id') FROM docs WHERE source = 'synth-textbook_section' ORDER BY id"
    ).fetchall()
    assert sorted(kept) == [m[0] for m in meta] and all(m[1] for m in meta)
    in_shards = {r[0] for r in con.execute("SELECT DISTINCT doc_id FROM shards").fetchall()}
    assert set(kept) & in_shards
    # Every generation that did not reach the corpus has a lineage row with its reason.
    dropped = con.execute(
        "SELECT count(*) FROM synthetic s JOIN lineage l ON l.doc_id = s.doc_id WHERE l.action = 'dropped'"
    ).fetchone()[0]
    assert dropped == len(rows) - len(kept)
    # The run report shows the fates per template (a plot and a table).
    from report.data import collect

    assert {(r["template"], r["fate"]) for r in collect(out)["synth"]} == {("textbook_section", f) for f in fates}
    # A rerun sends nothing and changes nothing.
    sent = engine.prompts[:]
    before = {p: p.read_bytes() for p in sorted((out / "corpus").rglob("*.parquet"))}
    run_stage_at(cfg, out)
    assert engine.prompts == sent
    assert {p: p.read_bytes() for p in sorted((out / "corpus").rglob("*.parquet"))} == before


KILLED = """
import sys
sys.path.insert(0, {repo!r})
from tests.synth.scripted_stage import run_stage_at
from pathlib import Path
run_stage_at(Path({cfg!r}), Path({out!r}))
"""


def test_a_killed_synth_run_resumes_without_sending_a_finished_request_again(tmp_path, fake_engines, fake_model):
    engine = scripted_engine(fake_engines, delay_s=0.3)
    cfg = synth_stage_config(tmp_path, fake_model, engine.url, count=12)
    out = tmp_path / "run"
    journal = out / "synth" / "journal"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED.format(repo=str(REPO_ROOT), cfg=str(cfg), out=str(out))], cwd=REPO_ROOT
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            lines = sum(len(p.read_bytes().splitlines()) for p in journal.glob("*.jsonl")) if journal.is_dir() else 0
            if lines >= 4:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    done = [
        json.loads(line)["key"]
        for p in journal.glob("*.jsonl")
        for line in p.read_bytes().splitlines()
        if line.endswith(b"}")
    ]
    assert 4 <= len(done) < 12
    sent_before = len(engine.prompts)
    summary = run_stage_at(cfg, out)
    assert summary["synth"]["generations"] == 12
    # Only the unfinished requests went out again (those in flight at the kill had no journal line yet).
    assert len(engine.prompts) - sent_before == 12 - len(done)
    keys = connect(out).execute("SELECT key FROM synthetic").fetchall()
    assert len(keys) == len({k for (k,) in keys}) == 12


def test_a_bad_synth_table_is_one_line_before_any_work(tmp_path, fake_model):
    from core.stage_files import ConfigError
    from stage.config import load_stage_config

    cfg = synth_stage_config(tmp_path, fake_model, "http://127.0.0.1:9", count=4)
    for bad, message in [
        ("count = 0", "count = 0: must be >= 1"),
        ('templates = ["nope"]', "unknown template 'nope'"),
        ("batchsize = 3", "batchsize = 3: unknown key"),
        ('model = "missing"', "no config.json"),
    ]:
        key = bad.split(" ")[0]
        body = "\n".join(line for line in cfg.read_text().splitlines() if not line.startswith(f"{key} ="))
        p = tmp_path / f"bad-{key}.toml"
        p.write_text(body.replace("[synth]\n", f"[synth]\n{bad}\n"))
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
            load_stage_config("general", p)
