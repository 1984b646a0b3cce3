"""Reads a stage's shard manifest (the `sharding/` contract, ARCHITECTURE.md), checks it, serves batches.

Checks before any training step, each refusing with a message that names the bad input:
- format, version and dtype of the manifest; every shard's size and sha256;
- the tokenizer (name, vocabulary size and hash) against the model's `[tokenizer]` config and, for a
  tokenizer with a spec in `tokenizers/<name>.toml`, against that spec (a larger vocabulary is refused as a
  smaller one is); the vocabulary against `model.vocab_size`, and the largest token id in the shards;
- the sequence length against what the model can serve (`max_position_embeddings`).

The sampler visits every packed sequence exactly once per epoch in a seeded permutation
(`numpy.random.default_rng([seed, epoch])`) and its position (epoch, index) is saved in checkpoints.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMAT, VERSION = "corpusforge-shards", 1
_HASH_BLOCK = 1 << 22


class ManifestError(ValueError):
    """A manifest or shard the trainer refuses to read."""


@dataclass(frozen=True)
class Shard:
    path: Path
    num_tokens: int
    num_sequences: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """A parsed `manifest.json`; `shards[i].path` is absolute."""

    path: Path
    stage: str
    seq_len: int
    tokenizer: dict[str, Any]
    total_tokens: int
    num_sequences: int
    shards: tuple[Shard, ...]
    raw: dict[str, Any]

    @property
    def fingerprint(self) -> str:
        """Identifies the token content: a resumed run must read the same shards."""
        return hashlib.sha256("".join(s.sha256 for s in self.shards).encode()).hexdigest()[:16]


def load_manifest(path: Path | str) -> Manifest:
    """Parse and structurally check a manifest (no shard hashing; see `verify_shards`).

    Args:
        path: `.../shards/<stage>/manifest.json`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"shard manifest {path} not found; build it with `python -m flows.stage <stage>`")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc})") from exc
    if raw.get("format") != FORMAT or raw.get("version") != VERSION:
        raise ManifestError(
            f"{path}: format/version {raw.get('format')!r}/{raw.get('version')!r}, expected {FORMAT!r}/{VERSION}"
        )
    if raw.get("dtype") != "uint32":
        raise ManifestError(f"{path}: dtype {raw.get('dtype')!r}, the trainer reads only 'uint32'")
    for key in ("stage", "seq_len", "tokenizer", "total_tokens", "num_sequences", "shards"):
        if key not in raw:
            raise ManifestError(f"{path}: missing key {key!r}")
    seq_len = int(raw["seq_len"])
    tok = raw["tokenizer"]
    for key in ("name", "vocab_size", "eot_id"):
        if key not in tok:
            raise ManifestError(f"{path}: tokenizer has no {key!r}")
    shards = []
    for i, s in enumerate(raw["shards"]):
        shard = Shard(path.parent / s["path"], int(s["num_tokens"]), int(s["num_sequences"]), str(s["sha256"]))
        if shard.num_tokens != shard.num_sequences * seq_len:
            raise ManifestError(
                f"{path}: shard {i} ({s['path']}) has num_tokens={shard.num_tokens}, expected "
                f"num_sequences * seq_len = {shard.num_sequences} * {seq_len}"
            )
        shards.append(shard)
    if not shards:
        raise ManifestError(f"{path}: no shards")
    m = Manifest(
        path,
        str(raw["stage"]),
        seq_len,
        dict(tok),
        int(raw["total_tokens"]),
        int(raw["num_sequences"]),
        tuple(shards),
        raw,
    )
    if m.total_tokens != sum(s.num_tokens for s in shards) or m.num_sequences != sum(s.num_sequences for s in shards):
        raise ManifestError(
            f"{path}: total_tokens/num_sequences {m.total_tokens}/{m.num_sequences} differ from the "
            f"sum over shards {sum(s.num_tokens for s in shards)}/"
            f"{sum(s.num_sequences for s in shards)}"
        )
    return m


