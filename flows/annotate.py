"""`python -m flows.annotate --from RUN_DIR --rubric NAME --out OUT_DIR`: label a stratified sample of a finished
corpus with an LLM through the synth engine (annotate/).

    RUN_DIR's corpus -> stratified sample (domain, language, source; seeded) -> rubric prompts -> vLLM servers
      (local ones started and always stopped, or --servers) -> OUT_DIR/annotations/<rubric>.parquet

The default annotator is SmolLM2-135M-Instruct as set-up exports it (`bash scripts/bootstrap.sh`). Rubrics:
`educational_value` (FineWeb-Edu's additive 0-5), `topic` and `format` (WebOrganizer's domains), `safety` (harm
categories), or a rubric file. A killed run resumes without sending a finished request again; the same inputs and
seed give the same sample and the same requests. No Prefect flow: the work is one journaled batch of requests with
its own resume, and a private Prefect server would cost more than it orchestrates.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from annotate.config import AnnotateConfig
    from synth.templates import Template

EPILOG = """then:
  python -m flows.query --out OUT_DIR "SELECT rubric, label, count(*) FROM annotations GROUP BY ALL ORDER BY 1, 2"
  python -m flows.query --out OUT_DIR "SELECT fate, count(*) FROM annotations GROUP BY ALL"
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from annotate.rubrics import available_rubrics

    parser = argparse.ArgumentParser(
        prog="python -m flows.annotate",
        description="Label a seeded sample of a finished corpus, stratified by domain, language and source, with an\n"
        "LLM through the synth engine (local vLLM servers started for the run and always stopped, or --servers).\n"
        "A killed run resumes without sending a finished request again.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--from", dest="from_dir", required=True, metavar="RUN_DIR", help="a finished stage run")
    parser.add_argument(
        "--rubric", metavar="NAME", help=f"one of {available_rubrics()}, or a rubric .toml file (or the config's)"
    )
    parser.add_argument(
        "--model",
        metavar="DIR",
        help="the annotator, a local Hugging Face folder (default: SmolLM2-135M-Instruct as set-up exports it)",
    )
    parser.add_argument("--count", type=int, metavar="N", help="documents to label (default 100, or the config's)")
    parser.add_argument("--seed", type=int, help="the sample, request keys and sampling seeds (default 0)")
    parser.add_argument(
        "--servers",
        metavar="URL,...",
        help="running vLLM servers serving the model as 'corpusforge-synth' (default: start local ones)",
    )
    parser.add_argument("--config", metavar="FILE", help="a TOML file with an [annotate] table (annotate/config.py)")
    parser.add_argument("--out", required=True, metavar="OUT_DIR", help="the annotation folder")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser.parse_args(argv)


def check(args: argparse.Namespace) -> tuple[AnnotateConfig, Template, Path]:
    """Everything checkable before work: the run's corpus, the config, the rubric, the model folder. Returns
    (config, rubric, model folder); raises with one line."""
    from annotate.config import load_annotate_config
    from annotate.rubrics import load_rubric
    from core.stage_files import ConfigError
    from pipeline.layout import RunLayout
    from synth.models import exported_model

    run_dir = Path(args.from_dir)
    if not RunLayout(run_dir).corpus_marker.is_file():
        raise FileNotFoundError(
            f"--from {run_dir}: no finished corpus there; run `python -m flows.stage general --out {run_dir}` first"
        )
    cfg = load_annotate_config(Path(args.config) if args.config else None)
    servers = tuple(u.strip() for u in args.servers.split(",") if u.strip()) if args.servers else None
    cfg = cfg.with_overrides(
        rubric=args.rubric,
        model=Path(args.model).resolve() if args.model else None,
        count=args.count,
        seed=args.seed,
        servers=servers,
    )
    if cfg.rubric is None:
        raise ConfigError("no rubric: pass --rubric NAME (or set rubric in the config's [annotate] table)")
    rubric = load_rubric(cfg.rubric)
    model = cfg.model or exported_model("smollm2")
    if not (model / "config.json").is_file():
        raise FileNotFoundError(f"--model {model}: not a Hugging Face model folder (no config.json)")
    if not any(model.glob("*.safetensors")) and not any(model.glob("*.bin")):
        raise FileNotFoundError(f"--model {model}: no *.safetensors or *.bin weights")
    return cfg, rubric, model


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from annotate.run import annotate

    try:
        cfg, rubric, model = check(args)
    except (FileNotFoundError, ValueError) as e:  # ConfigError and TemplateError are ValueErrors
        print(f"error: {e}", file=sys.stderr)
        return 2
    summary = annotate(
        args.from_dir,
        rubric,
        model,
        args.out,
        count=cfg.count,
        seed=cfg.seed,
        servers=list(cfg.servers) or None,
        sampling=cfg.sampling,
        max_concurrency=cfg.max_concurrency,
        num_local_servers=cfg.num_local_servers,
        server_kwargs=cfg.server,
        progress=sys.stderr.isatty(),
    )
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(
            f"{args.out}: {summary['labelled']} of {summary['sampled']} documents labelled with {rubric.ref} "
            f"({summary['sent']} requests sent, {summary['skipped']} resumed); fates {summary['fates']}"
        )
        cost = summary["cost"]
        print(
            f"cost: {cost['prompt_tokens']:,} prompt + {cost['completion_tokens']:,} completion tokens, "
            f"{cost['request_seconds']:,} s of requests ({cost['seconds_per_document']} s per document)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
