"""`run_ablation`: every candidate sampled into one token budget, one proxy per (candidate, seed) trained from the
same initialisation with the same config, each scored on every evaluation set.

The ablation folder::

    results.parquet            one row per (candidate, seed, eval set): bpb, acc, acc_norm, wall times, hashes;
                               a mixture's realised shares, and with --search the fit's measured and predicted
    curves.parquet             the trainer's log.jsonl rows (loss, lr, tok/s per logged step) per proxy
    ablation.json              the config, the proxy config and the summary (and the search's fit)
    search.json, mixture.toml  --search: the regression, the proposed `[mixture]` table (ablate/search.py) and the
                               proposal's measurement (it is trained as the candidate `search-proposal`)
    data/<candidate>/          the proxy's training shards (manifest.json), heldout.jsonl (a mixture: mixture.json)
    train/<candidate>/seed-<k>/  the trainer's checkpoint.pt and log.jsonl, and scores.json

A rerun reuses a proxy whose `scores.json` was made from the same sample, config and evaluation items, and
retrains one whose inputs changed (its folder is emptied first).
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ablate.config import HELDOUT, AblationConfig, AblationConfigError, Candidate, MixtureCandidate
from ablate.corpus import CandidateData, ProxyTokenizer, load_proxy_tokenizer, prepare_candidate
from ablate.evalsets import EvalItems, load_eval_items
from ablate.mixtures import RunCorpus, load_run_corpus, prepare_mixture
from core.io import atomic_write_json, fingerprint, write_table

RESULTS_SCHEMA = pa.schema(
    [
        pa.field("candidate", pa.string(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("tokens", pa.int64(), nullable=False),  # training tokens the proxy saw (whole optimizer steps)
        pa.field(
            "unique_tokens", pa.int64(), nullable=False
        ),  # distinct training tokens sampled (tokens > it: epochs)
        pa.field("eval_set", pa.string(), nullable=False),  # a shipped set, or heldout:<candidate>
        pa.field("items", pa.int64(), nullable=False),
        pa.field("bytes", pa.int64(), nullable=False),
        pa.field("bpb", pa.float64()),
        pa.field("acc", pa.float64()),  # multiple-choice sets only
        pa.field("acc_norm", pa.float64()),
        pa.field("final_loss", pa.float64()),
        pa.field("train_tokens_per_s", pa.float64()),
        pa.field("train_wall_s", pa.float64()),
        pa.field("eval_wall_s", pa.float64()),
        pa.field("proxy_tokenizer", pa.string(), nullable=False),
        pa.field("proxy_config_sha256", pa.string(), nullable=False),
        pa.field("candidate_sha256", pa.string(), nullable=False),
        pa.field("eval_sha256", pa.string(), nullable=False),
        # A mixture candidate's realised shares of its training tokens, JSON {"domains": {..}, "sources": {..}}.
        pa.field("mixture", pa.string()),
        # --search: the target's bits per byte (mean over seeds), the fit's prediction and its leave-one-out one.
        pa.field("fit_measured", pa.float64()),
        pa.field("fit_predicted", pa.float64()),
        pa.field("fit_loo_predicted", pa.float64()),
    ]
)
CURVES_SCHEMA = pa.schema(
    [
        pa.field("candidate", pa.string(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("step", pa.int64(), nullable=False),
        pa.field("loss", pa.float64()),
        pa.field("lr", pa.float64()),
        pa.field("tok_s", pa.float64()),
    ]
)


def proxy_config(cfg: AblationConfig) -> tuple[Any, ProxyTokenizer]:
    """The proxy's trainer `Config` (vocabulary sized to its tokenizer, no initialisation from another stage, one
    checkpoint at the end) and its tokenizer.

    Raises:
        AblationConfigError: the config pins no tokenizer or no `train.seq_len`.
    """
    from trainer.config import load_config

    tcfg = load_config(cfg.proxy)
    if not tcfg.tokenizer.name:
        raise AblationConfigError(
            f"{cfg.proxy}: set [tokenizer] name (utf8_bytes, o200k_harmony, qwen): every "
            "candidate is re-tokenized with the proxy's tokenizer"
        )
    if tcfg.train.seq_len <= 0:
        raise AblationConfigError(f"{cfg.proxy}: set train.seq_len > 0 (the proxy's training sequence length)")
    tok = load_proxy_tokenizer(tcfg.tokenizer.name)
    model = tcfg.model
    if model.vocab_size == 0:
        model = dataclasses.replace(model, vocab_size=-(-tok.vocab_size // 128) * 128)
    if model.vocab_size < tok.vocab_size:
        raise AblationConfigError(
            f"{cfg.proxy}: model.vocab_size {model.vocab_size} < tokenizer {tok.name}'s {tok.vocab_size} ids"
        )
    train = dataclasses.replace(tcfg.train, init_from="", ckpt_every=0)
    return dataclasses.replace(tcfg, model=model, train=train), tok


def run_ablation(cfg: AblationConfig, log: Callable[[str], None] = print) -> pa.Table:
    """Train and score every (candidate, seed); with a search, fit it and write the proposal; write the ablation
    folder; return the results table.

    Args:
        cfg: the ablation.
        log: receives progress lines (the trainer's included).
    """
    tcfg, tok = proxy_config(cfg)
    out = Path(cfg.out)
    seq_len = tcfg.train.seq_len
    tokens_per_step = tcfg.train.batch_size * tcfg.train.grad_accum * seq_len
    steps = math.ceil(cfg.tokens / tokens_per_step)
    config_sha = fingerprint(tcfg.to_dict())
    prepared = _prepare(cfg, tok, seq_len, log)
    proxies = Proxies(tcfg, tok, steps, config_sha, out, cfg.seeds, prepared.evals, log)
    rows: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    for cand in cfg.candidates:
        proxies.train(cand.name, prepared.data[cand.name], rows, curves)
    search = _search(cfg, rows, curves, prepared, proxies) if cfg.search is not None else None
    for row in rows:
        row["proxy_config_sha256"] = config_sha  # the config before its seed: one value across an ablation
        if row["candidate"] in prepared.shares:
            row["mixture"] = json.dumps(prepared.shares[row["candidate"]], sort_keys=True)
    table = pa.Table.from_pylist(rows, schema=RESULTS_SCHEMA)
    write_table(out / "results.parquet", table, RESULTS_SCHEMA)
    write_table(out / "curves.parquet", pa.Table.from_pylist(curves, schema=CURVES_SCHEMA), CURVES_SCHEMA)
    atomic_write_json(
        out / "ablation.json",
        {
            "candidates": {c.name: _describe(c) for c in (*cfg.candidates, *prepared.proposal)},
            "tokens": cfg.tokens,
            "steps": steps,
            "tokens_per_step": tokens_per_step,
            "seeds": cfg.seeds,
            "eval_sets": list(cfg.eval_sets),
            "eval_items": cfg.eval_items,
            "heldout_fraction": cfg.heldout_fraction,
            "proxy": str(cfg.proxy),
            "proxy_config": tcfg.to_dict(),
            "proxy_config_sha256": config_sha,
            "proxy_tokenizer": tok.describe(),
            "search": search,
        },
    )
    return table


@dataclass
class Prepared:
    """Every candidate's training data, the realised shares of the mixtures, the evaluation sets and the runs'
    corpora the mixtures sampled."""

    data: dict[str, CandidateData]
    shares: dict[str, dict[str, dict[str, float]]]
    evals: list[EvalItems]
    corpora: dict[Path, RunCorpus]
    proposal: tuple[MixtureCandidate, ...] = ()  # the search's proposal, once the fit made it


@dataclass(frozen=True)
class Proxies:
    """What every proxy of one ablation shares (config, tokenizer, budget, seeds, evaluation), and its training."""

    tcfg: Any
    tok: ProxyTokenizer
    steps: int
    config_sha: str
    out: Path
    seeds: int
    evals: list[EvalItems]
    log: Callable[[str], None]

    def train(self, name: str, data: CandidateData, rows: list[dict[str, Any]], curves: list[dict[str, Any]]) -> None:
        """Train (or reuse) one proxy per seed on `data` and append its score rows and logged steps."""
        for seed in range(self.seeds):
            seed_dir = self.out / "train" / name / f"seed-{seed}"
            seeded = dataclasses.replace(self.tcfg, train=dataclasses.replace(self.tcfg.train, seed=seed))
            key = fingerprint(self.config_sha, seed, data.sha256, self.steps, [e.sha256 for e in self.evals])
            rows += _proxy_rows(name, seed, seeded, self.tok, self.steps, data, self.evals, seed_dir, key, self.log)
            curves += _curve_rows(name, seed, seed_dir / "log.jsonl")


def _prepare(cfg: AblationConfig, tok: ProxyTokenizer, seq_len: int, log: Callable[[str], None]) -> Prepared:
    """Sample every candidate (a run's shards or a mixture of a run's corpus) and gather the evaluation sets."""
    prepared = Prepared({}, {}, [load_eval_items(n, cfg.eval_items) for n in cfg.eval_sets if n != HELDOUT], {})
    for cand in cfg.candidates:
        t0 = time.perf_counter()
        where = Path(cfg.out) / "data" / cand.name
        if isinstance(cand, MixtureCandidate):
            if cand.run not in prepared.corpora:
                prepared.corpora[cand.run] = load_run_corpus(cand.run, tok, cfg.heldout_fraction, cfg.eval_items)
            corpus = prepared.corpora[cand.run]
            data, prepared.shares[cand.name] = prepare_mixture(cand, corpus, where, tok, cfg.tokens, seq_len)
        else:
            data = prepare_candidate(
                cand.manifest, where, tok, cfg.tokens, seq_len, cfg.heldout_fraction, cfg.eval_items
            )
        prepared.data[cand.name] = data
        if cand.name in prepared.shares:
            shares = ", ".join(f"{d} {x:.2f}" for d, x in prepared.shares[cand.name]["domains"].items() if x)
            said = f"shares {shares}"
        else:
            said = f"{len(data.heldout)} held-out documents"
        log(
            f"{cand.name}: {data.unique_tokens:,} {tok.name} training tokens, {said} ({time.perf_counter() - t0:.1f}s)"
        )
    for run, corpus in prepared.corpora.items():
        held = ", ".join(f"{d} {len(t)}" for d, t in sorted(corpus.heldout.items()))
        log(f"{run}: held-out documents per domain: {held}")
    if HELDOUT in cfg.eval_sets:
        evals = prepared.evals
        evals += [EvalItems(f"{HELDOUT}:{n}", d.heldout, [], d.sha256) for n, d in prepared.data.items() if d.heldout]
        labels = {c.run: c.run_label for c in cfg.candidates if isinstance(c, MixtureCandidate)}
        for run, corpus in prepared.corpora.items():  # a mixture run's held-out slices, one per domain
            prefix = f"{HELDOUT}:{labels[run]}:" if labels[run] else f"{HELDOUT}:"
            for domain, texts in sorted(corpus.heldout.items()):
                sha = fingerprint("heldout", corpus.sha256, corpus.heldout_fraction, domain, len(texts))
                evals.append(EvalItems(f"{prefix}{domain}", texts, [], sha))
    return prepared


def _search(
    cfg: AblationConfig,
    rows: list[dict[str, Any]],
    curves: list[dict[str, Any]],
    prepared: Prepared,
    proxies: Proxies,
) -> dict:
    """Fit the search's regression (annotating `rows`), train the proposed mixture as one more candidate (its rows
    and curves appended), measure it against the fit and the draws, write `search.json` and `mixture.toml`; return
    the record."""
    from ablate.config import PROPOSAL
    from ablate.mixtures import sample_budget
    from ablate.search import (
        fit_search,
        max_shares,
        mixture_candidate,
        stage_token_ratio,
        verify_proposal,
        write_proposal,
    )
    from sharding.doc_table import available_by_source
    from sharding.mixture import DEFAULT_MAX_REPEATS

    search = cfg.search
    assert search is not None
    corpus = prepared.corpora[search.run]
    available = {s: (d, t) for (d, s), (_n, t) in available_by_source(corpus.docs).items()}
    # The proposal is realised as the draws are: default caps (its table names none), one sample budget.
    caps = max_shares(
        search.over, available, sample_budget(cfg.tokens, proxies.tcfg.train.seq_len), DEFAULT_MAX_REPEATS
    )
    record = fit_search(search, rows, prepared.shares, stage_token_ratio(search.run, available), available, caps)
    r2 = "n/a" if record["r2"] is None else f"{record['r2']:.3f}"
    proxies.log(f"search: R² {r2} over {len(record['candidates'])} mixtures; training the proposal")
    cand = mixture_candidate(search, PROPOSAL, record["proposal"]["shares"])
    where = Path(cfg.out) / "data" / PROPOSAL
    data, shares = prepare_mixture(cand, corpus, where, proxies.tok, cfg.tokens, proxies.tcfg.train.seq_len)
    prepared.data[PROPOSAL], prepared.shares[PROPOSAL], prepared.proposal = data, shares, (cand,)
    proxies.train(PROPOSAL, data, rows, curves)
    prop = verify_proposal(search, record, rows, shares)["proposal"]
    path = write_proposal(Path(cfg.out), record, search.run)
    verdict = "beats" if prop["beats_best_draw"] else "does not beat"
    proxies.log(
        f"search: the proposal measured {prop['measured']:.4f} vs predicted {prop['predicted_realised']:.4f}; it "
        f"{verdict} the best draw ({prop['best_draw']} {prop['best_draw_measured']:.4f}); [mixture] in {path}"
    )
    return record


def _describe(cand: Candidate | MixtureCandidate) -> Any:
    if isinstance(cand, MixtureCandidate):
        return {"run": str(cand.run), "table": cand.table, "source_shares": cand.source_shares}
    return str(cand.manifest)


def _proxy_rows(
    name: str,
    seed: int,
    tcfg: Any,
    tok: ProxyTokenizer,
    steps: int,
    data: CandidateData,
    evals: list[EvalItems],
    seed_dir: Path,
    key: str,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Train one proxy (or reuse its scores when `key` matches) and score it on every evaluation set."""
    scores_path = seed_dir / "scores.json"
    if scores_path.is_file():
        saved = json.loads(scores_path.read_text(encoding="utf-8"))
        if saved.get("key") == key:
            log(f"{name} seed {seed}: scores reused from {scores_path}")
            return saved["rows"]
    if seed_dir.exists():  # another sample, config or evaluation: nothing in it may be resumed
        shutil.rmtree(seed_dir)
    from trainer.train import train_from_manifest

    t0 = time.perf_counter()
    result = train_from_manifest(
        data.manifest, steps, config=tcfg, out_dir=seed_dir, log=lambda line: log(f"{name} seed {seed}: {line}")
    )
    train_wall = time.perf_counter() - t0
    model, device = _load_proxy(tcfg, seed_dir / "checkpoint.pt")
    rows = []
    for ev in evals:
        rows.append(
            _score(model, device, tok, tcfg.train.seq_len, ev)
            | {
                "candidate": name,
                "seed": seed,
                "tokens": steps * result["tokens_per_step"],
                "unique_tokens": data.unique_tokens,
                "final_loss": result["final_loss"],
                "train_tokens_per_s": result["tokens_per_s"],
                "train_wall_s": train_wall,
                "proxy_tokenizer": tok.name,
                "candidate_sha256": data.sha256,
            }
        )
    atomic_write_json(scores_path, {"key": key, "rows": rows})
    return rows


