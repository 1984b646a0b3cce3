"""`python -m flows.synth --from RUN_DIR --model HF_DIR --count N --out OUT_DIR`: synthetic documents from a
finished stage, through the same filters, dedup and decontamination, into a stage's shards.

    seeds (RUN_DIR's corpus) -> vLLM servers (local ones started and always stopped, or --servers) -> generations
      -> filters -> exact + MinHash dedup against RUN_DIR's documents -> decontamination -> OUT_DIR's shards

OUT_DIR is a stage run (default stage config: `configs/stages/reasoning.toml`) whose sources are RUN_DIR's
corpus and whose `[synth]` table comes from these flags: its corpus holds RUN_DIR's documents (first, so a
generation that repeats one is the duplicate) and the synthetic documents that survived; `python -m flows.query
--out OUT_DIR "SELECT * FROM synthetic"` gives one row per generation with its seed, template, model and fate.
A killed run resumes: finished requests are not sent again (synth/step.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from prefect import flow

from core.paths import STAGES_DIR
from core.stage_files import ConfigError
from pipeline.layout import RunLayout
from stage.config import SynthConfig, load_stage_config

DEFAULT_CONFIG = STAGES_DIR / "reasoning.toml"


def corpus_sources_file(run_dir: Path, out_dir: Path) -> Path:
    """A sources file that reads a finished corpus back, one Parquet source per domain (`corpus-<domain>`; the
    original document id is kept in `metadata.id`)."""
    docs = RunLayout(run_dir).corpus_docs
    domains = sorted(p.name.split("=", 1)[1] for p in docs.glob("domain=*") if any(p.rglob("*.parquet")))
    if not domains:
        raise FileNotFoundError(f"{run_dir}: the finished corpus holds no documents to seed from")
    lines = ["# Written by python -m flows.synth: the seed run's corpus, read back as sources.\n"]
    for d in domains:
        lines.append(
            f'[[source]]\nname = "corpus-{d}"\ndomain = "{d}"\nformat = "parquet"\n'
            f"path = {json.dumps(str((docs / f'domain={d}').resolve()) + '/**/*.parquet')}\n"
            f'text_field = "text"\nurl_field = "url"\nmetadata_fields = ["id"]\n'
        )
    path = out_dir / "synth" / "sources.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    tmp.replace(path)
    return path


def synth_table(args: Any, base: dict[str, Any]) -> dict[str, Any]:
    """The `[synth]` table: the stage config's own, with the command line's values over it."""
    table = {**base, "enabled": True, "model": str(Path(args.model).resolve()), "count": args.count}
    if args.servers:
        table["servers"] = [u.strip() for u in args.servers.split(",") if u.strip()]
    if args.templates:
        table["templates"] = [t.strip() for t in args.templates.split(",") if t.strip()]
    if args.seed is not None:
        table["seed"] = args.seed
    if args.num_servers is not None:
        table["num_local_servers"] = args.num_servers
    return table


def check(args: Any) -> tuple[str, Path, dict[str, Any]]:
    """Everything checkable before work: RUN_DIR's corpus, the model folder, the [synth] table, the stage
    config. Returns (stage, stage config path, [synth] table); raises with one line."""
    from core.stage_files import read_stage_file

    run_dir = Path(args.from_dir)
    if not RunLayout(run_dir).corpus_marker.is_file():
        raise FileNotFoundError(
            f"--from {run_dir}: no finished corpus there; run `python -m flows.stage general --out {run_dir}` first"
        )
    model = Path(args.model)
    if not (model / "config.json").is_file():
        raise FileNotFoundError(
            f"--model {model}: not a Hugging Face model folder (no config.json); export "
            "the trainer's checkpoint with `python -m trainer.export_hf`"
        )
    if not any(model.glob("*.safetensors")) and not any(model.glob("*.bin")):
        raise FileNotFoundError(f"--model {model}: no *.safetensors or *.bin weights")
    for url in (args.servers or "").split(","):
        if url.strip() and not url.strip().startswith(("http://", "https://")):
            raise ConfigError(f"--servers {url.strip()!r}: expected a base URL such as http://127.0.0.1:8000")
    config = Path(args.config) if args.config else DEFAULT_CONFIG
    cfg = load_stage_config("reasoning", config)
    base = read_stage_file(config)[0].get("synth", {})  # with the stage's base file merged in
    if "model" in base:  # relative to the stage file, like every path in it
        base["model"] = str((config.parent / base["model"]).resolve())
    table = synth_table(args, base)
    SynthConfig.from_table(f"{config}: [synth] (with the command line)", table, cfg.path.parent)
    if cfg.decontam.enabled:  # a required evaluation set that is missing: said now, not after generating
        from dedup.steps import resolve_eval_sets

        resolve_eval_sets(cfg.decontam.as_table(), cfg.path.parent)
    return cfg.stage, config, table


@flow(name="corpusforge-synth", log_prints=True)
def synth_flow(
    from_dir: str = "runs/general",
    model: str = "runs/general/hf",
    count: int = 100,
    out: str = "runs/synth",
    servers: str | None = None,
    templates: str | None = None,
    config: str | None = None,
    seed: int | None = None,
    num_servers: int | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Synthetic documents from the finished stage in `from_dir`, generated with the model in `model`, through
    the stage config's filters, dedup and decontamination into `out`'s shards (see the module docstring).

    Args:
        from_dir: a finished stage run (seeds; what generations are deduplicated against).
        model: local Hugging Face model folder.
        count: number of generations.
        out: run directory for the result.
        servers: comma-separated URLs of running vLLM servers (default: local ones, started and stopped here).
        templates: comma-separated template names or .toml paths (default: all).
        config: stage config (default: configs/stages/reasoning.toml).
        seed: run seed (default 0).
        num_servers: local servers to start (default 1).
        workers: worker processes for the work units.
    """
    from flows.stage import stage_flow

    args = SimpleNamespace(
        from_dir=from_dir,
        model=model,
        count=count,
        out=out,
        servers=servers,
        templates=templates,
        config=config,
        seed=seed,
        num_servers=num_servers,
    )
    stage, config_path, table = check(args)
    sources = corpus_sources_file(Path(from_dir), Path(out))
    return stage_flow(
        stage=stage,
        sources=str(sources),
        out=out,
        config=str(config_path),
        workers=workers,
        synth=table,
        synth_from=str(RunLayout(Path(from_dir)).corpus),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.synth",
        description=(
            "Generate synthetic documents (textbook sections, STEM problems with worked answers, instructions, code "
            "exercises, passages in the seed's language) with vLLM from seeds of a finished stage, and send them "
            "through the same filters, exact and MinHash dedup (against RUN_DIR's documents) and decontamination "
            "into a stage's shards. Without --servers, local vLLM servers (.venv-engine) are started for the run "
            "and always stopped. A killed run resumes without sending a finished request again."
        ),
        epilog='then: python -m flows.query --out OUT_DIR "SELECT template, fate, count(*) FROM synthetic GROUP BY ALL"',
    )
    parser.add_argument(
        "--from",
        dest="from_dir",
        required=True,
        metavar="RUN_DIR",
        help="a finished stage run: its corpus gives the seeds and is what generations are deduplicated against",
    )
    parser.add_argument(
        "--model",
        required=True,
        metavar="HF_DIR",
        help="local Hugging Face model folder to generate with (recorded with the sha256 of its weights); a real "
        "model: models/built/SmolLM2-135M-Instruct, which scripts/bootstrap.sh exports",
    )
    parser.add_argument("--count", required=True, type=int, metavar="N", help="number of generations (requests)")
    parser.add_argument("--out", required=True, metavar="OUT_DIR", help="run directory for the result")
    parser.add_argument(
        "--servers",
        metavar="URL,...",
        help="running OpenAI-compatible vLLM servers serving the model as 'corpusforge-synth'; "
        "requests are spread over them (default: start local ones)",
    )
    parser.add_argument(
        "--templates",
        metavar="NAME,...",
        help="templates from synth/templates (default: all; or paths to .toml files)",
    )
    parser.add_argument(
        "--config",
        metavar="STAGE_TOML",
        help="stage config whose filters, dedup, decontamination, mixture and shards apply, and whose "
        "[synth] table gives defaults; its sources are not read (default: "
        "configs/stages/reasoning.toml)",
    )
    parser.add_argument(
        "--seed", type=int, help="run seed: seeds sampled, request keys and sampling seeds (default 0)"
    )
    parser.add_argument("--num-servers", type=int, metavar="K", help="local servers to start (default 1)")
    parser.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes for the work units")
    parser.add_argument("--json", action="store_true", help="print the funnel as JSON at the end")
    from flows.stage import add_verbose_argument, run_cli, run_layout

    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    if args.count <= 0 or args.workers <= 0:
        parser.error("--count and --workers must be positive integers")

    return run_cli(
        lambda: check(args),
        lambda: synth_flow(
            from_dir=args.from_dir,
            model=args.model,
            count=args.count,
            out=args.out,
            servers=args.servers,
            templates=args.templates,
            config=args.config,
            seed=args.seed,
            num_servers=args.num_servers,
            workers=args.workers,
        ),
        as_json=args.json,
        run_errors=(ValueError,),
        layout=run_layout("reasoning", args.out),
        verbose=args.verbose,
    )


if __name__ == "__main__":
    sys.exit(main())
