"""`python -m flows.serve`: serve corpusforge's flows as Prefect deployments, to schedule, pause and start from the
Prefect UI.

The deployments, their default schedules, paused/active state, retries and default parameters are defined in
`flows/deployments.toml` (or `--config FILE`): one per curriculum stage (`corpusforge-stage/general`,
`.../reasoning`, `.../long_context`), the trainer (`corpusforge-train/train`), synthetic data and the proxy
ablation (`corpusforge-ablate/ablate`, flows/ablate.py). Each deployment runs at most
one flow run at a time (a Prefect deployment concurrency limit; later runs wait in the queue), so two runs of a
stage into its output directory never overlap, beyond the run directory's file lock.

    prefect server start --host 127.0.0.1          # SQLite under PREFECT_HOME; UI at http://127.0.0.1:4200
    PREFECT_API_URL=http://127.0.0.1:4200/api python -m flows.serve

This process runs the flow runs that the schedules or the UI start; stop it with Ctrl-C.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.paths import STAGES

DEFAULT_CONFIG = Path(__file__).with_name("deployments.toml")
FLOWS = ("stage", "train", "synth", "ablate")
_DEFAULT_KEYS = {"out_root", "timezone", "retries", "retry_delay_seconds", "paused"}
_DEPLOYMENT_KEYS = {"flow", "cron", "paused", "retries", "retry_delay_seconds", "parameters", "description"}


class DeploymentConfigError(ValueError):
    """The deployments file is wrong; the message names the file, the deployment and the key."""


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment as configured (see flows/deployments.toml)."""

    name: str
    flow: str
    cron: str | None
    timezone: str
    paused: bool
    retries: int
    retry_delay_seconds: int
    parameters: dict[str, Any] = field(default_factory=dict)
    description: str | None = None


def load_deployments(path: Path | str | None = None) -> tuple[list[DeploymentSpec], str]:
    """The configured deployments and the default run-directory root.

    Raises:
        DeploymentConfigError: unknown key, flow or stage, or a value of the wrong type (one line).
    """
    path = Path(path) if path else DEFAULT_CONFIG
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise DeploymentConfigError(f"{path}: no such deployments file") from e
    except tomllib.TOMLDecodeError as e:
        raise DeploymentConfigError(f"{path}: not valid TOML ({e})") from e
    unknown = set(data) - {"defaults", "deployment"}
    if unknown:
        raise DeploymentConfigError(f"{path}: unknown table(s) {sorted(unknown)}; allowed: defaults, deployment")
    defaults = data.get("defaults", {})
    if set(defaults) - _DEFAULT_KEYS:
        raise DeploymentConfigError(
            f"{path}: [defaults]: unknown key(s) {sorted(set(defaults) - _DEFAULT_KEYS)}; "
            f"allowed: {sorted(_DEFAULT_KEYS)}"
        )
    specs = []
    for name, table in data.get("deployment", {}).items():
        where = f"{path}: [deployment.{name}]"
        bad = set(table) - _DEPLOYMENT_KEYS
        if bad:
            raise DeploymentConfigError(f"{where}: unknown key(s) {sorted(bad)}; allowed: {sorted(_DEPLOYMENT_KEYS)}")
        flow = table.get("flow", "stage")
        if flow not in FLOWS:
            raise DeploymentConfigError(f"{where}: flow '{flow}' is not one of {list(FLOWS)}")
        if flow == "stage" and name not in STAGES:
            raise DeploymentConfigError(f"{where}: a stage deployment must be named after a stage {list(STAGES)}")
        merged = {**defaults, **table}
        for key, kind in (
            ("paused", bool),
            ("retries", int),
            ("retry_delay_seconds", int),
            ("cron", str),
            ("timezone", str),
            ("parameters", dict),
        ):
            if key in merged and not isinstance(merged[key], kind):
                raise DeploymentConfigError(f"{where}: '{key}' must be a {kind.__name__}")
        specs.append(
            DeploymentSpec(
                name=name,
                flow=flow,
                cron=merged.get("cron") or None,
                timezone=merged.get("timezone", "UTC"),
                paused=merged.get("paused", False),
                retries=merged.get("retries", 0),
                retry_delay_seconds=merged.get("retry_delay_seconds", 60),
                parameters=dict(merged.get("parameters", {})),
                description=merged.get("description"),
            )
        )
    return specs, defaults.get("out_root", "runs")


def _flow(kind: str) -> Any:
    if kind == "stage":
        from flows.stage import stage_flow

        return stage_flow
    if kind == "synth":
        from flows.synth import synth_flow

        return synth_flow
    if kind == "ablate":
        from flows.ablate import ablate_flow

        return ablate_flow
    from flows.train import train_flow

    return train_flow


