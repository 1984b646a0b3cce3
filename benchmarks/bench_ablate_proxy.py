"""Training throughput of the ablation proxy (issue 21: >= 10,000 tokens/s on the 2-core machine), byte-level vs o200k.

    flock /tmp/cf-bench.lock .venv/bin/python benchmarks/bench_ablate_proxy.py [--steps 12] [--threads 2]

Each variant trains `configs/trainer/proxy_cpu.toml` (model and train tables as shipped, one override each) with
`trainer.train.train_from_manifest` on a manifest of random ids of its vocabulary, and reports the trainer's median
tokens/s (wall, first step skipped). On a shared machine that figure falls with other people's load (10x at a load
average of 8 on 2 cores), so the load average is printed with each row; CPU time is no fairer a clock (OpenMP
threads spin while they wait).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ablate.config import DEFAULT_PROXY
from ablate.corpus import BYTES_TOKENIZER, load_proxy_tokenizer

VARIANTS = {
    "bytes": {},  # proxy_cpu.toml as shipped
    "o200k": {"tokenizer": "o200k_harmony"},  # the same model over o200k_harmony's 201,088 ids
    "bytes-h64": {"hidden_size": 64, "moe_intermediate_size": 64},
    "bytes-h64-b32": {"hidden_size": 64, "moe_intermediate_size": 64, "batch_size": 32},
    "bytes-b32": {"batch_size": 32},
    "bytes-b64": {"batch_size": 64},
}
MODEL_KEYS = ("hidden_size", "moe_intermediate_size")


def run_variant(name: str, steps: int, threads: int, work: Path) -> dict[str, float]:
    from sharding.manifest import write_manifest
    from sharding.writer import write_shard
    from trainer.config import load_config
    from trainer.train import train_from_manifest

    over = VARIANTS[name]
    cfg = load_config(DEFAULT_PROXY)
    tok = load_proxy_tokenizer(over.get("tokenizer", BYTES_TOKENIZER))
    model = dataclasses.replace(
        cfg.model, vocab_size=-(-tok.vocab_size // 128) * 128, **{k: v for k, v in over.items() if k in MODEL_KEYS}
    )
    train = dataclasses.replace(
        cfg.train,
        batch_size=over.get("batch_size", cfg.train.batch_size),
        init_from="",
        ckpt_every=0,
        threads=threads,
        log_every=steps,
    )
    tokenizer = dataclasses.replace(cfg.tokenizer, name=tok.name)
    cfg = dataclasses.replace(cfg, model=model, train=train, tokenizer=tokenizer)
    rows = train.batch_size * (steps + 2)
    ids = np.random.default_rng(0).integers(0, tok.vocab_size, size=rows * train.seq_len, dtype=np.uint32)
    out = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work))
    sha = write_shard(out / "shard-00000.bin", ids)
    write_manifest(
        out / "manifest.json",
        {
            "format": "corpusforge-shards",
            "version": 1,
            "stage": "general",
            "seq_len": train.seq_len,
            "dtype": "uint32",
            "tokenizer": tok.describe(),
            "total_tokens": int(ids.size),
            "num_sequences": rows,
            "shards": [{"path": "shard-00000.bin", "num_tokens": int(ids.size), "num_sequences": rows, "sha256": sha}],
            "inputs": {"corpus_sha256": "0" * 64, "config_sha256": "0" * 64},
        },
    )
    wall0 = time.perf_counter()
    result = train_from_manifest(out / "manifest.json", steps, config=cfg, out_dir=out / "train", log=lambda _: None)
    return {
        "params_m": result["num_params"] / 1e6,
        "tok_s_wall": result["tokens_per_s"],
        "wall_s": time.perf_counter() - wall0,
        "load": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names of VARIANTS")
    args = parser.parse_args()
    print(f"{'variant':<14} {'params':>8} {'tok/s':>8} {'wall':>7} {'load':>5}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.variants.split(","):
            r = run_variant(name, args.steps, args.threads, Path(tmp))
            print(
                f"{name:<14} {r['params_m']:>7.2f}M {r['tok_s_wall']:>8,.0f} {r['wall_s']:>6.1f}s {r['load']:>5.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
