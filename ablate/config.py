"""`AblationConfig`: what one ablation compares, checked when built (before any candidate is read or trained)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.paths import REPO_ROOT

DEFAULT_PROXY = REPO_ROOT / "configs" / "trainer" / "proxy_cpu.toml"
# Every candidate's own held-out slice is scored by every proxy (so a code corpus's proxy is compared with a prose
# corpus's proxy on code, and the reverse).
HELDOUT = "heldout"
DEFAULT_EVAL = ("gsm8k", "math500", "humaneval", "mbpp", "mmlu", "arc_easy", "arc_challenge", HELDOUT)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


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
    if not NAME_PATTERN.match(name):
        raise AblationConfigError(f"candidate name {name!r}: use letters, digits, '_', '-' or '.' (NAME=PATH)")
    return Candidate(name, manifest.resolve())


@dataclass(frozen=True)
class MixtureCandidate:
    """A mixture over one finished run's corpus (`--mixtures FILE`, or a draw of `--search K`).

    Args:
        name: the candidate's name in the results.
        run: the run folder whose `corpus/docs` (documents with their domain and source) the mixture samples.
        table: a stage's `[mixture]` table without `seed`, `total_tokens` and `rehydrate` (`domains`, `sources`,
            `max_repeats`; sharding/mixture.py), checked by `ablate.mixtures.load_mixtures`.
        source_shares: for a draw over sources, each source's share of the training tokens (the table is then
            made when the sources' sizes are known, `ablate.mixtures.shares_table`).
        run_label: the run's name when mixtures are over several runs (`--candidates` with `--mixtures`): its
            held-out slices are `heldout:<run_label>:<domain>`; empty for one run (`heldout:<domain>`).
    """

    name: str
    run: Path
    table: dict[str, Any] = field(default_factory=dict)
    source_shares: dict[str, float] | None = None
    run_label: str = ""


SEARCH_OVER = ("domains", "sources")
# The search's proposal, trained after the fit as one more candidate (its measured vs predicted bits per byte).
PROPOSAL = "search-proposal"


@dataclass(frozen=True)
class SearchConfig:
    """`--search K`: RegMix (arXiv 2407.01492) on one run: K proxies on mixtures drawn from a Dirichlet, a
    regression from their mixture to the target's bits per byte, the best predicted mixture proposed.

    Args:
        k: mixtures drawn (each trained as one more candidate, named `search-000`, ...).
        run: the run folder the mixtures sample.
        over: "domains" or "sources": what the weights are over.
        seed: the Dirichlet draws' seed (draws and proposal).
        target: the bits per byte the fit predicts: "heldout" (the mean over the run's held-out slices, one per
            domain) or an evaluation set's name as it appears in results (`heldout:code`, `gsm8k`).
        samples: mixtures the fit scores when proposing (RegMix simulates 1M with LightGBM; 100k is enough here).
        top: the proposal is the mean of the `top` best predicted (RegMix averages its top 100).
        ridge: L2 penalty of the linear fit (the shares sum to one, so the plain least-squares system is singular).
    """

    k: int
    run: Path
    over: str = "domains"
    seed: int = 0
    target: str = HELDOUT
    samples: int = 100_000
    top: int = 100
    ridge: float = 1e-3

    def __post_init__(self) -> None:
        if self.k < 2:
            raise AblationConfigError(f"--search {self.k}: draw at least 2 mixtures to fit a regression")
        if self.over not in SEARCH_OVER:
            raise AblationConfigError(f"--search-over {self.over!r}: choose from {', '.join(SEARCH_OVER)}")
        if not 0 < self.top <= self.samples:
            raise AblationConfigError(f"search top {self.top} must be in 1..samples ({self.samples})")
        if self.ridge < 0:
            raise AblationConfigError(f"search ridge {self.ridge} must be >= 0")


@dataclass(frozen=True)
class AblationConfig:
    """One ablation: every candidate sampled into `tokens` training tokens, one proxy per (candidate, seed).

    Args:
        candidates: the corpora compared (at least one; names unique): finished runs' shards, or mixtures over
            one run's corpus (with `search`, its draws included).
        tokens: training tokens per proxy (rounded up to whole optimizer steps).
        out: the ablation folder (results.parquet, curves.parquet, data/, train/).
        proxy: the proxy's trainer config (configs/trainer/*.toml); its `[tokenizer] name` is the proxy tokenizer
            ("utf8_bytes" or a sharding tokenizer such as "o200k_harmony") and its `train.seq_len` must be set.
        eval_sets: shipped evaluation set names (dedup/evalsets.py SHIPPED) and "heldout".
        seeds: proxies per candidate, seeds 0..seeds-1 (the same initialisation and data order for every candidate).
        eval_items: items sampled per evaluation set (and held-out documents per candidate).
        heldout_fraction: share of a candidate's documents kept out of training (chosen by a hash of the text).
        search: the mixture search, when `--search K` asked for one.
    """

    candidates: tuple[Candidate | MixtureCandidate, ...]
    tokens: int
    out: Path
    proxy: Path = DEFAULT_PROXY
    eval_sets: tuple[str, ...] = DEFAULT_EVAL
    seeds: int = 1
    eval_items: int = 200
    heldout_fraction: float = 0.05
    search: SearchConfig | None = None

    def __post_init__(self) -> None:
        from dedup.evalsets import SHIPPED

        if not self.candidates:
            raise AblationConfigError(
                "no candidates: pass --candidates RUN_A,RUN_B, [mixtures.<name>] tables or --search K"
            )
        names = [c.name for c in self.candidates]
        if len(set(names)) != len(names):
            raise AblationConfigError(f"candidate names {names} repeat; name them as NAME=PATH")
        if self.search is not None and PROPOSAL in names:
            raise AblationConfigError(f"candidate name {PROPOSAL!r} is the search's proposal: rename that mixture")
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
        mixes = [c for c in self.candidates if isinstance(c, MixtureCandidate)]
        if mixes and len(mixes) < len(self.candidates):
            raise AblationConfigError(
                "a run's shards and mixtures are not compared in one ablation: with --mixtures, --candidates names "
                "the runs every mixture is realised on"
            )
        labels = {c.run: c.run_label for c in mixes}
        if len(labels) > 1 and (self.search is not None or not all(labels.values())):
            # Each run's held-out slices are named by its label; a search fits one run's mixtures.
            raise AblationConfigError("mixtures over several runs: one label per run and no --search")
        if not Path(self.proxy).is_file():
            raise AblationConfigError(f"proxy config {self.proxy} not found (see configs/trainer/proxy_cpu.toml)")
