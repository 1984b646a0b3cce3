"""`AblationConfig`: what one ablation compares, checked when built (before any candidate is read or trained)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from core.paths import REPO_ROOT

DEFAULT_PROXY = REPO_ROOT / "configs" / "trainer" / "proxy_cpu.toml"
# Every candidate's own held-out slice is scored by every proxy (so a code corpus's proxy is compared with a prose
# corpus's proxy on code, and the reverse).
HELDOUT = "heldout"
DEFAULT_EVAL = ("gsm8k", "math500", "humaneval", "mbpp", "mmlu", "arc_easy", "arc_challenge", HELDOUT)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class AblationConfigError(ValueError):
    """A value the ablation cannot run with, named with what to do."""


@dataclass(frozen=True)
class Candidate:
    """A finished stage run's shards.

    Args:
        name: the candidate's name in the results (the run folder's name unless given as NAME=PATH).
        manifest: its `shards/<stage>/manifest.json`.
    """

    name: str
    manifest: Path


def resolve_candidate(spec: str) -> Candidate:
    """`RUN_DIR`, `RUN_DIR/shards/<stage>/manifest.json` or `NAME=...` of either, as a `Candidate`.

    Raises:
        AblationConfigError: no manifest there, or a run folder with several stages' shards.
    """
    name, _, where = spec.rpartition("=")
    path = Path(where).expanduser()
    if path.is_dir():
        found = sorted(path.glob("shards/*/manifest.json"))
        if len(found) != 1:
            raise AblationConfigError(
                f"candidate {spec!r}: {'no' if not found else len(found)} shards manifests under {path}/shards/; "
                "name one as RUN/shards/<stage>/manifest.json (build shards with `python -m flows.stage <stage>`)"
            )
        manifest, default_name = found[0], path.resolve().name
    elif path.is_file() and path.name == "manifest.json":
        manifest = path
        default_name = path.resolve().parents[2].name if len(path.resolve().parents) > 2 else path.parent.name
    else:
        raise AblationConfigError(f"candidate {spec!r}: {path} is neither a run folder nor a shards manifest.json")
    name = name or default_name
    if not _NAME.match(name):
        raise AblationConfigError(f"candidate name {name!r}: use letters, digits, '_', '-' or '.' (NAME=PATH)")
    return Candidate(name, manifest.resolve())


@dataclass(frozen=True)
class AblationConfig:
    """One ablation: every candidate sampled into `tokens` training tokens, one proxy per (candidate, seed).

    Args:
        candidates: the corpora compared (at least one; names unique).
        tokens: training tokens per proxy (rounded up to whole optimizer steps).
        out: the ablation folder (results.parquet, curves.parquet, data/, train/).
        proxy: the proxy's trainer config (configs/trainer/*.toml); its `[tokenizer] name` is the proxy tokenizer
            ("utf8_bytes" or a sharding tokenizer such as "o200k_harmony") and its `train.seq_len` must be set.
        eval_sets: shipped evaluation set names (dedup/evalsets.py SHIPPED) and "heldout".
        seeds: proxies per candidate, seeds 0..seeds-1 (the same initialisation and data order for every candidate).
        eval_items: items sampled per evaluation set (and held-out documents per candidate).
        heldout_fraction: share of a candidate's documents kept out of training (chosen by a hash of the text).
    """

    candidates: tuple[Candidate, ...]
    tokens: int
    out: Path
    proxy: Path = DEFAULT_PROXY
    eval_sets: tuple[str, ...] = DEFAULT_EVAL
    seeds: int = 1
    eval_items: int = 200
    heldout_fraction: float = 0.05

    def __post_init__(self) -> None:
        from dedup.evalsets import SHIPPED

        if not self.candidates:
            raise AblationConfigError("no candidates: pass --candidates RUN_A,RUN_B")
        names = [c.name for c in self.candidates]
        if len(set(names)) != len(names):
            raise AblationConfigError(f"candidate names {names} repeat; name them as NAME=PATH")
        if self.tokens <= 0:
            raise AblationConfigError(f"tokens must be > 0, got {self.tokens}")
        if self.seeds <= 0:
            raise AblationConfigError(f"seeds must be > 0, got {self.seeds}")
        if self.eval_items <= 0:
            raise AblationConfigError(f"eval_items must be > 0, got {self.eval_items}")
        if not 0 < self.heldout_fraction < 1:
            raise AblationConfigError(f"heldout_fraction must be in (0, 1), got {self.heldout_fraction}")
        unknown = [s for s in self.eval_sets if s != HELDOUT and s not in SHIPPED]
        if unknown or not self.eval_sets:
            raise AblationConfigError(f"eval sets {unknown or '(none)'}: choose from {HELDOUT}, {', '.join(SHIPPED)}")
        if not Path(self.proxy).is_file():
            raise AblationConfigError(f"proxy config {self.proxy} not found (see configs/trainer/proxy_cpu.toml)")
