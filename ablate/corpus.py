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
from collections.abc import Callable, Iterable, Iterator
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
    from trainer.data import load_manifest

    source = load_manifest(source_manifest)
    key = fingerprint(
        "ablate-sample-v1", source.fingerprint, tok.describe(), tokens, seq_len, heldout_fraction, heldout_docs
    )
    cached = load_sample(out_dir, key)
    if cached is not None:
        return cached
    held: list[str] = []

    def training_documents() -> Iterator[str]:
        for text in manifest_documents(source_manifest):
            if not is_heldout(text, heldout_fraction):
                yield text
            elif len(held) < heldout_docs:
                held.append(text)

    # Stop reading once the rows are filled and the held-out documents found (a prefix is a seeded sample).
    flat = encode_rows(
        training_documents(), tok, tokens, seq_len, str(source_manifest), lambda: len(held) >= heldout_docs
    )
    inputs = {"corpus_sha256": source.fingerprint, "config_sha256": key}
    return write_sample(out_dir, flat, seq_len, tok, held, source.stage, inputs, str(source_manifest))


def encode_rows(
    texts: Iterable[str],
    tok: ProxyTokenizer,
    tokens: int,
    seq_len: int,
    where: str,
    also_wait: Callable[[], bool] = lambda: True,
) -> np.ndarray:
    """`texts` in the proxy tokenizer, each followed by end-of-text, cut to whole `seq_len` rows covering `tokens`
    (fewer rows when the texts run out).

    Args:
        where: names the candidate in the error.
        also_wait: reading stops once the rows are full and this returns True (the held-out side is filled too).

    Raises:
        ValueError: the texts do not fill one sequence.
    """
    rows_wanted = math.ceil(tokens / seq_len)
    parts: list[np.ndarray] = []
    have = 0
    eot = np.array([tok.eot_id], dtype=np.uint32)
    for text in texts:
        if have < rows_wanted * seq_len:
            ids = tok.encode_np(text)
            parts += [ids, eot]
            have += len(ids) + 1
        if have >= rows_wanted * seq_len and also_wait():
            break
    rows = min(rows_wanted, have // seq_len)
    if rows == 0:
        raise ValueError(
            f"{where}: its training documents hold {have} {tok.name} tokens, fewer than one sequence of "
            f"{seq_len}; pick a larger candidate or a shorter train.seq_len"
        )
    return np.concatenate(parts)[: rows * seq_len]


def load_sample(out_dir: Path, key: str) -> CandidateData | None:
    """The sample in `out_dir` when it was made with `key` (its manifest's `inputs.config_sha256`), else None."""
    manifest_path, heldout_path = out_dir / "manifest.json", out_dir / "heldout.jsonl"
    if not (manifest_path.is_file() and heldout_path.is_file()):
        return None
    existing = json.loads(manifest_path.read_text(encoding="utf-8"))
    if existing.get("inputs", {}).get("config_sha256") != key:
        return None
    heldout = [json.loads(line)["text"] for line in heldout_path.read_text(encoding="utf-8").splitlines()]
    return CandidateData(manifest_path, int(existing["total_tokens"]), heldout, key)


def write_sample(
    out_dir: Path,
    flat: np.ndarray,
    seq_len: int,
    tok: ProxyTokenizer,
    heldout: list[str],
    stage: str,
    inputs: dict[str, str],
    source: str,
) -> CandidateData:
    """Write the proxy's one shard, its manifest and `heldout.jsonl` into `out_dir`.

    Args:
        flat: whole rows of token ids (`encode_rows`).
        inputs: the manifest's `inputs`; its `config_sha256` is the sample's key (`load_sample`).
        source: what was sampled (a manifest or a run's mixture), recorded as `ablation_source`.
    """
    from sharding.manifest import write_manifest
    from sharding.writer import write_shard

    rows = flat.size // seq_len
    out_dir.mkdir(parents=True, exist_ok=True)
    shard_sha = write_shard(out_dir / "shard-00000.bin", flat)
    lines = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in heldout)
    atomic_write_bytes(out_dir / "heldout.jsonl", lines.encode("utf-8"))
    shard = {"path": "shard-00000.bin", "num_tokens": int(flat.size), "num_sequences": rows, "sha256": shard_sha}
    manifest = {
        "format": "corpusforge-shards",
        "version": 1,
        "stage": stage,
        "seq_len": seq_len,
        "dtype": "uint32",
        "tokenizer": tok.describe(),
        "total_tokens": int(flat.size),
        "num_sequences": rows,
        "shards": [shard],
        "inputs": inputs,
        "ablation_source": source,
    }
    write_manifest(out_dir / "manifest.json", manifest)
    return CandidateData(out_dir / "manifest.json", int(flat.size), heldout, inputs["config_sha256"])
