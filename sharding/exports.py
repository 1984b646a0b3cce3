"""Exports of the same shards for other trainers: datatrove/nanotron `.ds` and Megatron `.bin/.idx`.

Both token files are byte-identical to our shard (hard-linked where the filesystem allows, else copied),
so only the index files are new. "Documents" are the EOT-terminated runs of a shard; a document that
continues into the next shard ends at the shard's end (encode_ordinary never emits the EOT id, so the EOT
positions are exactly the document ends).

datatrove / nanotron (`datatrove.pipeline.tokens.tokenizer.TokenizedFile`, read by
`datatrove.utils.dataset.DatatroveFileDataset` and nanotron's `DatatroveFolderDataset` with token_size=4):
  - `<name>.ds`: little-endian uint32 token ids (token_size 4), no header.
  - `<name>.ds.index`: little-endian uint64, one per document: its exclusive end, in tokens, from the
    start of the file (cumulative; the last equals the file's token count).
  - `<name>.ds.metadata`: text, three lines: `<tokenizer>|4`, the token count, the count in millions.
  NOTE: those readers cut windows of seq_len + 1 tokens (inputs and shifted targets), not our seq_len.

Megatron-LM (`megatron.core.datasets.indexed_dataset`, MMapIndexedDataset, index version 1):
  - `<name>.bin`: the token ids as int32 (DType code 4; Megatron has no uint32 code, and every id is
    < 2**31, so the bytes equal our uint32 shard).
  - `<name>.idx`, little-endian: magic `b"MMIDIDX\\x00\\x00"` (9 bytes); version `<Q` = 1; dtype code
    `<B` = 4 (int32); sequence count N `<Q`; document count N + 1 `<Q`; sequence lengths int32[N] (tokens,
    EOT included); sequence pointers int64[N] (byte offset of each sequence in `.bin`); document indices
    int64[N + 1] = 0, 1, ..., N (one sequence per document, as `preprocess_data.py --append-eod` writes).
"""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path
from typing import Any

import numpy as np

from core.io import atomic_write_bytes, file_sha256

MEGATRON_MAGIC = b"MMIDIDX\x00\x00"
MEGATRON_VERSION = 1
MEGATRON_INT32 = 4  # megatron.core.datasets.indexed_dataset.DType.int32
EXPORTS = ("datatrove", "megatron")


def document_ends(tokens: np.ndarray, eot_id: int) -> np.ndarray:
    """Exclusive end of every document run in a shard (after each EOT, and the shard's end)."""
    ends = np.flatnonzero(tokens == eot_id).astype(np.int64) + 1
    if tokens.size and (ends.size == 0 or ends[-1] != tokens.size):
        ends = np.append(ends, np.int64(tokens.size))
    return ends


def _link_or_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def megatron_index(lengths: np.ndarray) -> bytes:
    lengths = np.asarray(lengths, dtype="<i4")
    pointers = (
        np.concatenate([[0], np.cumsum(lengths.astype(np.int64))[:-1] * 4]).astype("<i8")
        if lengths.size
        else np.zeros(0, dtype="<i8")
    )
    doc_idx = np.arange(lengths.size + 1, dtype="<i8")
    header = MEGATRON_MAGIC + struct.pack("<Q", MEGATRON_VERSION) + struct.pack("<B", MEGATRON_INT32)
    header += struct.pack("<Q", lengths.size) + struct.pack("<Q", doc_idx.size)
    return header + lengths.tobytes() + pointers.tobytes() + doc_idx.tobytes()


def read_megatron_index(path: Path) -> dict[str, np.ndarray]:
    """Parse a `.idx` written by `megatron_index` (checks magic, version and dtype)."""
    data = Path(path).read_bytes()
    if data[:9] != MEGATRON_MAGIC:
        raise ValueError(f"{path}: bad magic {data[:9]!r}, expected {MEGATRON_MAGIC!r}")
    (version,) = struct.unpack_from("<Q", data, 9)
    (code,) = struct.unpack_from("<B", data, 17)
    if version != MEGATRON_VERSION or code != MEGATRON_INT32:
        raise ValueError(
            f"{path}: version {version} dtype code {code}, expected {MEGATRON_VERSION} and {MEGATRON_INT32}"
        )
    n, ndocs = struct.unpack_from("<QQ", data, 18)
    off = 34
    lengths = np.frombuffer(data, dtype="<i4", count=n, offset=off)
    off += 4 * n
    pointers = np.frombuffer(data, dtype="<i8", count=n, offset=off)
    off += 8 * n
    doc_idx = np.frombuffer(data, dtype="<i8", count=ndocs, offset=off)
    if off + 8 * ndocs != len(data):
        raise ValueError(f"{path}: {len(data) - off - 8 * ndocs} trailing bytes")
    return {"lengths": lengths, "pointers": pointers, "document_indices": doc_idx}


def token_file(kind: str, shard_path: str) -> str:
    """Where an export keeps its copy of a shard's tokens (a hard link of the shard), relative to the manifest."""
    stem = Path(shard_path).stem
    return f"exports/{kind}/{stem}.ds" if kind == "datatrove" else f"exports/{kind}/{stem}.bin"


def write_export_indexes(
    out_dir: Path, shards: list[dict[str, Any]], tokens: list[Path], tokenizer: dict[str, Any], kinds: list[str]
) -> dict[str, Any]:
    """Write the index files of every requested export under `out_dir/exports/<kind>/` (the token files are
    the shards themselves: `link_export_tokens` adds them where the manifest is published).

    Args:
        shards: the manifest's shard records, in order.
        tokens: each shard's file, to read its document ends from.

    Returns:
        the manifest's `exports` object: {kind: {"files": [{path, sha256}], "layout": ...}}.
    """
    unknown = set(kinds) - set(EXPORTS)
    if unknown:
        raise ValueError(f"[shards] exports: unknown {sorted(unknown)}; known: {list(EXPORTS)}")
    ends_of = [document_ends(np.fromfile(p, dtype="<u4"), tokenizer["eot_id"]) for p in tokens] if kinds else []
    out: dict[str, Any] = {}
    for kind in kinds:
        files = []
        for s, ends in zip(shards, ends_of):
            stem = Path(s["path"]).stem
            if kind == "datatrove":
                count = s["num_tokens"]
                meta = f"{tokenizer['name']}|4\n{count}\n{count / 1e6:.1f}M"
                index = {f"{stem}.ds.index": ends.astype("<u8").tobytes(), f"{stem}.ds.metadata": meta.encode()}
            else:
                index = {f"{stem}.idx": megatron_index(np.diff(np.concatenate([[0], ends])))}
            files.append({"path": token_file(kind, s["path"]), "sha256": s["sha256"]})
            for name, data in index.items():
                rel = f"exports/{kind}/{name}"
                atomic_write_bytes(out_dir / rel, data)
                files.append({"path": rel, "sha256": file_sha256(out_dir / rel)})
        out[kind] = {"files": files, "layout": "see sharding/exports.py"}
    return out


def link_export_tokens(stage_dir: Path, shards: list[dict[str, Any]], kinds: list[str]) -> None:
    """Each export's token files: hard links of the shards in `stage_dir` (copies where links fail)."""
    for kind in kinds:
        for s in shards:
            dst = stage_dir / token_file(kind, s["path"])
            dst.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(stage_dir / s["path"], dst)
