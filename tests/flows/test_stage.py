"""The stage flow end to end on a small corpus, through Prefect's test harness (a real local API)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from flows.query import connect
from flows.stage import stage_flow
from tests.flows.corpus_fixture import EVAL_QUESTION, QUARANTINED, RECORDS, write_corpus, write_stage_config


@pytest.fixture(scope="module")
def harness(prefect_api):
    """The session's Prefect server (tests/conftest.py): flows of this module report to it."""
    return prefect_api


def run(root: Path, out: Path) -> dict:
    """Run the stage on the fixture corpus under `root`, writing the corpus only once (input file
    times are part of the ingest fingerprint, so rewriting them would rerun ingest)."""
    sources, cfg = root / "sources.toml", root / "stage.toml"
    if not cfg.exists():
        sources = write_corpus(root, contaminate_with=EVAL_QUESTION)
        cfg = write_stage_config(root, sources)
    return stage_flow(stage="general", sources=str(sources), out=str(out), config=str(cfg))


@pytest.fixture(scope="module")
def first_run(harness, tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    out = root / "run"
    return root, out, run(root, out)


def test_count_invariant_and_one_terminal_row_per_document(first_run):
    _, out, summary = first_run
    records = RECORDS + 1  # + the contaminated STEM document
    assert summary["records_read"] == records
    assert summary["quarantined"] == QUARANTINED
    assert summary["records_read"] == summary["docs_final"] + summary["dropped"] + summary["quarantined"]
    con = connect(out)
    kept = con.execute("SELECT count(*) FROM docs").fetchone()[0]
    assert kept == summary["docs_final"] > 0
    terminal = con.execute(
        "SELECT doc_id, count(*) FROM lineage WHERE action = 'dropped' OR step = 'final' GROUP BY 1 HAVING count(*) > 1"
    ).fetchall()
    assert terminal == []
    n_terminal = con.execute("SELECT count(DISTINCT doc_id) FROM lineage WHERE action = 'dropped' OR step = 'final'")
    assert n_terminal.fetchone()[0] == records - QUARANTINED
    assert con.execute("SELECT count(*) FROM quarantine").fetchone()[0] == QUARANTINED


def test_why_each_expected_document_is_missing(first_run):
    _, out, _ = first_run
    con = connect(out)
    reasons = dict(con.execute("SELECT step, count(*) FROM lineage WHERE action = 'dropped' GROUP BY 1").fetchall())
    assert reasons.get("exact_dedup") == 1, reasons
    assert reasons.get("minhash_dedup") == 1, reasons
    assert reasons.get("decontam") == 1, reasons
    q = dict(con.execute("SELECT reason, count(*) FROM quarantine GROUP BY 1").fetchall())
    assert q == {"malformed_json": 1, "invalid_utf8": 1, "missing_text_field": 1, "empty_text": 1, "binary_file": 1}
    survivor = con.execute(
        "SELECT dup_cluster_size FROM lineage WHERE step = 'exact_dedup' AND action = 'kept'"
    ).fetchall()
    assert survivor == [(2,)]


def test_pii_redacted_and_recorded(first_run):
    _, out, _ = first_run
    con = connect(out)
    text = con.execute("SELECT text FROM docs WHERE text LIKE '%librarian%'").fetchone()[0]
    assert "anna.berg@example.org" not in text and "<EMAIL>" in text
    mods = {r[0] for r in con.execute("SELECT reason FROM lineage WHERE action = 'modified'").fetchall()}
    assert "pii_email" in mods


def test_languages_and_partitions(first_run):
    _, out, _ = first_run
    con = connect(out)
    langs = dict(con.execute("SELECT lang, count(*) FROM docs WHERE domain = 'web' GROUP BY 1").fetchall())
    assert langs.get("fr") == 1 and langs.get("en", 0) >= 3
    parts = sorted(
        p.relative_to(out / "corpus" / "docs").parts[:2] for p in (out / "corpus" / "docs").rglob("*.parquet")
    )
    assert ("domain=code", "source=settings-repo") in parts and ("domain=web", "source=web-blog") in parts


def _files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*.parquet"))}


def test_rerun_skips_every_step_and_changes_nothing(first_run):
    root, out, summary = first_run
    before = _files(out / "corpus")
    again = run(root, out)
    assert all(row["skipped"] for row in again["funnel"]), again["funnel"]
    assert _files(out / "corpus") == before
    assert again["docs_final"] == summary["docs_final"]


def test_same_inputs_give_identical_output_in_a_new_directory(first_run, tmp_path):
    root, out, _ = first_run
    out2 = tmp_path / "run2"
    run(root, out2)
    assert _files(out2 / "corpus") == _files(out / "corpus")


def _rows(directory: Path, columns: list[str], pattern: str = "**/*.parquet") -> list[tuple]:
    """Rows of these columns from the Parquet files the stage wrote, read with pyarrow (not through a view)."""
    import pyarrow.parquet as pq

    out = []
    for path in sorted(directory.glob(pattern)):
        out += zip(*(pq.read_table(path, columns=columns).column(c).to_pylist() for c in columns))
    return sorted(out, key=repr)


def test_each_view_reads_what_the_stage_wrote(first_run):
    """Each view holds exactly the rows of its own files: a view pointed at another table's files (or at a subset)
    changes its rows or its count."""
    _, out, summary = first_run
    con = connect(out)

    def view(sql: str) -> list[tuple]:
        return sorted(con.execute(sql).fetchall(), key=repr)

    corpus = out / "corpus"
    docs = view("SELECT id, domain, source, text FROM docs")
    assert docs == _rows(corpus / "docs", ["id", "domain", "source", "text"])
    assert len(docs) == summary["docs_final"]
    final = _rows(corpus / "lineage", ["doc_id", "step", "action"])
    assert sorted(d[0] for d in docs) == sorted(doc for doc, step, action in final if step == "final")
    ingested = view("SELECT id, source, text FROM ingested")
    assert ingested == _rows(corpus / "ingested", ["id", "source", "text"])
    assert len(ingested) == summary["records_read"] - summary["quarantined"] > len(docs)
    lineage = view("SELECT doc_id, step, action, reason FROM lineage")
    assert lineage == _rows(corpus / "lineage", ["doc_id", "step", "action", "reason"])
    quarantine = view("SELECT source, location, reason FROM quarantine")
    assert quarantine == _rows(corpus / "quarantine", ["source", "location", "reason"])
    assert len(quarantine) == summary["quarantined"] == QUARANTINED
    shards = view('SELECT stage, doc_id, shard, "offset" FROM shards')
    placements = _rows(out / "shards" / "general" / "placements", ["doc_id", "shard", "offset"], "*.parquet")
    assert shards == sorted((("general", *p) for p in placements), key=repr) and shards
    assert view("SELECT * FROM synthetic") == []  # no [synth] in this stage
    with pytest.raises(duckdb.Error):
        con.execute("SELECT no_such_column FROM docs").fetchall()


def test_stage_ends_with_verified_shards_that_lineage_points_to(first_run):
    _, out, summary = first_run
    manifest_path = out / "shards" / "general" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["seq_len"] == 64 and manifest["dtype"] == "uint32"
    assert manifest["total_tokens"] == summary["shards"]["total_tokens"] > 0
    from sharding.manifest import verify_manifest

    assert verify_manifest(manifest_path) == []
    con = connect(out)
    placed = con.execute(
        "SELECT count(DISTINCT s.doc_id), count(DISTINCT s.doc_id) FILTER (WHERE d.id IS NULL) "
        "FROM shards s LEFT JOIN docs d ON d.id = s.doc_id"
    ).fetchone()
    assert placed[0] > 0 and placed[1] == 0  # only final documents are tokenized
    final_rows = con.execute(
        "SELECT count(*) FROM lineage WHERE step = 'final' AND shard IS NOT NULL AND shard_offset >= 0"
    ).fetchone()[0]
    assert final_rows == placed[0]


def test_train_steps_hands_the_manifest_to_the_trainer(first_run, tmp_path):
    pytest.importorskip("torch")
    root, out, _ = first_run
    out4 = tmp_path / "run4"
    shutil.copytree(out, out4)
    trainer_cfg = tmp_path / "trainer.toml"
    trainer_cfg.write_text(
        "[model]\nvocab_size = 0\nhidden_size = 32\nnum_hidden_layers = 1\nnum_attention_heads = 2\n"
        "num_key_value_heads = 1\nhead_dim = 16\nnum_experts = 4\nnum_experts_per_tok = 2\n"
        "moe_intermediate_size = 32\nmax_position_embeddings = 64\n"
        "[train]\nbatch_size = 2\nseq_len = 0\nwarmup_steps = 1\ndevice = 'cpu'\ndtype = 'fp32'\n"
    )
    stage_cfg = tmp_path / "stage.toml"
    stage_cfg.write_text((root / "stage.toml").read_text() + f'\n[train]\nconfig = "{trainer_cfg}"\n')
    kwargs = dict(stage="general", sources=str(root / "sources.toml"), out=str(out4), config=str(stage_cfg))
    summary = stage_flow(**kwargs, train_steps=2)
    assert all(row["skipped"] for row in summary["funnel"])  # the data path was cached
    assert summary["train"]["steps"] == 2 and summary["train"]["start_step"] == 0
    assert (out4 / "train" / "checkpoint.pt").is_file()
    again = stage_flow(**kwargs, train_steps=3)  # resumes from the checkpoint, one more step
    assert again["train"]["start_step"] == 2 and again["train"]["steps"] == 3
