"""The training loop, torchtitan's way: build the run, resume or init, and per step: train, log, checkpoint. The
optimizer and schedule are `trainer/optim.py`'s, the step's numbers and lines `trainer/metrics.py`'s, the
checkpoint file `trainer/checkpoint.py`'s.

`train_from_manifest(manifest, steps, config, out_dir)` trains one curriculum stage on its shard manifest
and is what `python -m trainer` and `python -m flows.stage <stage> --train-steps N` call. A stage continues
from the previous stage's checkpoint (general -> reasoning -> long_context); a rerun resumes from its own
`<out_dir>/checkpoint.pt` (model, optimizer, data position, RNG) and stops at `steps`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.layout import RunLayout
from trainer.checkpoint import (
    CHECKPOINT,
    CHECKPOINT_VERSION,
    TRAIN_LOG,
    load_checkpoint,
    load_init_weights,
    previous_stage_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from trainer.config import Config, ModelConfig, TrainConfig, load_config
from trainer.data import (
    Batches,
    Manifest,
    ManifestError,
    Sampler,
    ShardDataset,
    check_compatible,
    load_manifest,
    verify_shards,
)
from trainer.metrics import StepMetrics, Throughput, TrainProgress, format_log
from trainer.model import MoETransformer
from trainer.optim import build_optimizers, clip_grad_norm, lr_at

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------------------------
# Device and precision.


def resolve_device(train: TrainConfig) -> torch.device:
    if train.device == "cuda" or (train.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ValueError("train.device = 'cuda' but torch sees no CUDA device; use 'auto' or 'cpu'")
        return torch.device("cuda")
    return torch.device("cpu")


def autocast_dtype(train: TrainConfig, device: torch.device) -> torch.dtype | None:
    """bf16 autocast where the device supports it ("auto": CUDA with bf16), else fp32 (None)."""
    if train.dtype == "fp32":
        return None
    if train.dtype == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


# ---------------------------------------------------------------------------------------------------------------
# The loop, torchtitan's way: build, resume or init, then per step: train, log, checkpoint.


@dataclass
class TrainRun:
    """What one stage's training carries from step to step: the model, its optimizers, the data position."""

    cfg: Config
    manifest: Manifest
    manifest_path: Path
    out: Path
    device: torch.device
    amp: torch.dtype | None
    model: MoETransformer
    opts: list[torch.optim.Optimizer]
    dataset: ShardDataset
    sampler: Sampler
    start_step: int = 0
    init_info: dict[str, Any] | None = None

    @property
    def checkpoint(self) -> Path:
        return self.out / CHECKPOINT

    @property
    def log_jsonl(self) -> Path:
        return self.out / TRAIN_LOG