def verify_shards(manifest: Manifest) -> int:
    """sha256 and size of every shard file; returns the largest token id seen.

    Raises:
        FileNotFoundError: a shard is missing.
        ManifestError: a size or checksum differs from the manifest.
    """
    max_id = 0
    for s in manifest.shards:
        if not s.path.is_file():
            raise FileNotFoundError(f"shard {s.path} named by {manifest.path} is missing")
        size = s.path.stat().st_size
        if size != s.num_tokens * 4:
            raise ManifestError(
                f"shard {s.path}: {size} bytes, manifest says {s.num_tokens} uint32 tokens ({s.num_tokens * 4} bytes)"
            )
        digest = hashlib.sha256()
        with s.path.open("rb") as f:
            while block := f.read(_HASH_BLOCK):
                digest.update(block)
                if len(block) >= 4:
                    max_id = max(max_id, int(np.frombuffer(block[: len(block) // 4 * 4], dtype="<u4").max()))
        if digest.hexdigest() != s.sha256:
            raise ManifestError(
                f"shard {s.path}: sha256 {digest.hexdigest()} != manifest {s.sha256}; the file is "
                "corrupt or was rewritten: rebuild the shards of this stage"
            )
    return max_id


def check_compatible(
    manifest: Manifest, model_cfg: Any, tokenizer_cfg: Any, seq_len: int, max_token_id: int | None = None
) -> None:
    """Refuse a manifest whose tokenizer, vocabulary or sequence length the model cannot serve.

    Args:
        manifest: the parsed manifest.
        model_cfg: `ModelConfig` (vocab_size, max_position_embeddings).
        tokenizer_cfg: `TokenizerConfig` ("" / 0 fields accept anything).
        seq_len: the training sequence length (0: the manifest's).
        max_token_id: the largest id in the shards (from `verify_shards`), if known.
    """
    tok = manifest.tokenizer
    where = f"{manifest.path}"
    if tokenizer_cfg.name and tok["name"] != tokenizer_cfg.name:
        raise ManifestError(
            f"{where}: tokenizer {tok['name']!r} but the model was configured for "
            f"{tokenizer_cfg.name!r} ([tokenizer] name); retokenize or change the config"
        )
    if tokenizer_cfg.vocab_size and int(tok["vocab_size"]) != tokenizer_cfg.vocab_size:
        raise ManifestError(
            f"{where}: tokenizer vocab_size {tok['vocab_size']} != configured "
            f"{tokenizer_cfg.vocab_size} ([tokenizer] vocab_size)"
        )
    if tokenizer_cfg.vocab_sha256 and tok.get("vocab_sha256") != tokenizer_cfg.vocab_sha256:
        raise ManifestError(
            f"{where}: vocabulary sha256 {tok.get('vocab_sha256')} != configured "
            f"{tokenizer_cfg.vocab_sha256}: a different vocabulary under the same name"
        )
    spec = tokenizer_spec(str(tok["name"]))
    if spec is not None and int(tok["vocab_size"]) != spec.vocab_size:
        raise ManifestError(
            f"{where}: tokenizer {tok['name']!r} has {spec.vocab_size} ids (tokenizers/{tok['name']}"
            f".toml) but the manifest says vocab_size {tok['vocab_size']}: the manifest was edited or "
            "written by another tokenizer; rebuild the shards of this stage"
        )
    if spec is not None and tok.get("vocab_sha256") != spec.vocab_sha256:
        raise ManifestError(
            f"{where}: tokenizer {tok['name']!r} vocabulary sha256 {tok.get('vocab_sha256')} != "
            f"{spec.vocab_sha256} (tokenizers/{tok['name']}.toml); rebuild the shards of this "
            "stage"
        )
    if int(tok["vocab_size"]) > model_cfg.vocab_size:
        raise ManifestError(
            f"{where}: tokenizer vocab_size {tok['vocab_size']} > model vocab_size "
            f"{model_cfg.vocab_size}; the model has no embedding for the extra ids"
        )
    if not 0 <= int(tok["eot_id"]) < int(tok["vocab_size"]):
        raise ManifestError(f"{where}: eot_id {tok['eot_id']} outside the vocabulary of {tok['vocab_size']}")
    if max_token_id is not None and max_token_id >= int(tok["vocab_size"]):
        raise ManifestError(
            f"{where}: shards hold token id {max_token_id} >= the tokenizer's vocab_size "
            f"{tok['vocab_size']}: the shards were not written by this tokenizer"
        )
    train_len = seq_len or manifest.seq_len
    if manifest.seq_len % train_len:
        raise ManifestError(
            f"{where}: train seq_len {train_len} does not divide the manifest's seq_len "
            f"{manifest.seq_len} (packed sequences are cut into equal pieces)"
        )
    if train_len > model_cfg.max_position_embeddings:
        raise ManifestError(
            f"{where}: seq_len {train_len} > model max_position_embeddings "
            f"{model_cfg.max_position_embeddings}; use the long_context config (RoPE base / YaRN) or "
            "set train.seq_len lower"
        )


def tokenizer_spec(name: str) -> Any:
    """The `sharding.tokenizer.TokenizerSpec` of a tokenizer named in the manifest, or None when there is no
    `tokenizers/<name>.toml` (a test or synthetic tokenizer): then only the `[tokenizer]` config can pin it."""
    try:
        from sharding.tokenizer import SPECS_DIR, load_spec
    except ImportError:  # the trainer runs without the pipeline installed
        return None
    if not name or "/" in name or "\\" in name or name.startswith(".") or not (SPECS_DIR / f"{name}.toml").is_file():
        return None
    return load_spec(name)  # a spec that exists but is broken raises TokenizerError (a ValueError) naming it


class ShardDataset:
    """Random access to training sequences of `seq_len` tokens, `pieces` per packed manifest sequence."""

    def __init__(self, manifest: Manifest, seq_len: int = 0) -> None:
        self.manifest = manifest
        self.seq_len = seq_len or manifest.seq_len
        if manifest.seq_len % self.seq_len:
            raise ManifestError(f"seq_len {self.seq_len} does not divide the manifest's {manifest.seq_len}")
        self.pieces = manifest.seq_len // self.seq_len
        self._maps = [
            np.memmap(s.path, dtype="<u4", mode="r", shape=(s.num_sequences, manifest.seq_len))
            for s in manifest.shards
        ]
        self._starts = np.cumsum([0] + [s.num_sequences for s in manifest.shards])

    def __len__(self) -> int:
        return int(self._starts[-1]) * self.pieces

    def rows(self, indices: np.ndarray) -> np.ndarray:
        """Token rows (len(indices), seq_len) as int64."""
        out = np.empty((len(indices), self.seq_len), dtype=np.int64)
        for j, idx in enumerate(indices):
            seq, piece = divmod(int(idx), self.pieces)
            shard = int(np.searchsorted(self._starts, seq, side="right")) - 1
            row = self._maps[shard][seq - self._starts[shard]]
            out[j] = row[piece * self.seq_len : (piece + 1) * self.seq_len]
        return out


class Sampler:
    """Seeded epoch permutations over sequence indices, resumable from (epoch, index).

    Batches run across epoch ends without dropping a sequence: each epoch visits every index once.
    """

    def __init__(self, num_items: int, seed: int, epoch: int = 0, index: int = 0) -> None:
        if num_items <= 0:
            raise ManifestError("the manifest holds no sequences")
        self.num_items, self.seed, self.epoch, self.index = num_items, seed, epoch, index
        self._perm = self._permutation(epoch)

    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_items)

    def next_indices(self, n: int) -> np.ndarray:
        out = []
        while n > 0:
            take = min(n, self.num_items - self.index)
            out.append(self._perm[self.index : self.index + take])
            self.index += take
            n -= take
            if self.index == self.num_items:
                self.epoch, self.index = self.epoch + 1, 0
                self._perm = self._permutation(self.epoch)
        return np.concatenate(out)

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "epoch": self.epoch, "index": self.index, "num_items": self.num_items}

    @classmethod
    def from_state(cls, state: dict[str, int], num_items: int) -> Sampler:
        if state["num_items"] != num_items:
            raise ManifestError(
                f"checkpoint data position is over {state['num_items']} sequences, this manifest "
                f"has {num_items}: resume only on the shards it was trained on"
            )
        return cls(num_items, state["seed"], state["epoch"], state["index"])


class Batches:
    """(inputs_BS, targets_BS) int64 numpy batches: targets are inputs shifted left, the last position -100.

    NOTE: each packed sequence is an independent sample, so its last token has no target here; the next
    sequence's first token is not its continuation once the order is shuffled.
    """

    def __init__(self, dataset: ShardDataset, sampler: Sampler, batch_size: int) -> None:
        self.dataset, self.sampler, self.batch_size = dataset, sampler, batch_size

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        tokens_BS = self.dataset.rows(self.sampler.next_indices(self.batch_size))
        targets_BS = np.empty_like(tokens_BS)
        targets_BS[:, :-1] = tokens_BS[:, 1:]
        targets_BS[:, -1] = -100
        return tokens_BS, targets_BS
