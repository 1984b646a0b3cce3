"""GPU throughput check: train configs/trainer/gpu_100m.toml on synthetic shards, print tokens/s and MFU.

Runs offline (no corpora, no downloads): it writes a manifest of Zipf-distributed random token ids per the
shard contract into a temporary folder, so the measured speed is the trainer's, not the data's.

    python benchmarks/gpu_train.py [--steps 300] [--config configs/trainer/gpu_100m.toml] [--set train.compile=true]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def synthetic_manifest(out: Path, vocab: int, seq_len: int, num_sequences: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    tokens = (rng.zipf(1.2, size=num_sequences * seq_len) % (vocab - 1)).astype("<u4")
    data = tokens.tobytes()
    (out / "shard-00000.bin").write_bytes(data)
    manifest = {
        "format": "corpusforge-shards",
        "version": 1,
        "stage": "general",
        "seq_len": seq_len,
        "dtype": "uint32",
        "tokenizer": {"name": "synthetic_zipf", "vocab_size": vocab, "vocab_sha256": "0" * 64, "eot_id": vocab - 1},
        "total_tokens": len(tokens),
        "num_sequences": num_sequences,
        "shards": [
            {
                "path": "shard-00000.bin",
                "num_tokens": len(tokens),
                "num_sequences": num_sequences,
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        ],
        "inputs": {"corpus_sha256": "0" * 64, "config_sha256": "0" * 64},
    }
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out / "manifest.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "trainer" / "gpu_100m.toml")
    parser.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE")
    args = parser.parse_args()

    import torch

    from trainer.__main__ import _parse_set
    from trainer.config import load_config
    from trainer.train import train_from_manifest

    if not torch.cuda.is_available():
        print("no CUDA device: this script measures GPU throughput", file=sys.stderr)
        return 2
    cfg = load_config(args.config, _parse_set(args.set))
    seq_len = cfg.train.seq_len or 2048
    n_seq = max(cfg.train.batch_size * cfg.train.grad_accum * 8, 256)  # 8+ steps per epoch
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, config {args.config.name}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs" / "general" / "shards" / "general"
        root.mkdir(parents=True)
        manifest = synthetic_manifest(root, cfg.model.vocab_size, seq_len, n_seq)
        t0 = time.time()
        r = train_from_manifest(manifest, args.steps, cfg, Path(tmp) / "train")
        wall = time.time() - t0
    mfu = f"{r['mfu'] * 100:.1f}%" if r["mfu"] is not None else "n/a (unknown peak)"
    print(
        f"\nRESULT params {r['num_params'] / 1e6:.1f}M | tokens/step {r['tokens_per_step']:,} | "
        f"median tok/s {r['tokens_per_s']:,.0f} | MFU {mfu} | final loss {r['final_loss']:.3f} | "
        f"wall {wall:.0f}s | peak mem {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