def _load_proxy(tcfg: Any, checkpoint: Path) -> tuple[Any, Any]:
    """The trained proxy from its checkpoint, in eval mode on the config's device."""
    from trainer.checkpoint import load_checkpoint
    from trainer.model import MoETransformer
    from trainer.train import resolve_device

    device = resolve_device(tcfg.train)
    model = MoETransformer(tcfg.model, ce_chunk_tokens=tcfg.train.ce_chunk_tokens)
    model.load_state_dict(load_checkpoint(checkpoint, map_location=device)["model"])
    return model.to(device).eval(), device


def _score(model: Any, device: Any, tok: ProxyTokenizer, seq_len: int, ev: EvalItems) -> dict[str, Any]:
    from ablate.score import bits_per_byte, multiple_choice

    t0 = time.perf_counter()
    bpb, n_bytes = bits_per_byte(model, tok, ev.texts, seq_len, device)
    acc, acc_norm = multiple_choice(model, tok, ev.choices, seq_len, device) if ev.choices else (None, None)
    return {
        "eval_set": ev.name,
        "items": len(ev.texts),
        "bytes": n_bytes,
        "bpb": bpb,
        "acc": acc,
        "acc_norm": acc_norm,
        "eval_wall_s": time.perf_counter() - t0,
        "eval_sha256": ev.sha256,
    }


