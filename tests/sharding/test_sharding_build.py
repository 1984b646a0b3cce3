"""Stage shards end to end on real documents: manifest contract, decode round trip, byte-identical output at
any executor and worker count, resume per unit after a kill, a damaged shard rebuilt on rerun, verify, exports
read back, long-context buckets, dry run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from sharding_corpus import iter_documents, write_corpus

from pipeline.executors import LocalExecutor
from sharding import steps as steps_mod
from sharding.build import build_stage_shards
from sharding.exports import read_megatron_index
from sharding.manifest import main as verify_main
from sharding.manifest import read_manifest
from sharding.tokenizer import load_tokenizer

MIX = {"seed": 7, "domains": {"web": 0.4, "stem": 0.35, "code": 0.25}}
SHARDS = {"tokenizer": "o200k_harmony", "seq_len": 1024, "shard_tokens": 64 * 1024}


@pytest.fixture(scope="module")
def corpus(corpora, tmp_path_factory) -> Path:
    docs = list(iter_documents(corpora, max_per_file=150))
    # Small files so the corpus has several files and row groups (chunks), as a real run does.
    return write_corpus(docs, tmp_path_factory.mktemp("corpus") / "docs", rows_per_file=70)


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("shards")
    stats = build_stage_shards(corpus, out, "general", MIX, SHARDS)
    return out / "general" / "manifest.json", stats


def corpus_texts(corpus: Path) -> dict[str, str]:
    out = {}
    for p in sorted(corpus.rglob("*.parquet")):
        tab = pq.read_table(p, columns=["id", "text"])
        out.update(zip(tab.column("id").to_pylist(), tab.column("text").to_pylist()))
    return out


def placements(manifest_path: Path):
    import duckdb

    return duckdb.sql(f"SELECT * FROM read_parquet('{manifest_path.parent}/placements/*.parquet')")


def test_manifest_holds_the_trainer_contract(built):
    path, stats = built
    m = read_manifest(path)
    assert m["format"] == "corpusforge-shards" and m["version"] == 1 and m["dtype"] == "uint32"
    assert m["stage"] == "general" and m["seq_len"] == 1024
    assert m["tokenizer"] == {
        "name": "o200k_harmony",
        "vocab_size": 201088,
        "eot_id": 199999,
        "normalization": "none",
        "vocab_sha256": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    }
    assert len(m["shards"]) >= 5 and stats["shards_written"] == len(m["shards"])
    for s in m["shards"]:
        assert (path.parent / s["path"]).stat().st_size == s["num_tokens"] * 4 == s["num_sequences"] * 1024 * 4
    assert m["total_tokens"] == m["num_sequences"] * 1024 > 300_000
    assert set(m["inputs"]) == {"corpus_sha256", "config_sha256"}
    assert {r["source"] for r in m["mixture"]} == {"udhr", "code_files", "gsm8k", "math500"}
    assert stats["table"].startswith("stage 'general'") and "gsm8k" in stats["table"]
    steps = path.parent.parent / ".work" / "general" / "steps"
    assert not (steps / "tokenize").exists()  # keep_token_cache = false: the token units go after success
    # A published shard is its unit's file (a hard link), not a copy.
    unit = steps / "shards" / "units" / "shard-00002" / "shard-00002.bin"
    assert unit.stat().st_ino == (path.parent / "shard-00002.bin").stat().st_ino
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        ["manifest.json", "placements", "exports"] + [s["path"] for s in m["shards"]]
    )


def test_sequences_decode_back_to_the_source_documents(built, corpus):
    path, _ = built
    m = read_manifest(path)
    tok = load_tokenizer("o200k_harmony")
    texts = corpus_texts(corpus)
    rows = placements(path).fetchall()
    cols = placements(path).columns
    rng = np.random.default_rng(0)
    sampled = set(rng.choice(m["num_sequences"], size=12, replace=False).tolist())
    checked_whole = 0
    for row in (dict(zip(cols, r)) for r in rows):
        if row["sequence"] not in sampled:
            continue
        shard = np.fromfile(path.parent / row["shard"], dtype="<u4")
        piece = shard[row["offset"] : row["offset"] + row["num_tokens"]]
        ids = tok.encode_ordinary(texts[row["doc_id"]])
        assert piece.tolist() == ids[row["doc_token_offset"] : row["doc_token_offset"] + row["num_tokens"]]
        if row["doc_token_offset"] == 0 and row["num_tokens"] == len(ids):
            assert tok.decode(piece) == texts[row["doc_id"]]
            end = row["offset"] + row["num_tokens"]
            assert end == shard.size or shard[end] == tok.eot_id
            checked_whole += 1
    assert checked_whole >= 5


def test_every_placed_document_is_in_the_corpus_and_repeats_are_counted(built, corpus):
    import duckdb

    path, _ = built
    docs = f"read_parquet('{corpus}/**/*.parquet', hive_partitioning = true)"
    missing = duckdb.sql(
        f"SELECT count(*) FROM ({placements(path).sql_query()}) p ANTI JOIN {docs} d ON p.doc_id = d.id"
    )
    assert missing.fetchall()[0][0] == 0
    reps = duckdb.sql(f"SELECT source, max(repeat) FROM ({placements(path).sql_query()}) GROUP BY source ORDER BY 1")
    by_source = dict(reps.fetchall())
    assert by_source["gsm8k"] >= 1 and by_source["code_files"] == 0  # stem upweighted past one pass, code not


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_output_is_byte_identical_with_two_worker_processes_and_threads(built, corpus, tmp_path):
    path, _ = built
    with LocalExecutor(2) as executor:
        stats = build_stage_shards(corpus, tmp_path, "general", MIX, {**SHARDS, "num_proc": 2}, executor=executor)
    assert stats["shards_written"] == stats["num_shards"] >= 5
    again = tree(tmp_path / "general")
    assert again == tree(path.parent)  # shards, placements, exports and manifest
    assert len(again) == 1 + 7 * stats["num_shards"]  # manifest; bin, placements, 3 datatrove, 2 megatron


def test_unchanged_inputs_skip_the_build(built, corpus):
    path, _ = built
    stats = build_stage_shards(corpus, path.parent.parent, "general", MIX, SHARDS)
    assert stats["skipped"] is True and stats["manifest"] == str(path) and stats["shards_written"] == 0


def test_killed_build_resumes_per_shard_unit(built, corpus, tmp_path, monkeypatch):
    reference, _ = built
    real_write, calls = steps_mod.write_shard, []

    def dying_write(p, tokens):
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        calls.append(p.name)
        return real_write(p, tokens)

    monkeypatch.setattr(steps_mod, "write_shard", dying_write)
    with pytest.raises(KeyboardInterrupt):
        build_stage_shards(corpus, tmp_path, "general", MIX, SHARDS)
    units = tmp_path / ".work" / "general" / "steps" / "shards" / "units"
    assert sorted(p.name for p in units.iterdir()) == ["shard-00000", "shard-00001", "shard-00002"]
    assert calls == ["shard-00000.bin", "shard-00001.bin", "shard-00002.bin"]
    assert not (tmp_path / "general").exists()  # nothing is published before every shard is complete
    # A unit whose file was cut after its marker was written (a bad disk, a hand edit) is not trusted.
    victim = units / "shard-00001" / "shard-00001.bin"
    victim.write_bytes(victim.read_bytes()[:8])
    monkeypatch.setattr(steps_mod, "write_shard", real_write)
    stats = build_stage_shards(corpus, tmp_path, "general", MIX, SHARDS)
    assert stats["tokenize"]["chunks_tokenized"] == 0  # the token units survived the kill
    assert stats["damaged"] == {"shards": ["shard-00001"]}
    assert stats["shards_written"] == stats["num_shards"] - 2
    assert tree(tmp_path / "general") == tree(reference.parent)


@pytest.mark.parametrize("how", ["in_place", "replaced"])
def test_a_damaged_published_shard_is_rebuilt_on_rerun(built, corpus, tmp_path, how):
    reference, _ = built
    first = build_stage_shards(corpus, tmp_path, "general", MIX, SHARDS)
    assert first["skipped"] is False
    shard = tmp_path / "general" / "shard-00003.bin"
    data = bytearray(shard.read_bytes())
    data[4 * 1000 + 1] ^= 0x40  # one byte of one token; the size stays the same
    if how == "in_place":  # the same inode: the unit's file and every export link change with it
        with open(shard, "r+b") as f:
            f.write(bytes(data))
    else:
        shard.unlink()
        shard.write_bytes(bytes(data))
    assert verify_main([str(tmp_path / "general" / "manifest.json")]) == 1
    stats = build_stage_shards(corpus, tmp_path, "general", MIX, SHARDS)
    assert stats["skipped"] is False
    # In place, the unit itself is damaged and rebuilt; replaced, the unit is intact and only published again.
    assert stats["shards_written"] == (1 if how == "in_place" else 0)
    assert stats["damaged"] == ({"shards": ["shard-00003"]} if how == "in_place" else {})
    assert verify_main([str(tmp_path / "general" / "manifest.json")]) == 0
    assert tree(tmp_path / "general") == tree(reference.parent)
    assert build_stage_shards(corpus, tmp_path, "general", MIX, SHARDS)["skipped"] is True


def test_tokenization_resumes_per_chunk(corpus, tmp_path):
    from sharding.chunks import list_chunks, tokenize_corpus

    tok = load_tokenizer("o200k_harmony")
    chunks, _ = list_chunks(corpus, f"{tok.name}:{tok.vocab_sha256}")
    assert len(chunks) >= 6
    first = tokenize_corpus(chunks, tok.name, tmp_path)
    (tmp_path / f"{chunks[2].key}.len.npy").unlink()  # as if killed between the token file and its lengths
    second = tokenize_corpus(chunks, tok.name, tmp_path)
    assert first["chunks_tokenized"] == len(chunks) and second["chunks_tokenized"] == 1


def test_verify_detects_a_changed_byte(built, tmp_path, capsys):
    path, _ = built
    copy = tmp_path / "general"
    shutil.copytree(path.parent, copy)
    assert verify_main([str(copy / "manifest.json")]) == 0
    shard = copy / "shard-00003.bin"
    data = bytearray(shard.read_bytes())
    data[100] ^= 1
    shard.unlink()  # the export is a hard link: write a new file rather than editing the shared inode
    shard.write_bytes(bytes(data))
    out = subprocess.run(
        [sys.executable, "-m", "sharding.verify", str(copy / "manifest.json")],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.returncode == 1
    assert "shard shard-00003.bin: sha256" in out.stderr


def test_exports_read_back_as_the_same_tokens_and_documents(built):
    path, _ = built
    m = read_manifest(path)
    eot = m["tokenizer"]["eot_id"]
    for s in m["shards"][:3]:
        stem = Path(s["path"]).stem
        tokens = np.fromfile(path.parent / s["path"], dtype="<u4")
        ds_dir = path.parent / "exports" / "datatrove"
        assert (ds_dir / f"{stem}.ds").read_bytes() == tokens.tobytes()
        ends = np.fromfile(ds_dir / f"{stem}.ds.index", dtype="<u8")
        assert ends[-1] == tokens.size and np.all(tokens[ends[:-1].astype(np.int64) - 1] == eot)
        assert (ds_dir / f"{stem}.ds.metadata").read_text().splitlines()[:2] == ["o200k_harmony|4", str(tokens.size)]
        meg = path.parent / "exports" / "megatron"
        idx = read_megatron_index(meg / f"{stem}.idx")
        binary = np.fromfile(meg / f"{stem}.bin", dtype="<i4")
        assert np.array_equal(binary.astype(np.uint32), tokens)
        assert idx["lengths"].sum() == tokens.size and np.array_equal(
            idx["document_indices"], np.arange(ends.size + 1)
        )
        for length, ptr in zip(idx["lengths"][:-1], idx["pointers"][:-1]):
            assert binary[ptr // 4 + length - 1] == eot  # every document but a shard's last ends with EOT


def test_datatrove_reader_reads_the_ds_export(built):
    pytest.importorskip("torch")
    from datatrove.utils.dataset import DatatroveFileDataset

    path, _ = built
    ds_file = path.parent / "exports" / "datatrove" / "shard-00000.ds"
    tokens = np.fromfile(ds_file, dtype="<u4")
    ds = DatatroveFileDataset(str(ds_file), seq_len=1023, token_size=4)
    assert len(ds) == tokens.size // 1024
    assert ds[1]["input_ids"].tolist() == tokens[1024:2048].astype(np.int64).tolist()


def test_long_context_buckets_supply_the_configured_fractions(corpus, tmp_path):
    shards = {
        "tokenizer": "qwen",
        "seq_len": 512,
        "shard_tokens": 16 * 512,
        "exports": [],
        "buckets": [
            {"name": "long", "min_tokens": 256, "max_tokens": 512, "fraction": 0.75},
            {"name": "medium", "min_tokens": 64, "max_tokens": 255, "fraction": 0.25},
        ],
    }
    stats = build_stage_shards(corpus, tmp_path, "long_context", {"seed": 3}, shards)
    b = stats["packing"]["buckets"]
    n = stats["num_sequences"]
    assert n > 20 and b["long"]["sequences"] + b["medium"]["sequences"] == n
    assert abs(b["long"]["sequences"] / n - 0.75) < 0.05 and abs(b["medium"]["sequences"] / n - 0.25) < 0.05
    import unicodedata

    tok = load_tokenizer("qwen")
    texts = corpus_texts(corpus)
    man = tmp_path / "long_context" / "manifest.json"

    for doc_id, bucket in placements(man).project("doc_id, bucket").distinct().fetchall():
        size = len(tok.encode_ordinary(texts[doc_id])) + 1
        assert (256 <= size <= 512) if bucket == "long" else (64 <= size <= 255), (bucket, size)
    # NOTE: `offset` is an SQL keyword: quote it in DuckDB.
    whole = placements(man).filter("doc_token_offset = 0").order('shard, "offset"').limit(20).fetchall()
    decoded = 0
    for doc_id, shard_name, offset, num_tokens in (r[:4] for r in whole):
        shard = np.fromfile(man.parent / shard_name, dtype="<u4")
        ids = tok.encode_ordinary(texts[doc_id])
        if num_tokens == len(ids):  # Qwen decodes to the NFC form of the text
            assert tok.decode(shard[offset : offset + num_tokens]) == unicodedata.normalize("NFC", texts[doc_id])
            decoded += 1
    assert decoded >= 5


def test_dry_run_prints_the_budget_and_writes_nothing(corpus, tmp_path, capsys):
    stats = build_stage_shards(corpus, tmp_path / "out", "reasoning", MIX, SHARDS, dry_run=True)
    printed = capsys.readouterr().out
    assert "estimated" in printed and "gsm8k" in printed and "code_files" in printed
    assert stats["dry_run"] and stats["budget_tokens"] > 300_000
    assert not (tmp_path / "out").exists()


def test_stage_configs_parse_with_their_mixture_and_shards_tables():
    from core.paths import STAGES_DIR
    from sharding.build import ShardsConfig, load_stage_tables
    from sharding.mixture import MixtureConfig

    lens = {}
    for stage in ("general", "reasoning", "long_context"):
        mixture, shards = load_stage_tables(STAGES_DIR / f"{stage}.toml")
        MixtureConfig.from_dict(mixture)
        lens[stage] = ShardsConfig.from_dict(shards)
    assert {k: v.seq_len for k, v in lens.items()} == {"general": 4096, "reasoning": 4096, "long_context": 32768}
    assert [(b.min_tokens, b.max_tokens, b.fraction) for b in lens["long_context"].buckets] == [
        # (16k+ has no upper bound: a work longer than a sequence fills several instead of being left out)
        (16384, None, 0.75),
        (4096, 16383, 0.25),
    ]


def test_a_corpus_shorter_than_one_sequence_gives_0_shards_and_says_why(tmp_path, caplog):
    """One short kept document: a valid manifest with 0 shards (only full sequences are packed), a warning in
    the log and in the stats that name why, again when the published manifest is reused."""
    from schemas import Document, make_doc_id

    text = "A single short document that the stage kept."
    corpus = write_corpus([Document(make_doc_id("tiny", "t:1", text), text, "tiny", "web")], tmp_path / "docs")
    mix = {"seed": 7, "domains": {"web": 1.0}}
    stats = build_stage_shards(corpus, tmp_path / "shards", "general", mix, SHARDS)
    assert stats["num_shards"] == 0 and read_manifest(Path(stats["manifest"]))["shards"] == []
    (warning,) = stats["warnings"]
    tokens = stats["packing"]["tokens_selected"]
    assert 0 < tokens < SHARDS["seq_len"]
    assert warning == (
        f"stage general: the manifest holds 0 shards: the mixture selected 1 document(s) of {tokens} tokens (EOT "
        f"included), fewer than one sequence of seq_len=1,024 tokens; add input or lower [shards] seq_len"
    )
    assert warning in caplog.text
    again = build_stage_shards(corpus, tmp_path / "shards", "general", mix, SHARDS)
    assert again["skipped"] is True and again["warnings"] == [warning]
