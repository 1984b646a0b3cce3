"""A tiny model trained by our own trainer and exported for vLLM: what the synth tests and benchmarks serve.

    python -m tests.synth.tiny_model OUT_DIR [--steps 30] [--tokenizer qwen]

Closes the loop the issue asks for, on a scale that fits 2 CPU cores: text that a pip package ships
(scikit-learn's dataset descriptions) -> our tokenizer -> shards + manifest -> `trainer.train_from_manifest`
(`tests/synth/tiny_vllm_cpu.toml`) -> `trainer.export_hf` (its tokenizer built by `trainer.export_tokenizer`). The
result is a Hugging Face Qwen3-MoE folder that transformers and vLLM load. Nothing is downloaded. The output is
deterministic (seeded trainer, sorted inputs), and rebuilt only when its inputs change (a stamp holds their
fingerprint).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

CONFIG = Path(__file__).with_name("tiny_vllm_cpu.toml")
STAMP = ".corpusforge-tiny-model.json"


def training_texts() -> list[str]:
    """scikit-learn's dataset descriptions (English prose about data, with numbers): shipped, stable text."""
    import sklearn

    descr = Path(sklearn.__file__).parent / "datasets" / "descr"
    files = sorted(descr.glob("*.rst"))
    if not files:
        raise FileNotFoundError(
            f"no dataset descriptions under {descr}; install scikit-learn (bash scripts/bootstrap.sh)"
        )
    return [p.read_text(encoding="utf-8") for p in files]


def _write_manifest(out_dir: Path, tokens: np.ndarray, seq_len: int, tokenizer: dict) -> Path:
    """One shard of `seq_len` rows and its manifest, per ARCHITECTURE.md's contract."""
    from sharding.writer import write_shard

    out_dir.mkdir(parents=True, exist_ok=True)
    n_seq = len(tokens) // seq_len
    rows = tokens[: n_seq * seq_len]
    sha = write_shard(out_dir / "shard-00000.bin", rows)
    manifest = {
        "format": "corpusforge-shards",
        "version": 1,
        "stage": "synth_tiny",
        "seq_len": seq_len,
        "dtype": "uint32",
        "tokenizer": tokenizer,
        "total_tokens": int(rows.size),
        "num_sequences": int(n_seq),
        "shards": [
            {"path": "shard-00000.bin", "num_tokens": int(rows.size), "num_sequences": int(n_seq), "sha256": sha}
        ],
        "inputs": {"corpus_sha256": hashlib.sha256(rows.tobytes()).hexdigest(), "config_sha256": "0" * 64},
    }
    path = out_dir / "manifest.json"
    path.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return path


def build_tiny_model(out_dir: Path | str, steps: int = 30, tokenizer: str = "qwen", log=lambda s: None) -> Path:
    """Train, export and return the Hugging Face folder `out_dir/hf` (reused when already built).

    Args:
        out_dir: work folder; `shards/`, `train/` and `hf/` are written under it.
        steps: optimizer steps (30 take ~20 s on 2 cores with Qwen's vocabulary).
        tokenizer: "qwen" (151,669 ids) or "o200k_harmony" (201,088 ids: larger embedding, slower sampling).
        log: receives the trainer's log lines.
    """
    from sharding.tokenizer import load_tokenizer
    from trainer.config import load_config
    from trainer.export_hf import export_hf
    from trainer.train import train_from_manifest

    out = Path(out_dir)
    hf = out / "hf"
    texts = training_texts()
    key = hashlib.sha256(json.dumps([steps, tokenizer, CONFIG.read_text(), texts]).encode()).hexdigest()
    stamp = hf / STAMP
    if stamp.is_file() and json.loads(stamp.read_text()).get("key") == key:
        return hf
    tok = load_tokenizer(tokenizer)
    ids = [np.append(tok.encode_np(t), np.uint32(tok.eot_id)) for t in texts]
    manifest = _write_manifest(out / "shards", np.concatenate(ids).astype(np.uint32), 512, tok.describe())
    cfg = load_config(CONFIG)
    result = train_from_manifest(manifest, steps, cfg, out / "train", log=log)
    # The tokenizer files come with it: built from the ranks the shards were tokenized with, for either
    # tokenizer, with the chat template the templates' formats use.
    export_hf(result["checkpoint"], hf)
    stamp.write_text(json.dumps({"key": key, "steps": steps, "tokenizer": tokenizer}) + "\n", encoding="utf-8")
    return hf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.synth.tiny_model", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--tokenizer", default="qwen", choices=["qwen", "o200k_harmony"])
    args = parser.parse_args(argv)
    path = build_tiny_model(args.out_dir, args.steps, args.tokenizer, log=print)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