def _curve_rows(name: str, seed: int, log_jsonl: Path) -> list[dict[str, Any]]:
    if not log_jsonl.is_file():
        return []
    rows = []
    for line in log_jsonl.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        rows.append(
            {
                "candidate": name,
                "seed": seed,
                "step": int(r["step"]),
                "loss": r.get("loss"),
                "lr": r.get("lr"),
                "tok_s": r.get("tok_s"),
            }
        )
    return rows


def summary_table(table: pa.Table) -> str:
    """Mean bits per byte (± spread over seeds) per candidate and evaluation set, and accuracy where there is one."""
    rows = table.to_pylist()
    cands = list(dict.fromkeys(r["candidate"] for r in rows))
    sets = list(dict.fromkeys(r["eval_set"] for r in rows))
    width = max([len("eval set")] + [len(s) for s in sets])
    colw = max([16] + [len(c) for c in cands])
    lines = [f"{'eval set':<{width}}  " + "  ".join(f"{c:>{colw}}" for c in cands)]
    for s in sets:
        cells = []
        for c in cands:
            mine = [r for r in rows if r["candidate"] == c and r["eval_set"] == s]
            bpb = np.array([r["bpb"] for r in mine], dtype=np.float64)
            cell = f"{bpb.mean():.3f}" + (f"±{bpb.std(ddof=1):.3f}" if len(bpb) > 1 else "")
            accs = [r["acc"] for r in mine if r["acc"] is not None]
            if accs:
                cell += f" a{np.mean(accs) * 100:.0f}%"
            cells.append(f"{cell:>{colw}}")
        lines.append(f"{s:<{width}}  " + "  ".join(cells))
    first = rows[0] if rows else {}
    lines.append(
        f"bits per byte (lower is better; a = multiple-choice accuracy), {first.get('tokens', 0):,} "
        f"{first.get('proxy_tokenizer', '')} training tokens per proxy"
    )
    return "\n".join(lines)
