"""`shards/<stage>/manifest.json`: the only file the trainer reads (contract in ARCHITECTURE.md).

Fields (fixed; new ones may be added, none renamed or removed)::

    format "corpusforge-shards", version 1, stage, seq_len, dtype "uint32",
    tokenizer {name, vocab_size, vocab_sha256, eot_id, normalization},
    total_tokens, num_sequences,
    shards [{path, num_tokens, num_sequences, sha256}],   # path relative to the manifest's folder
    inputs {corpus_sha256, config_sha256},
    index {path, format, files [{path, sha256}]},          # document placements (Parquet)
    exports {datatrove|megatron: {files [{path, sha256}]}}, mixture [...], packing {...}

`verify_manifest` re-hashes every shard (and every index and export file; a hard link once) against it;
`python -m sharding.verify MANIFEST` exits 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from core.io import atomic_write_json, file_sha256

FORMAT, VERSION = "corpusforge-shards", 1
REQUIRED = (
    "format",
    "version",
    "stage",
    "seq_len",
    "dtype",
    "tokenizer",
    "total_tokens",
    "num_sequences",
    "shards",
    "inputs",
)


class ManifestError(ValueError):
    """A manifest is malformed; the message names the field."""


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    check_manifest(manifest)
    atomic_write_json(path, manifest)  # sorted keys, no timestamps: same inputs give the same bytes


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ManifestError(f"{path}: cannot read manifest: {e}") from e
    check_manifest(manifest)
    return manifest


def check_manifest(m: dict[str, Any]) -> None:
    """Shape and arithmetic of a manifest (not the files): the contract the trainer relies on."""
    missing = [k for k in REQUIRED if k not in m]
    if missing:
        raise ManifestError(f"manifest lacks field(s) {missing}")
    if m["format"] != FORMAT or m["version"] != VERSION:
        raise ManifestError(f"manifest format {m['format']!r} v{m['version']}, expected {FORMAT!r} v{VERSION}")
    if m["dtype"] != "uint32":
        raise ManifestError(f"manifest dtype {m['dtype']!r}; only uint32 is written")
    for k in ("name", "vocab_size", "vocab_sha256", "eot_id"):
        if k not in m["tokenizer"]:
            raise ManifestError(f"manifest tokenizer lacks {k!r}")
    for k in ("corpus_sha256", "config_sha256"):
        if k not in m["inputs"]:
            raise ManifestError(f"manifest inputs lack {k!r}")
    seq_len = m["seq_len"]
    for s in m["shards"]:
        if s["num_tokens"] != s["num_sequences"] * seq_len:
            raise ManifestError(f"shard {s['path']}: num_tokens {s['num_tokens']} != {s['num_sequences']} x {seq_len}")
    if sum(s["num_tokens"] for s in m["shards"]) != m["total_tokens"]:
        raise ManifestError(f"total_tokens {m['total_tokens']} != sum over shards")
    if sum(s["num_sequences"] for s in m["shards"]) != m["num_sequences"]:
        raise ManifestError(f"num_sequences {m['num_sequences']} != sum over shards")


def _listed_files(m: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    files = [("shard", s) for s in m["shards"]]
    files += [("index", f) for f in m.get("index", {}).get("files", [])]
    for name, exp in sorted(m.get("exports", {}).items()):
        files += [(f"export:{name}", f) for f in exp.get("files", [])]
    return files


def verify_manifest(path: Path, threads: int | None = None) -> list[str]:
    """Re-hash every file the manifest lists; return one line per problem (empty = all good).

    Each inode is hashed once (an export's token file is a hard link of its shard), by `threads` threads
    (default: up to 8; hashlib releases the GIL): ~2 s per GB and thread where sha256 runs at ~0.5 GB/s.
    """
    from concurrent.futures import ThreadPoolExecutor

    path = Path(path)
    try:
        m = read_manifest(path)
    except ManifestError as e:
        return [str(e)]
    problems = []
    checks: list[tuple[str, dict[str, Any], tuple[int, int]]] = []
    first: dict[tuple[int, int], Path] = {}  # (device, inode) -> a path to read it by
    for kind, f in _listed_files(m):
        p = path.parent / f["path"]
        if not p.is_file():
            problems.append(f"{kind} {f['path']}: missing")
            continue
        st = p.stat()
        if "num_tokens" in f and st.st_size != f["num_tokens"] * 4:
            problems.append(f"{kind} {f['path']}: {st.st_size} bytes, expected {f['num_tokens'] * 4}")
            continue
        checks.append((kind, f, (st.st_dev, st.st_ino)))
        first.setdefault((st.st_dev, st.st_ino), p)
    workers = max(1, min(threads or min(8, os.cpu_count() or 1), len(first)))
    with ThreadPoolExecutor(workers) as pool:
        digests = dict(zip(first, pool.map(file_sha256, first.values())))
    for kind, f, inode in checks:
        if digests[inode] != f["sha256"]:
            problems.append(f"{kind} {f['path']}: sha256 {digests[inode]}, manifest says {f['sha256']}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sharding.verify",
        description="Re-hash every shard (and index/export file) against its manifest; exit 1 on any mismatch.",
    )
    parser.add_argument("manifests", nargs="+", type=Path, help="shards/<stage>/manifest.json file(s)")
    args = parser.parse_args(argv)
    bad = 0
    for path in args.manifests:
        problems = verify_manifest(path)
        if problems:
            bad += 1
            for line in problems:
                print(f"{path}: {line}", file=sys.stderr)
        else:
            m = read_manifest(path)
            print(
                f"{path}: ok ({len(m['shards'])} shards, {m['total_tokens']:,} tokens, {len(_listed_files(m))} files)"
            )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
