"""A candidate's documents, read back from its shards, split into training and held-out text, and the proxy's
training shards written in the proxy tokenizer.

The shards are the candidate as a stage trains on it (its mixture, repeats and order), so the documents are
decoded from them rather than read from the corpus: packing concatenates documents in a seeded shuffled order,
each followed by end-of-text (sharding/pack.py), so reading the sequences in order and cutting at end-of-text
gives the documents back, and a prefix of them is a seeded random sample. NOTE: a long-context manifest packed in
length buckets interleaves the buckets' sequences, so a document longer than one sequence is read back in pieces
joined to other pieces; this version does not reassemble them from the placements index.

A document is held out when a hash of its text falls below `heldout_fraction`, so a document that the stage
repeats is never on both sides.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from core.io import atomic_write_bytes, fingerprint

BYTES_TOKENIZER = "utf8_bytes"


class ProxyTokenizer(Protocol):
    name: str
    vocab_size: int
    eot_id: int

    def encode_np(self, text: str) -> np.ndarray: ...

    def decode(self, ids: list[int] | np.ndarray) -> str: ...

    def describe(self) -> dict[str, Any]: ...


class ByteTokenizer:
    """UTF-8 bytes as ids 0-255 and end-of-text as 256: the CPU proxy's vocabulary.

    With 257 rows the output layer costs nothing next to the blocks (with o200k's 201,088 rows it is most of the
    step), and bits per byte do not depend on the tokenizer, so a byte-level proxy ranks corpora on the same
    metric; results say `proxy_tokenizer = utf8_bytes` so that they are not read as o200k numbers.
    """

    name = BYTES_TOKENIZER
    vocab_size = 257
    eot_id = 256
    vocab_sha256 = hashlib.sha256(b"utf8_bytes: ids 0-255 are UTF-8 bytes, 256 is end-of-text").hexdigest()

    def encode_np(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8", "replace"), dtype=np.uint8).astype(np.uint32)

    def decode(self, ids: list[int] | np.ndarray) -> str:
        return np.asarray(ids, dtype=np.uint8).tobytes().decode("utf-8", "replace")

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "vocab_size": self.vocab_size,
            "vocab_sha256": self.vocab_sha256,
            "eot_id": self.eot_id,
            "normalization": "none",
        }


def load_proxy_tokenizer(name: str) -> ProxyTokenizer:
    """`utf8_bytes`, or a sharding tokenizer (`o200k_harmony`, `qwen`) by name.

    Raises:
        sharding.tokenizer.TokenizerError: an unknown name.
    """
    if name == BYTES_TOKENIZER:
        return ByteTokenizer()
    from sharding.tokenizer import load_tokenizer

    return load_tokenizer(name)


def manifest_documents(manifest_path: Path) -> Iterator[str]:
    """The documents of a shards manifest in packing order, decoded with the manifest's own tokenizer; the last
    one, cut by the dropped partial sequence, is not yielded.

    Raises:
        ValueError: the manifest's tokenizer is not one this project can load, or its vocabulary hash differs.
    """
    from trainer.data import load_manifest

    m = load_manifest(manifest_path)
    name = str(m.tokenizer["name"])
    try:
        tok = load_proxy_tokenizer(name)
    except ValueError as e:
        raise ValueError(f"{manifest_path}: cannot decode its shards ({e})") from e
    if m.tokenizer.get("vocab_sha256") != tok.describe()["vocab_sha256"]:
        raise ValueError(f"{manifest_path}: tokenizer {name!r} vocabulary sha256 differs from this project's")
    eot = int(m.tokenizer["eot_id"])
    pending: list[np.ndarray] = []
    for shard in m.shards:
        ids = np.memmap(shard.path, dtype="<u4", mode="r")
        start = 0
        for end in np.flatnonzero(ids == eot):
            pending.append(np.asarray(ids[start:end]))
            doc = np.concatenate(pending)
            pending = []
            start = int(end) + 1
            if len(doc):
                yield tok.decode(doc)
        pending.append(np.asarray(ids[start:]))


def is_heldout(text: str, fraction: float) -> bool:
    """Whether a document is held out: the first 8 bytes of its text's sha256, as a number in [0, 1)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8", "replace")).digest()[:8], "big") < fraction * 2**64


