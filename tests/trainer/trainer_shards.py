"""Test helper: shards + manifest written exactly per the ARCHITECTURE.md contract, from a byte-level tokenizer.

BYTES_TOKENIZER ("test_bytes_257"): a token is a UTF-8 byte (ids 0-255) and 256 is end-of-text; the model pads
the vocabulary to 512. It needs no downloaded vocabulary, so these tests run offline.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

EOT_ID = 256
BYTES_TOKENIZER = {
    "name": "test_bytes_257",
    "vocab_size": 257,
    "vocab_sha256": hashlib.sha256(b"utf-8 bytes + eot 256").hexdigest(),
    "eot_id": EOT_ID,
}


def byte_tokens(texts: list[str]) -> np.ndarray:
    """Documents as UTF-8 bytes, each followed by EOT, concatenated."""
    out: list[int] = []
    for text in texts:
        out.extend(text.encode("utf-8"))
        out.append(EOT_ID)
    return np.asarray(out, dtype=np.uint32)


def write_manifest(
    out_dir: Path,
    tokens: np.ndarray,
    seq_len: int,
    stage: str = "general",
    seqs_per_shard: int = 64,
    tokenizer: dict | None = None,
) -> Path:
    """Pack `tokens` into `seq_len` rows (the tail that does not fill a row is dropped), write shards + manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    n_seq = len(tokens) // seq_len
    rows = np.asarray(tokens[: n_seq * seq_len], dtype="<u4").reshape(n_seq, seq_len)
    shards = []
    for i, start in enumerate(range(0, n_seq, seqs_per_shard)):
        part = rows[start : start + seqs_per_shard]
        name = f"shard-{i:05d}.bin"
        data = part.tobytes()
        (out_dir / name).write_bytes(data)
        shards.append(
            {
                "path": name,
                "num_tokens": int(part.size),
                "num_sequences": len(part),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    manifest = {
        "format": "corpusforge-shards",
        "version": 1,
        "stage": stage,
        "seq_len": seq_len,
        "dtype": "uint32",
        "tokenizer": dict(tokenizer or BYTES_TOKENIZER),
        "total_tokens": int(n_seq * seq_len),
        "num_sequences": int(n_seq),
        "shards": shards,
        "inputs": {"corpus_sha256": "0" * 64, "config_sha256": "0" * 64},
    }
    path = out_dir / "manifest.json"
    path.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return path


def gsm8k_texts(corpora: Path, limit: int | None = None) -> list[str]:
    """Question + answer texts from the shared GSM8K test file (read at test time, never copied)."""
    lines = (corpora / "stem_math" / "gsm8k_test.jsonl").read_text(encoding="utf-8").splitlines()[:limit]
    return [f"{r['question']}\n{r['answer']}" for r in map(json.loads, lines)]


def byte_hf_tokenizer_json(path: Path) -> Path:
    """A Hugging Face tokenizer.json equal to BYTES_TOKENIZER: byte-level BPE with no merges, EOT = 256."""
    from tokenizers.pre_tokenizers import ByteLevel

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = ByteLevel.alphabet()  # the 256 printable stand-ins for bytes, in GPT-2's byte order
    byte_to_char = _bytes_to_unicode()
    vocab = {byte_to_char[b]: b for b in range(256)}
    assert set(vocab) == set(alphabet)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>"])
    assert tok.token_to_id("<|endoftext|>") == EOT_ID
    tok.save(str(path))
    return path


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}
