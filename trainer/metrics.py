"""What a training step reports: its numbers, tokens/s and MFU, the `format_log` line and the live progress line.
`trainer/train.py` logs them; `log.jsonl` keeps the same numbers.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch

from core.console import console_enabled
from trainer.config import ModelConfig
from trainer.model import flops_per_token

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


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)


@dataclass
class StepMetrics:
    """One optimizer step's numbers, as `format_log` and `log.jsonl` show them."""

    loss: float
    aux: float
    lr: float
    gnorm: float
    dt: float


@dataclass(frozen=True)
class Throughput:
    """What turns a step's wall time into tokens/s and model FLOPs utilisation.

    Args:
        tokens_per_step: batch size x gradient accumulation x sequence length.
        flops_per_token: the model's training FLOPs per token at that sequence length.
        peak: the device's dense bf16 peak FLOP/s; None off CUDA or on a card not in `PEAK_BF16_FLOPS` (no MFU).
    """

    tokens_per_step: int
    flops_per_token: float
    peak: float | None

    @classmethod
    def of(cls, model: ModelConfig, tokens_per_step: int, seq_len: int, device: torch.device) -> Throughput:
        return cls(tokens_per_step, flops_per_token(model, seq_len), peak_flops(device))

    def mfu(self, tok_s: float) -> float | None:
        return tok_s * self.flops_per_token / self.peak if self.peak else None

    def log_row(self, sm: StepMetrics, tok_s: float, load: tuple[float, float]) -> dict[str, float | None]:
        """A logged step's numbers in `format_log`'s and `log.jsonl`'s order."""
        return {
            "loss": sm.loss,
            "aux": sm.aux,
            "lr": sm.lr,
            "gnorm": sm.gnorm,
            "dt": sm.dt,
            "tok_s": tok_s,
            "load_min": load[0],
            "load_max": load[1],
            "mfu": self.mfu(tok_s),
        }


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