def build_run(cfg: Config, manifest_path: Path, out_dir: Path | str | None) -> TrainRun:
    """Check the config against the manifest (every refusal happens before the model exists), then build the
    model, data and optimizers from the config's seed."""
    m = load_manifest(manifest_path)
    mcfg, tcfg = cfg.model, cfg.train
    if mcfg.vocab_size == 0:
        mcfg = dataclasses.replace(mcfg, vocab_size=-(-int(m.tokenizer["vocab_size"]) // 128) * 128)
        cfg = dataclasses.replace(cfg, model=mcfg)
    max_id = verify_shards(m) if tcfg.verify_shards else None
    check_compatible(m, mcfg, cfg.tokenizer, tcfg.seq_len, max_id)
    out = Path(out_dir) if out_dir else RunLayout.of_manifest(manifest_path).train
    if tcfg.threads:
        torch.set_num_threads(tcfg.threads)
    device = resolve_device(tcfg)
    amp = autocast_dtype(tcfg, device)
    torch.manual_seed(tcfg.seed)
    random.seed(tcfg.seed)
    model = MoETransformer(mcfg, sparse_embedding=tcfg.sparse_embedding, ce_chunk_tokens=tcfg.ce_chunk_tokens)
    model.to(device)
    dataset = ShardDataset(m, tcfg.seq_len)
    sampler = Sampler(len(dataset), tcfg.seed)
    opts = build_optimizers(model, tcfg)
    return TrainRun(cfg, m, manifest_path, out, device, amp, model, opts, dataset, sampler)


def resume_or_init(run: TrainRun, init_from: Path | str | None, log: Callable[[str], None]) -> None:
    """Resume from the run's own checkpoint (model, optimizers, data position, RNG); else start from `init_from`,
    the config's `init_from`, or the previous stage's checkpoint; else keep the fresh init."""
    m, tcfg, ckpt_path = run.manifest, run.cfg.train, run.checkpoint
    if ckpt_path.is_file():
        state = load_checkpoint(ckpt_path, map_location=run.device)
        if state["data"]["fingerprint"] != m.fingerprint:
            raise ManifestError(
                f"{ckpt_path} was trained on other shards (fingerprint {state['data']['fingerprint']}"
                f" != {m.fingerprint}); use another out_dir"
            )
        if ModelConfig(**state["config"]["model"]).architecture() != run.cfg.model.architecture():
            raise ValueError(f"{ckpt_path}: its model architecture differs from this config; use another out_dir")
        run.model.load_state_dict(state["model"])
        for opt, sd in zip(run.opts, state["optimizers"], strict=True):
            opt.load_state_dict(sd)
        run.sampler = Sampler.from_state(state["data"]["sampler"], len(run.dataset))
        set_rng_state(state["rng"])
        run.start_step = int(state["step"])
        where = f"epoch {run.sampler.epoch}, index {run.sampler.index}"
        log(f"resuming {m.stage} from {ckpt_path} at step {run.start_step} ({where})")
        return
    src: Path | None = Path(init_from) if init_from else None
    if src is None and tcfg.init_from == "previous_stage":
        src = previous_stage_checkpoint(run.manifest_path, m.stage)
        if src is not None and not src.is_file():
            logger.warning("no previous-stage checkpoint at %s: %s starts from a fresh init", src, m.stage)
            log(f"WARNING: no previous-stage checkpoint at {src}; {m.stage} starts from a fresh init")
            src = None
    elif src is None and tcfg.init_from:
        src = Path(tcfg.init_from)
    if src is not None:
        info = run.init_info = load_init_weights(run.model, src)
        log(
            f"{m.stage}: continuing from {src} (stage {info['stage']}, step {info['step']}); "
            f"rope_theta {info['rope_theta'][0]:g} -> {info['rope_theta'][1]:g}, "
            f"rope_scaling {info['rope_scaling'][1]}"
        )


def train_step(
    run: TrainRun,
    run_model: Callable[..., Any],
    batches: Batches,
    params: list[torch.nn.Parameter],
    step: int,
    steps: int,
) -> StepMetrics:
    """One optimizer step: the scheduled learning rate, `grad_accum` micro-batches, clipping, the optimizers, the
    router biases. Raises on a loss that is not finite."""
    mcfg, tcfg, device = run.cfg.model, run.cfg.train, run.device
    lr = lr_at(step, steps, tcfg)
    for opt in run.opts:
        for group in opt.param_groups:
            group["lr"] = lr
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    loss_sum, aux_sum = 0.0, 0.0
    for _ in range(tcfg.grad_accum):
        x_np, y_np = batches.next()
        x = torch.from_numpy(x_np).to(device, non_blocking=True)
        y = torch.from_numpy(y_np).to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=run.amp or torch.float32, enabled=run.amp is not None):
            loss, aux = run_model(x, y)
            total = loss + mcfg.router_aux_loss_coef * aux if mcfg.moe_balancing == "aux_loss" else loss
        (total / tcfg.grad_accum).backward()
        loss_sum += float(loss.detach())
        aux_sum += float(aux.detach())
    gnorm = clip_grad_norm(params, tcfg.grad_clip)
    for opt in run.opts:
        opt.step()
        opt.zero_grad(set_to_none=True)
    run.model.update_router_biases()
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    mean_loss = loss_sum / tcfg.grad_accum
    if not math.isfinite(mean_loss):
        stage = run.manifest.stage
        raise RuntimeError(f"{stage}: loss is {mean_loss} at step {step + 1}; lower train.lr or check the data")
    return StepMetrics(mean_loss, aux_sum / tcfg.grad_accum, lr, gnorm, dt)


def log_metrics(
    run: TrainRun,
    done: int,
    steps: int,
    metrics: dict[str, Any],
    progress: TrainProgress,
    log: Callable[[str], None],
) -> None:
    """A logged step's evaluation: its line (on a terminal the live line stands in for all but the last) and its
    `log.jsonl` row. (No held-out loss is measured: the numbers are the training step's.)"""
    if not progress.live or done == steps:  # on a terminal the live line shows them; the last one stays
        log(format_log(done, steps, metrics))
    with run.log_jsonl.open("a", encoding="utf-8") as f:
        f.write(json.dumps({"stage": run.manifest.stage, "step": done, **metrics}) + "\n")


def save_run_checkpoint(run: TrainRun, done: int) -> None:
    """Everything a resume needs after `done` steps: model, optimizers, data position, RNG, config, manifest."""
    m = run.manifest
    save_checkpoint(
        run.checkpoint,
        {
            "version": CHECKPOINT_VERSION,
            "stage": m.stage,
            "step": done,
            "model": run.model.state_dict(),
            "optimizers": [opt.state_dict() for opt in run.opts],
            "data": {"fingerprint": m.fingerprint, "sampler": run.sampler.state_dict()},
            "rng": rng_state(),
            "config": run.cfg.to_dict(),
            "manifest": {
                "path": str(run.manifest_path),
                "stage": m.stage,
                "seq_len": m.seq_len,
                "tokenizer": dict(m.tokenizer),
            },
        },
    )


def start_line(run: TrainRun, rate: Throughput) -> str:
    """The stage's first line: model size, data, tokens per step, device, precision, attention and router kinds."""
    m, mcfg, dataset = run.manifest, run.cfg.model, run.dataset
    return (
        f"{m.stage}: {run.model.num_params() / 1e6:.1f}M params, {len(dataset)} sequences x {dataset.seq_len} tokens, "
        f"{rate.tokens_per_step} tokens/step, device {run.device}, {'bf16 autocast' if run.amp else 'fp32'}, "
        f"attention {mcfg.attention_type}, router {mcfg.scoring_func}, balancing {mcfg.moe_balancing}"
    )


def summarize(
    run: TrainRun, steps: int, losses: list[float], tok_s_hist: list[float], rate: Throughput
) -> dict[str, Any]:
    """`train_from_manifest`'s result: the losses of the steps run here and the median throughput."""
    # Skip the first (warm-up) step when averaging throughput.
    steady = tok_s_hist[1:] or tok_s_hist
    tok_s = float(np.median(steady)) if steady else None
    return {
        "stage": run.manifest.stage,
        "steps": steps,
        "start_step": run.start_step,
        "losses": losses,
        "final_loss": losses[-1] if losses else None,
        "tokens_per_s": tok_s,
        "mfu": rate.mfu(tok_s) if tok_s is not None else None,
        "checkpoint": str(run.checkpoint) if run.checkpoint.is_file() else None,
        "init_from": run.init_info,
        "num_params": run.model.num_params(),
        "tokens_per_step": rate.tokens_per_step,
    }


def train_from_manifest(
    manifest: Path | str,
    steps: int,
    config: Path | str | Config | None = None,
    out_dir: Path | str | None = None,
    init_from: Path | str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train on one stage's shards until `steps` optimizer steps are done; resumable.

    Args:
        manifest: the stage's `manifest.json`.
        steps: total optimizer steps for this stage (a rerun resumes and stops here).
        config: a TOML file (configs/trainer/*.toml), a `Config`, or None for the defaults.
        out_dir: where `checkpoint.pt` and `log.jsonl` go; default `<runs>/<stage>/train` beside the shards.
        init_from: start from these weights (overrides `train.init_from`); ignored when resuming.
        log: receives each log line.

    Returns:
        {"stage", "steps", "start_step", "losses", "final_loss", "tokens_per_s", "checkpoint", "init_from", ...}.
    """
    run = build_run(config if isinstance(config, Config) else load_config(config), Path(manifest), out_dir)
    resume_or_init(run, init_from, log)
    tcfg, model, seq_len = run.cfg.train, run.model, run.dataset.seq_len
    run_model = torch.compile(model) if tcfg.compile else model
    batches = Batches(run.dataset, run.sampler, tcfg.batch_size)
    params = [p for p in model.parameters() if p.requires_grad]
    rate = Throughput.of(run.cfg.model, tcfg.batch_size * tcfg.grad_accum * seq_len, seq_len, run.device)
    log(start_line(run, rate))
    run.out.mkdir(parents=True, exist_ok=True)
    losses: list[float] = []
    tok_s_hist: list[float] = []
    progress = TrainProgress(run.manifest.stage, run.start_step, steps)
    model.train()
    for step in range(run.start_step, steps):
        sm = train_step(run, run_model, batches, params, step, steps)
        tok_s = rate.tokens_per_step / sm.dt
        losses.append(sm.loss)
        tok_s_hist.append(tok_s)
        load = model.expert_load(reset=True)
        done = step + 1
        progress.update(sm.loss, tok_s)
        if done % tcfg.log_every == 0 or done == steps:
            log_metrics(run, done, steps, rate.log_row(sm, tok_s, load), progress, log)
        if done == steps or (tcfg.ckpt_every and done % tcfg.ckpt_every == 0):
            save_run_checkpoint(run, done)
    progress.close()
    return summarize(run, steps, losses, tok_s_hist, rate)