@dataclass(frozen=True)
class CandidateData:
    """A candidate as the proxies see it.

    Args:
        manifest: the proxy's training shards (`data/<candidate>/manifest.json`).
        unique_tokens: training tokens written (a budget above it is trained in several epochs).
        heldout: the held-out documents scored by every proxy.
        sha256: fingerprint of the source shards and the sampling, for the results' config hashes.
    """

    manifest: Path
    unique_tokens: int
    heldout: list[str]
    sha256: str


def prepare_candidate(
    source_manifest: Path,
    out_dir: Path,
    tok: ProxyTokenizer,
    tokens: int,
    seq_len: int,
    heldout_fraction: float,
    heldout_docs: int,
) -> CandidateData:
    """Sample a candidate's documents into `tokens` training tokens (whole `seq_len` rows) in the proxy tokenizer
    and keep up to `heldout_docs` held-out documents; reuse `out_dir` when it holds the same sample.

    Args:
        source_manifest: the candidate's `shards/<stage>/manifest.json`.
        out_dir: where the proxy's `manifest.json`, `shard-00000.bin` and `heldout.jsonl` go.
        tok: the proxy tokenizer.
        tokens: the training budget; rows stop once it is covered.
        seq_len: proxy training sequence length (the written manifest's `seq_len`).
        heldout_fraction: share of documents held out (see `is_heldout`).
        heldout_docs: held-out documents kept for scoring.

    Raises:
        ValueError: the candidate's training documents do not fill one sequence.
    """
    from sharding.manifest import write_manifest
    from sharding.writer import write_shard
    from trainer.data import load_manifest

    source = load_manifest(source_manifest)
    key = fingerprint(
        "ablate-sample-v1", source.fingerprint, tok.describe(), tokens, seq_len, heldout_fraction, heldout_docs
    )
    manifest_path, heldout_path = out_dir / "manifest.json", out_dir / "heldout.jsonl"
    if manifest_path.is_file() and heldout_path.is_file():
        existing = json.loads(manifest_path.read_text(encoding="utf-8"))
        if existing.get("inputs", {}).get("config_sha256") == key:
            heldout = [json.loads(line)["text"] for line in heldout_path.read_text(encoding="utf-8").splitlines()]
            return CandidateData(manifest_path, int(existing["total_tokens"]), heldout, key)
    rows_wanted = math.ceil(tokens / seq_len)
    parts: list[np.ndarray] = []
    held: list[str] = []
    have = 0
    eot = np.array([tok.eot_id], dtype=np.uint32)
    for text in manifest_documents(source_manifest):
        if is_heldout(text, heldout_fraction):
            if len(held) < heldout_docs:
                held.append(text)
        elif have < rows_wanted * seq_len:
            ids = tok.encode_np(text)
            parts += [ids, eot]
            have += len(ids) + 1
        if have >= rows_wanted * seq_len and len(held) >= heldout_docs:
            break
    rows = min(rows_wanted, have // seq_len)
    if rows == 0:
        raise ValueError(
            f"{source_manifest}: its training documents hold {have} {tok.name} tokens, fewer than one "
            f"sequence of {seq_len}; pick a larger candidate or a shorter train.seq_len"
        )
    flat = np.concatenate(parts)[: rows * seq_len]
    out_dir.mkdir(parents=True, exist_ok=True)
    shard_sha = write_shard(out_dir / "shard-00000.bin", flat)
    lines = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in held)
    atomic_write_bytes(heldout_path, lines.encode("utf-8"))
    write_manifest(
        manifest_path,
        {
            "format": "corpusforge-shards",
            "version": 1,
            "stage": source.stage,
            "seq_len": seq_len,
            "dtype": "uint32",
            "tokenizer": tok.describe(),
            "total_tokens": int(flat.size),
            "num_sequences": rows,
            "shards": [
                {"path": "shard-00000.bin", "num_tokens": int(flat.size), "num_sequences": rows, "sha256": shard_sha}
            ],
            "inputs": {"corpus_sha256": source.fingerprint, "config_sha256": key},
            "ablation_source": str(source_manifest),
        },
    )
    return CandidateData(manifest_path, int(flat.size), held, key)
