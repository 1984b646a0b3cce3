"""The training loop: device, optimizer, schedule, log, then the loop torchtitan's way (build the run, resume or
init, and per step: train, log, checkpoint). The checkpoint file itself is `trainer/checkpoint.py`'s.

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
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.console import console_enabled
from pipeline.layout import RunLayout
from trainer.checkpoint import (
    CHECKPOINT,
    CHECKPOINT_VERSION,
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
from trainer.model import MoETransformer, flops_per_token

logger = logging.getLogger(__name__)

# Dense bf16 tensor-core peaks (vendor data sheets), for MFU.
PEAK_BF16_FLOPS = {
    "H200": 989e12,
    "H100": 989e12,
    "H800": 989e12,
    "A100": 312e12,
    "A800": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
    "A10": 125e12,
    "B200": 2250e12,
    "GB200": 2500e12,
}

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


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)


# ---------------------------------------------------------------------------------------------------------------
# Optimizer and schedule.


def build_optimizers(model: MoETransformer, train: TrainConfig) -> list[torch.optim.Optimizer]:
    """AdamW (decoupled weight decay, arXiv 1711.05101) on matrices; no decay on norms, biases, the embedding.

    A sparse embedding gets `torch.optim.SparseAdam` (lazy Adam: only rows of tokens in the batch move), so a
    150K-row embedding costs an optimizer update over a few thousand rows per step instead of all of them.
    """
    emb = model.embed_tokens.weight
    sparse = model.embed_tokens.sparse
    decay, no_decay = [], []
    for p in model.parameters():
        if p is emb and sparse:
            continue
        (decay if p.ndim >= 2 and p is not emb else no_decay).append(p)
    kw: dict[str, Any] = {"lr": train.lr, "betas": (train.beta1, train.beta2), "eps": train.eps}
    fused = {"fused": True} if _fused_adamw_ok(model) else {}
    groups = [{"params": decay, "weight_decay": train.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    opts: list[torch.optim.Optimizer] = [torch.optim.AdamW(groups, **kw, **fused)]
    if sparse:
        opts.append(torch.optim.SparseAdam([emb], **kw))
    return opts


def _fused_adamw_ok(model: MoETransformer) -> bool:
    # The fused AdamW kernel exists for CUDA and, since torch 2.4, for CPU.
    return tuple(int(x) for x in torch.__version__.split(".")[:2]) >= (2, 4)


def lr_at(step: int, total_steps: int, train: TrainConfig) -> float:
    """Linear warm-up to `lr`, then cosine decay to `lr * min_lr_ratio` at `total_steps` (SGDR, arXiv 1608.03983)."""
    if step < train.warmup_steps:
        return train.lr * (step + 1) / train.warmup_steps
    span = max(total_steps - train.warmup_steps, 1)
    progress = min((step - train.warmup_steps) / span, 1.0)
    floor = train.lr * train.min_lr_ratio
    return floor + 0.5 * (train.lr - floor) * (1 + math.cos(math.pi * progress))


def clip_grad_norm(params: list[torch.nn.Parameter], max_norm: float) -> float:
    """Global L2 norm over dense and sparse gradients; scales them down to `max_norm` when above (0: no clip)."""
    norms = []
    for p in params:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            p.grad = p.grad.coalesce()  # repeated rows must be summed before taking the norm
        g = p.grad._values() if p.grad.is_sparse else p.grad
        norms.append(torch.linalg.vector_norm(g.float()))
    total = torch.linalg.vector_norm(torch.stack(norms)) if norms else torch.zeros(())
    if max_norm > 0:
        scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
        for p in params:
            if p.grad is not None:
                p.grad.mul_(scale.to(p.grad.device))
    return float(total)


# ---------------------------------------------------------------------------------------------------------------
# Log.


def format_log(step: int, steps: int, m: dict[str, float]) -> str:
    """`step 00042/01000 | loss 3.1234 | aux 0.012 | dt 812ms | tok/s 123,456 | load 0.08/0.19 | mfu 41.2%`."""
    w = len(str(steps))
    line = (
        f"step {step:0{max(w, 5)}d}/{steps:0{max(w, 5)}d} | loss {m['loss']:.4f} | aux {m['aux']:.3f} | "
        f"lr {m['lr']:.2e} | gnorm {m['gnorm']:.2f} | dt {m['dt'] * 1000:.0f}ms | tok/s {m['tok_s']:,.0f} | "
        f"load {m['load_min']:.3f}/{m['load_max']:.3f}"
    )
    if m.get("mfu") is not None:
        line += f" | mfu {m['mfu'] * 100:.1f}%"
    return line


class TrainProgress:
    """One live line on an interactive terminal (stderr): steps done/total, loss and tokens/s, in place of a
    `format_log` line every `log_every` steps; `live` is False elsewhere (CI, a pipe, a log file), where the
    lines are logged as before. `log.jsonl` gets every `log_every` step either way.

    Args:
        stage: the bar's label.
        start: the step a resumed run starts from.
        steps: the step the run stops at.
    """

    def __init__(self, stage: str, start: int, steps: int) -> None:
        from tqdm import tqdm

        self.live = console_enabled(sys.stderr)
        self._bar = tqdm(
            total=steps,
            initial=start,
            desc=f"train {stage}",
            unit="step",
            file=sys.stderr,
            dynamic_ncols=True,
            disable=not self.live,
            leave=False,
        )

    def update(self, loss: float, tok_s: float) -> None:
        self._bar.set_postfix_str(f"loss {loss:.4f}, {tok_s:,.0f} tok/s", refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()


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


@dataclass
class StepMetrics:
    """One optimizer step's numbers, as `format_log` and `log.jsonl` show them."""

    loss: float
    aux: float
    lr: float
    gnorm: float
    dt: float


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
    with (run.out / "log.jsonl").open("a", encoding="utf-8") as f:
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
    m, mcfg, tcfg, model, dataset = run.manifest, run.cfg.model, run.cfg.train, run.model, run.dataset
    run_model = torch.compile(model) if tcfg.compile else model
    batches = Batches(dataset, run.sampler, tcfg.batch_size)
    params = [p for p in model.parameters() if p.requires_grad]
    tokens_per_step = tcfg.batch_size * tcfg.grad_accum * dataset.seq_len
    flops_tok = flops_per_token(mcfg, dataset.seq_len)
    peak = peak_flops(run.device)
    log(
        f"{m.stage}: {model.num_params() / 1e6:.1f}M params, {len(dataset)} sequences x {dataset.seq_len} tokens, "
        f"{tokens_per_step} tokens/step, device {run.device}, {'bf16 autocast' if run.amp else 'fp32'}, "
        f"attention {mcfg.attention_type}, router {mcfg.scoring_func}, balancing {mcfg.moe_balancing}"
    )
    run.out.mkdir(parents=True, exist_ok=True)
    losses: list[float] = []
    tok_s_hist: list[float] = []
    progress = TrainProgress(m.stage, run.start_step, steps)
    model.train()
    for step in range(run.start_step, steps):
        sm = train_step(run, run_model, batches, params, step, steps)
        losses.append(sm.loss)
        tok_s = tokens_per_step / sm.dt
        tok_s_hist.append(tok_s)
        load_min, load_max = model.expert_load(reset=True)
        done = step + 1
        progress.update(sm.loss, tok_s)
        if done % tcfg.log_every == 0 or done == steps:
            metrics = {
                "loss": sm.loss,
                "aux": sm.aux,
                "lr": sm.lr,
                "gnorm": sm.gnorm,
                "dt": sm.dt,
                "tok_s": tok_s,
                "load_min": load_min,
                "load_max": load_max,
                "mfu": tok_s * flops_tok / peak if peak else None,
            }
            log_metrics(run, done, steps, metrics, progress, log)
        if done == steps or (tcfg.ckpt_every and done % tcfg.ckpt_every == 0):
            save_run_checkpoint(run, done)
    progress.close()
    # Skip the first (warm-up) step when averaging throughput.
    steady = tok_s_hist[1:] or tok_s_hist
    return {
        "stage": m.stage,
        "steps": steps,
        "start_step": run.start_step,
        "losses": losses,
        "final_loss": losses[-1] if losses else None,
        "tokens_per_s": float(np.median(steady)) if steady else None,
        "mfu": (float(np.median(steady)) * flops_tok / peak) if peak and steady else None,
        "checkpoint": str(run.checkpoint) if run.checkpoint.is_file() else None,
        "init_from": run.init_info,
        "num_params": model.num_params(),
        "tokens_per_step": tokens_per_step,
    }