def build_deployments(
    specs: list[DeploymentSpec] | None = None,
    out_root: str | None = None,
    only: list[str] | None = None,
    cron: str | None = None,
    limit: int | None = None,
    paused: bool | None = None,
    config: Path | str | None = None,
) -> list:
    """One `RunnerDeployment` per configured deployment: schedule, paused state, retries, concurrency, parameters.

    Args:
        specs: the deployments (default: `load_deployments(config)`).
        out_root: parent of the run directories (`<out_root>/<stage>`); default: the file's `out_root`.
        only: serve only these deployment names.
        cron: replace every deployment's schedule with this one.
        limit: records per source for the stage deployments (quick runs).
        paused: override every deployment's paused state.
    """
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    if specs is None:
        specs, file_root = load_deployments(config)
        out_root = out_root or file_root
    out_root = out_root or "runs"
    if only:
        missing = sorted(set(only) - {s.name for s in specs})
        if missing:
            raise DeploymentConfigError(f"unknown deployment(s) {missing}; configured: {[s.name for s in specs]}")
        specs = [s for s in specs if s.name in only]
    deployments = []
    for spec in specs:
        is_paused = spec.paused if paused is None else paused
        params = dict(spec.parameters)
        stage = params.get("stage", spec.name)
        if spec.flow not in ("synth", "ablate"):  # synth takes its stage from its config; ablate has none
            params.setdefault("stage", stage)
        params.setdefault("out", f"{out_root}/{stage}")
        if spec.flow == "stage" and limit is not None:
            params["limit"] = limit
        schedule = cron if cron is not None else spec.cron
        flow = _flow(spec.flow).with_options(retries=spec.retries, retry_delay_seconds=spec.retry_delay_seconds)
        deployments.append(
            flow.to_deployment(
                name=spec.name,
                schedules=[Cron(schedule, timezone=spec.timezone, active=not is_paused)] if schedule else None,
                paused=is_paused,
                parameters=params,
                # One run at a time per deployment; a second waits in the queue rather than being cancelled.
                concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
                tags=["corpusforge", spec.flow, stage],
                description=spec.description or _description(spec.flow, stage),
                # NOTE: by module path, not file path: a file-path entrypoint puts flows/ on sys.path, where
                # flows/report.py would shadow the `report` package.
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
        )
    return deployments


def _description(flow: str, stage: str) -> str:
    if flow == "stage":
        return f"corpusforge curriculum stage '{stage}': ingest, filter, dedup, decontaminate, shard, report."
    if flow == "synth":
        return (
            "corpusforge synthetic data: vLLM generations from a finished stage's seeds, through the filters, "
            "dedup and decontamination into a stage's shards, with provenance (the `synthetic` view)."
        )
    if flow == "ablate":
        return (
            "corpusforge proxy ablation: small MoE proxies trained on candidate corpora or mixtures under one "
            "token budget, scored on held-out text (results, report page, a searched [mixture])."
        )
    return f"corpusforge trainer: the bundled MoE model on the '{stage}' shards, then the run's report."


def run_dir_limit_name(run_dir: Path | str) -> str:
    """The name of the Prefect global concurrency limit that guards one run directory."""
    digest = hashlib.sha256(str(Path(run_dir).resolve()).encode()).hexdigest()[:16]
    return f"corpusforge-run-{Path(run_dir).name}-{digest}"


@contextmanager
def run_dir_slot(run_dir: Path | str, timeout_s: float | None = None) -> Iterator[str]:
    """Hold the run directory's Prefect global concurrency limit (one slot, created on first use) for the body.

    Two flow runs into one directory, from any deployment, a UI run with edited parameters or the CLI, then wait
    for each other in Prefect (visible in the UI under Concurrency) instead of failing on the run's file lock.

    Args:
        run_dir: the run directory (`out`).
        timeout_s: give up with `TimeoutError` after this long; None waits as long as it takes.
    """
    from prefect.client.orchestration import get_client
    from prefect.concurrency.sync import concurrency
    from prefect.exceptions import ObjectAlreadyExists

    name = run_dir_limit_name(run_dir)
    with get_client(sync_client=True) as client:
        try:
            client.upsert_global_concurrency_limit_by_name(name, 1)
        except ObjectAlreadyExists:  # another run created it between the read and the create
            pass
    with concurrency(name, occupy=1, strict=True, timeout_seconds=timeout_s):
        yield name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.serve",
        description=__doc__.splitlines()[0],
        epilog="Needs a running `prefect server start --host 127.0.0.1` and PREFECT_API_URL pointing at it.",
    )
    parser.add_argument("--config", help=f"deployments file (default: {DEFAULT_CONFIG.name} beside this module)")
    parser.add_argument("--only", action="append", metavar="NAME", help="serve only this deployment (repeatable)")
    parser.add_argument("--stage", action="append", choices=STAGES, help="alias of --only for a stage")
    parser.add_argument("--out-root", help="parent of the run directories (default: the file's out_root, 'runs')")
    parser.add_argument("--cron", help="replace every schedule, e.g. '0 3 * * *'")
    parser.add_argument("--limit", type=int, help="records per source for the stage deployments (quick runs)")
    state = parser.add_mutually_exclusive_group()
    state.add_argument("--paused", dest="paused", action="store_true", default=None, help="register all paused")
    state.add_argument("--active", dest="paused", action="store_false", help="register all with schedules on")
    args = parser.parse_args(argv)
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        print(
            "error: PREFECT_API_URL is not set; start `prefect server start --host 127.0.0.1` and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api",
            file=sys.stderr,
        )
        return 2
    try:
        deployments = build_deployments(
            out_root=args.out_root,
            only=(args.only or []) + (args.stage or []) or None,
            cron=args.cron,
            limit=args.limit,
            paused=args.paused,
            config=args.config,
        )
    except DeploymentConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from prefect import serve

    serve(*deployments)
    return 0


if __name__ == "__main__":
    sys.exit(main())
