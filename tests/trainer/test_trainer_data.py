"""Manifest checks, refusals before training, and the deterministic resumable sampler."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from trainer_shards import BYTES_TOKENIZER, byte_tokens, gsm8k_texts, write_manifest

from trainer.config import Config, ModelConfig, TokenizerConfig, TrainConfig
from trainer.data import (
    Batches,
    ManifestError,
    Sampler,
    ShardDataset,
    check_compatible,
    load_manifest,
    verify_shards,
)


@pytest.fixture(scope="module")
def real_tokens(corpora: Path) -> np.ndarray:
    return byte_tokens(gsm8k_texts(corpora, limit=60))


@pytest.fixture()
def manifest(tmp_path: Path, real_tokens: np.ndarray) -> Path:
    return write_manifest(tmp_path / "shards", real_tokens, seq_len=64, seqs_per_shard=50)


def tiny(**model) -> Config:
    m = {
        "vocab_size": 512,
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 16,
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 32,
        "max_position_embeddings": 128,
    }
    m.update(model)
    return Config(model=ModelConfig(**m), train=TrainConfig(batch_size=4, warmup_steps=1, device="cpu"))


def test_epoch_serves_every_token_exactly_once(manifest: Path, real_tokens: np.ndarray):
    m = load_manifest(manifest)
    assert len(m.shards) > 1
    ds = ShardDataset(m, seq_len=32)  # each 64-token packed row is cut in two pieces
    assert len(ds) == 2 * m.num_sequences
    sampler = Sampler(len(ds), seed=7)
    served = []
    while len(served) < len(ds):
        served.extend(sampler.next_indices(min(7, len(ds) - len(served))).tolist())
    assert sorted(served) == list(range(len(ds)))  # nothing skipped, nothing repeated
    assert served != sorted(served)  # and shuffled
    rows = ds.rows(np.arange(len(ds)))
    np.testing.assert_array_equal(rows.reshape(-1), real_tokens[: m.total_tokens].astype(np.int64))
    assert (sampler.epoch, sampler.index) == (1, 0)
    nxt = sampler.next_indices(len(ds))
    assert sorted(nxt.tolist()) == list(range(len(ds))) and nxt.tolist() != served  # new epoch, new order


def test_batches_cross_epoch_ends_without_dropping(manifest: Path):
    ds = ShardDataset(load_manifest(manifest))
    n = len(ds)
    sampler = Sampler(n, seed=1)
    batches = Batches(ds, sampler, batch_size=n - 1)
    batches.next()
    x, y = batches.next()  # the last index of epoch 0, then n-2 of epoch 1
    assert x.shape == (n - 1, 64) and (y[:, -1] == -100).all()
    np.testing.assert_array_equal(y[:, :-1], x[:, 1:])
    assert (sampler.epoch, sampler.index) == (1, n - 2)


def test_sampler_resumes_at_the_same_position(manifest: Path):
    n = len(ShardDataset(load_manifest(manifest)))
    a = Sampler(n, seed=3)
    for _ in range(5):
        a.next_indices(9)
    b = Sampler.from_state(a.state_dict(), n)
    np.testing.assert_array_equal(a.next_indices(40), b.next_indices(40))
    with pytest.raises(ManifestError, match="resume only on the shards it was trained on"):
        Sampler.from_state(a.state_dict(), n + 1)


def test_flipped_byte_is_refused_before_training(manifest: Path, tmp_path: Path):
    from trainer.train import train_from_manifest

    shard = manifest.parent / "shard-00001.bin"
    data = bytearray(shard.read_bytes())
    data[123] ^= 0x01
    shard.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match=r"shard-00001\.bin: sha256 [0-9a-f]{64} != manifest"):
        train_from_manifest(manifest, 3, tiny(), tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before a model or a folder existed


def test_truncated_or_missing_shard_is_refused(manifest: Path):
    m = load_manifest(manifest)
    shard = m.shards[0].path
    shard.write_bytes(shard.read_bytes()[:-4])
    with pytest.raises(ManifestError, match="bytes, manifest says"):
        verify_shards(m)
    shard.unlink()
    with pytest.raises(FileNotFoundError, match="is missing"):
        verify_shards(m)


def _rewrite_tokenizer(manifest: Path, **tok) -> None:
    raw = json.loads(manifest.read_text())
    raw["tokenizer"].update(tok)
    manifest.write_text(json.dumps(raw))


def test_mismatched_vocabulary_is_refused(manifest: Path, tmp_path: Path):
    from sharding.tokenizer import load_spec
    from trainer.train import train_from_manifest

    _rewrite_tokenizer(
        manifest, name="qwen", vocab_size=151669, eot_id=151643, vocab_sha256=load_spec("qwen").vocab_sha256
    )
    with pytest.raises(ManifestError, match="tokenizer vocab_size 151669 > model vocab_size 512"):
        train_from_manifest(manifest, 3, tiny(), tmp_path / "out")


def test_pinned_tokenizer_name_size_and_hash_are_checked(manifest: Path):
    m = load_manifest(manifest)
    model = tiny().model
    with pytest.raises(ManifestError, match="tokenizer 'test_bytes_257' but the model was configured for 'qwen'"):
        check_compatible(m, model, TokenizerConfig(name="qwen"), 0)
    with pytest.raises(ManifestError, match="tokenizer vocab_size 257 != configured 300"):
        check_compatible(m, model, TokenizerConfig(vocab_size=300), 0)
    with pytest.raises(ManifestError, match="a different vocabulary under the same name"):
        check_compatible(m, model, TokenizerConfig(name="test_bytes_257", vocab_sha256="ab" * 32), 0)
    check_compatible(
        m, model, TokenizerConfig(**{k: BYTES_TOKENIZER[k] for k in ("name", "vocab_size", "vocab_sha256")}), 0
    )


def test_token_ids_beyond_the_embedding_are_refused(tmp_path: Path):
    tokens = np.arange(64 * 10, dtype=np.uint32) % 600  # ids up to 599, manifest claims 257
    path = write_manifest(tmp_path, tokens, seq_len=64)
    m = load_manifest(path)
    with pytest.raises(ManifestError, match="shards hold token id 599 >= the tokenizer's vocab_size 257"):
        check_compatible(m, tiny().model, TokenizerConfig(), 0, verify_shards(m))


def test_sequence_length_the_model_cannot_serve_is_refused(manifest: Path):
    m = load_manifest(manifest)
    with pytest.raises(ManifestError, match="seq_len 64 > model max_position_embeddings 32; use the long_context"):
        check_compatible(m, tiny(max_position_embeddings=32).model, TokenizerConfig(), 0)
    with pytest.raises(ManifestError, match="train seq_len 48 does not divide the manifest's seq_len 64"):
        check_compatible(m, tiny().model, TokenizerConfig(), 48)
    check_compatible(m, tiny(max_position_embeddings=32).model, TokenizerConfig(), 32)  # pieces of 32 fit


def test_malformed_manifests_are_refused(manifest: Path):
    raw = json.loads(manifest.read_text())
    for key, value, msg in [
        ("dtype", "uint16", "the trainer reads only 'uint32'"),
        ("version", 2, "expected 'corpusforge-shards'/1"),
        ("total_tokens", 5, "differ from the sum over shards"),
    ]:
        manifest.write_text(json.dumps({**raw, key: value}))
        with pytest.raises(ManifestError, match=msg):
            load_manifest(manifest)
    with pytest.raises(FileNotFoundError, match="build it with"):
        load_manifest(manifest.parent / "nope.json")


def test_manifest_vocabulary_must_equal_the_named_tokenizers(manifest: Path):
    """A manifest claiming a known tokenizer (tokenizers/qwen.toml: 151,669 ids) with more ids is refused, as one
    with fewer is; only the spec's own size and hash pass."""
    from sharding.tokenizer import load_spec

    spec = load_spec("qwen")
    big_model = tiny(vocab_size=200_064).model
    for vocab in (spec.vocab_size + 128, spec.vocab_size - 1):
        _rewrite_tokenizer(manifest, name="qwen", vocab_size=vocab, vocab_sha256=spec.vocab_sha256, eot_id=151643)
        with pytest.raises(ManifestError, match=f"has 151669 ids .*manifest says vocab_size {vocab}"):
            check_compatible(load_manifest(manifest), big_model, TokenizerConfig(), 0)
    _rewrite_tokenizer(manifest, name="qwen", vocab_size=spec.vocab_size, vocab_sha256="ab" * 32, eot_id=151643)
    with pytest.raises(ManifestError, match="vocabulary sha256 abab.* != b2b1b8"):
        check_compatible(load_manifest(manifest), big_model, TokenizerConfig(), 0)
    _rewrite_tokenizer(manifest, name="qwen", vocab_size=spec.vocab_size, vocab_sha256=spec.vocab_sha256)
    check_compatible(load_manifest(manifest), big_model, TokenizerConfig(), 0)
    # The model may pad past the tokenizer (151,669 -> 151,936 rows), never fall short of it.
    check_compatible(load_manifest(manifest), tiny(vocab_size=151_936).model, TokenizerConfig(), 0)
    with pytest.raises(ManifestError, match="tokenizer vocab_size 151669 > model vocab_size 151040"):
        check_compatible(load_manifest(manifest), tiny(vocab_size=151_040).model, TokenizerConfig(), 0)
