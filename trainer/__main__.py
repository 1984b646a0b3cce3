"""`python -m trainer --manifest PATH --steps N [--config FILE]`: train one curriculum stage on its shards.

Examples:
    python -m trainer --manifest runs/general/shards/general/manifest.json --steps 300 \\
        --config configs/trainer/tiny_cpu.toml
    python -m trainer --manifest runs/long_context/shards/long_context/manifest.json --steps 100 \\
        --config configs/trainer/long_context.toml --set train.lr=1e-4

The run refuses to start on a shard checksum mismatch, a tokenizer / vocabulary that differs from the config,
or a sequence length the model cannot serve. A rerun with the same --out resumes from its checkpoint.
A stage after `general` starts from the previous stage's checkpoint (train.init_from = "previous_stage").
Export with `python -m trainer.export_hf CHECKPOINT OUT_DIR`.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path


def _parse_set(items: list[str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for item in items:
        key, sep, value = item.partition("=")
        table, dot, name = key.partition(".")
        if not sep or not dot:
            raise ValueError(f"--set expects TABLE.KEY=VALUE (e.g. train.lr=1e-3), got {item!r}")
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed = value  # a bare string
        out.setdefault(table, {})[name] = parsed
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trainer", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--manifest", type=Path, required=True, help="the stage's shards manifest.json")
    parser.add_argument("--steps", type=int, required=True, help="total optimizer steps for this stage")
    parser.add_argument("--config", type=Path, default=None, help="trainer TOML (configs/trainer/*.toml)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="checkpoint/log folder (default: <runs>/<stage>/train beside the shards)",
    )
    parser.add_argument("--init-from", type=Path, default=None, help="start from this checkpoint's weights")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="TABLE.KEY=VALUE",
        help="override a config value, e.g. --set train.lr=1e-3 --set model.rope_theta=1e6",
    )
    args = parser.parse_args(argv)

    from trainer.config import ConfigError, load_config
    from trainer.data import ManifestError
    from trainer.train import train_from_manifest

    try:
        cfg = load_config(args.config, _parse_set(args.set))
        result = train_from_manifest(args.manifest, args.steps, cfg, args.out, args.init_from)
    except (ConfigError, ManifestError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rate = f", {result['tokens_per_s']:,.0f} tok/s" if result["tokens_per_s"] else ""
    print(
        f"done: {result['stage']} step {result['steps']}, loss {result['final_loss']}{rate}, "
        f"checkpoint {result['checkpoint']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
