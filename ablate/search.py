"""`--search K`: a mixture search in the manner of RegMix (Liu et al. 2024, arXiv 2407.01492).

RegMix trains many small proxies on mixtures drawn at random, fits a regression from the mixture weights to a
validation loss, scores a large number of simulated mixtures with it and proposes the mean of the best ones
(its top 100 of 1M). Here:

- the K mixtures are drawn from a symmetric Dirichlet (alpha = 1, uniform over the simplex) over the run's domains
  or sources, with `SearchConfig.seed`; each becomes a `MixtureCandidate` named `search-000`, ...;
- the regression's inputs are the *realised* shares of each proxy's training tokens (what the sample holds once
  `max_repeats` capped a small source, not the draw), over every mixture candidate of the ablation (the file's
  named mixtures too); its output is the target's bits per byte, the mean over seeds;
- the fit is a ridge regression in numpy (RegMix fits LightGBM and a linear model; with a handful of proxies a
  small deterministic linear fit is what the data can carry): closed form, no randomness, same numbers on a rerun;
- the fit is reported as in-sample R² and leave-one-out R² with each candidate's measured, predicted and
  leave-one-out predicted value (`search.json`, and the `fit_*` columns of results.parquet);
- the proposal, the mean of the `top` best of `samples` mixtures drawn from the same Dirichlet, among those the
  repeat caps can realise (no unit above `max_repeats` x its available tokens over the proxy's sample budget:
  `max_shares`), is written as a `[mixture]` table (`mixture.toml`) that a stage file takes as is, with the asked
  and the realised shares beside it;
- the proposal is then trained as one more candidate (`search-proposal`: same budget, seeds and evaluation) and its
  measured target is recorded beside the fit's prediction and the best of the K draws (`verify_proposal`): a
  fit that does not extrapolate shows here.

The proxies' shares are of proxy tokens (UTF-8 bytes for the CPU proxy); a stage's `[mixture.domains]` are shares
of its own tokenizer's tokens. When the run has a shards manifest, the proposal is converted with each source's
stage tokens per proxy token (its budget rows' available tokens over the proxy's); otherwise it is written in
proxy-token shares and the file says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ablate.config import HELDOUT, PROPOSAL, AblationConfigError, MixtureCandidate, SearchConfig
from core.io import atomic_write_bytes, atomic_write_json
from schemas import DOMAINS

PREFIX = "search-"
MIXTURE_TOML = "mixture.toml"
SEARCH_JSON = "search.json"


def search_units(search: SearchConfig, partitions: dict[str, str]) -> list[str]:
    """What the weights are over: the run's domains, or its sources (sorted)."""
    return sorted(set(partitions.values())) if search.over == "domains" else sorted(partitions)


def check_target(search: SearchConfig, eval_sets: tuple[str, ...], partitions: dict[str, str]) -> None:
    """The search's target is scored by this ablation: "heldout" or `heldout:<domain>` of the run (with the
    heldout sets asked for), or one of `eval_sets`.

    Raises:
        AblationConfigError: names the target and what is scored.
    """
    domain = search.target.removeprefix(f"{HELDOUT}:")
    scored = HELDOUT in eval_sets if search.target == HELDOUT or domain != search.target else None
    if scored is None:
        scored = search.target in eval_sets
    elif domain != search.target and domain not in partitions.values():
        scored = False
    if not scored:
        raise AblationConfigError(
            f"--search-target {search.target!r} is not scored here: use {HELDOUT}, {HELDOUT}:<domain> of the run "
            f"({', '.join(sorted(set(partitions.values())))}) with {HELDOUT} in --eval, or one of --eval's sets"
        )


def draw_mixtures(search: SearchConfig, partitions: dict[str, str]) -> tuple[MixtureCandidate, ...]:
    """The K mixtures to train, drawn from the seeded Dirichlet over `search_units`."""
    units = search_units(search, partitions)
    weights = _dirichlet(search.seed, len(units), search.k)
    return tuple(
        mixture_candidate(search, f"{PREFIX}{i:03d}", {u: float(x) for u, x in zip(units, w, strict=True)})
        for i, w in enumerate(weights)
    )


def mixture_candidate(search: SearchConfig, name: str, shares: dict[str, float]) -> MixtureCandidate:
    """The mixture that gives each domain (or source) of the run `shares` of the proxy's tokens: a draw, or the
    proposal (realised as the draws are, so that the fit's prediction and the measurement speak of one thing)."""
    if search.over == "domains":
        return MixtureCandidate(name, search.run, {"domains": {d: shares.get(d, 0.0) for d in DOMAINS}})
    return MixtureCandidate(name, search.run, source_shares=shares)


def _dirichlet(seed: int, n_units: int, n: int, stream: str = "draws") -> np.ndarray:
    # One generator per use (the draws, the proposal's samples), keyed by the seed: adding draws changes no sample.
    rng = np.random.default_rng([seed, {"draws": 0, "samples": 1}[stream]])
    return rng.dirichlet(np.ones(n_units), size=n)


def target_values(search: SearchConfig, rows: list[dict[str, Any]]) -> dict[str, float]:
    """Per candidate, the target's bits per byte averaged over seeds ("heldout": the mean over `heldout:*` sets)."""
    return {c: float(np.mean(v)) for c, v in target_per_seed(search, rows).items()}


def target_per_seed(search: SearchConfig, rows: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Per candidate, the target's bits per byte of each seed, in seed order."""
    per: dict[tuple[str, int], list[float]] = {}
    for r in rows:
        hit = r["eval_set"].startswith(f"{HELDOUT}:") if search.target == HELDOUT else r["eval_set"] == search.target
        if hit and r["bpb"] is not None:
            per.setdefault((r["candidate"], r["seed"]), []).append(float(r["bpb"]))
    by_cand: dict[str, list[float]] = {}
    for (cand, _seed), values in sorted(per.items()):
        by_cand.setdefault(cand, []).append(float(np.mean(values)))
    return by_cand


def ridge_fit(x_NU: np.ndarray, y_N: np.ndarray, ridge: float) -> tuple[np.ndarray, float]:
    """(coefficients, intercept) of min |y - x w - b|² + ridge |w|², the intercept unpenalised (centred data)."""
    x_mean, y_mean = x_NU.mean(axis=0), y_N.mean()
    xc = x_NU - x_mean
    w = np.linalg.solve(xc.T @ xc + ridge * np.eye(x_NU.shape[1]), xc.T @ (y_N - y_mean))
    return w, float(y_mean - x_mean @ w)


def r_squared(y: np.ndarray, pred: np.ndarray) -> float | None:
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return None if ss_tot == 0 else 1.0 - float(((y - pred) ** 2).sum()) / ss_tot


def fit_search(
    search: SearchConfig,
    rows: list[dict[str, Any]],
    shares: dict[str, dict[str, dict[str, float]]],
    stage_ratio: dict[str, float],
    proxy_available: dict[str, tuple[str, int]],
    max_share: dict[str, float],
) -> dict[str, Any]:
    """Fit the regression over every mixture candidate, propose a mixture, and return the `search.json` record.

    The proposal is the mean of the best predicted samples among those the repeat caps can realise (every unit's
    share within `max_share`; a mean of such samples is one too): a sample that asks a small domain for more than
    its capped tokens would be realised with other shares than the fit scored. When no sample is realisable (the
    caps' sum is under one: the run is too small for the budget), every sample is a candidate and the record says
    so (`realisable_samples` 0).

    Args:
        rows: the ablation's results rows (annotated here with `fit_measured`, `fit_predicted`, `fit_loo_predicted`).
        shares: candidate -> realised {"domains": ..., "sources": ...} shares of its training tokens.
        stage_ratio: source -> stage tokens per proxy token (empty: no conversion, the run has no shards).
        proxy_available: source -> (domain, proxy tokens available for training).
        max_share: unit -> the largest share a proxy's sample can realise (`max_shares`; 1 for a unit not named).

    Raises:
        ValueError: the target is in no row of a mixture candidate.
    """
    measured = target_values(search, rows)
    names = [c for c in shares if c in measured]
    if len(names) < 2:
        raise ValueError(f"search target {search.target!r}: measured for {len(names)} mixture(s); need 2 or more")
    units = sorted({u for c in names for u in shares[c][search.over]})
    x_NU = np.array([[shares[c][search.over].get(u, 0.0) for u in units] for c in names])
    y_N = np.array([measured[c] for c in names])
    w, b = ridge_fit(x_NU, y_N, search.ridge)
    pred = x_NU @ w + b
    loo = np.array([_loo(x_NU, y_N, i, search.ridge) for i in range(len(names))])
    samples = _dirichlet(search.seed, len(units), search.samples, "samples")
    scores = samples @ w + b
    limit_U = np.array([max_share.get(u, 1.0) for u in units])
    realisable = (samples <= limit_U + 1e-9).all(axis=1)
    pool = np.flatnonzero(realisable) if realisable.any() else np.arange(len(samples))
    best = pool[np.argsort(scores[pool], kind="stable")[: search.top]]
    proposal = samples[best].mean(axis=0)
    proposed = {u: float(p) for u, p in zip(units, proposal, strict=True)}
    for r in rows:
        if r["candidate"] in names:
            i = names.index(r["candidate"])
            r |= {"fit_measured": float(y_N[i]), "fit_predicted": float(pred[i]), "fit_loo_predicted": float(loo[i])}
    return {
        "over": search.over,
        "target": search.target,
        "units": units,
        "k": search.k,
        "seed": search.seed,
        "ridge": search.ridge,
        "coefficients": dict(zip(units, w.tolist(), strict=True)),
        "intercept": b,
        "r2": r_squared(y_N, pred),
        "loo_r2": r_squared(y_N, loo),
        "candidates": [
            {
                "candidate": c,
                "shares": shares[c][search.over],
                "measured": float(y_N[i]),
                "predicted": float(pred[i]),
                "loo_predicted": float(loo[i]),
            }
            for i, c in enumerate(names)
        ],
        "proposal": {
            "shares": proposed,
            "predicted": float(proposal @ w + b),
            "samples": search.samples,
            "top": search.top,
            "max_shares": {u: max_share.get(u, 1.0) for u in units},
            "realisable_samples": int(realisable.sum()),
            "table": stage_table(search.over, proposed, stage_ratio, proxy_available),
            "stage_tokens": bool(stage_ratio),
        },
    }


def max_shares(
    over: str, proxy_available: dict[str, tuple[str, int]], budget: int, max_repeats: float
) -> dict[str, float]:
    """Each domain's (or source's) largest share of a `budget`-token sample under `max_repeats` passes per source
    (sharding/mixture.py's cap; a domain spreads its share over its sources by size, so they reach their caps
    together): `max_repeats` x its available proxy tokens over the budget, at most 1."""
    tokens: dict[str, int] = {}
    for source, (domain, available) in proxy_available.items():
        unit = domain if over == "domains" else source
        tokens[unit] = tokens.get(unit, 0) + available
    return {u: min(1.0, max_repeats * t / budget) if budget > 0 else 1.0 for u, t in sorted(tokens.items())}


def verify_proposal(
    search: SearchConfig, record: dict[str, Any], rows: list[dict[str, Any]], shares: dict[str, dict[str, float]]
) -> dict[str, Any]:
    """The proposal as trained (candidate `PROPOSAL`): its measured target against the fit's prediction and against
    the best of the K draws. Adds the verdict to `record["proposal"]` and annotates the proposal's rows.

    RegMix's claim is that the fit extrapolates: a mixture it never saw scores about what it predicts, and better
    than the mixtures it was fitted on. Both are measured here rather than assumed.

    Args:
        rows: every results row, the proposal's included (its `fit_measured` and `fit_predicted` are set here; its
            `fit_loo_predicted` stays empty: the fit never saw it, so `fit_predicted` is already out of sample).
        shares: the proposal's realised {"domains": ..., "sources": ...} shares of its training tokens.

    Raises:
        ValueError: the target is in no row of the proposal.
    """
    per_seed = target_per_seed(search, rows)
    if PROPOSAL not in per_seed:
        raise ValueError(f"search target {search.target!r}: not measured for the proposal {PROPOSAL!r}")
    coef = record["coefficients"]
    realised = {u: shares[search.over].get(u, 0.0) for u in record["units"]}
    predicted = float(sum(coef[u] * x for u, x in realised.items()) + record["intercept"])
    measured = float(np.mean(per_seed[PROPOSAL]))
    fitted = {c["candidate"]: c["measured"] for c in record["candidates"]}
    draws = {c: v for c, v in fitted.items() if c.startswith(PREFIX)} or fitted
    best_draw = min(draws, key=lambda c: (draws[c], c))
    for r in rows:
        if r["candidate"] == PROPOSAL:
            r |= {"fit_measured": measured, "fit_predicted": predicted}
    record["proposal"] |= {
        "candidate": PROPOSAL,
        "realised_shares": realised,
        "predicted_realised": predicted,
        "measured": measured,
        "measured_seeds": per_seed[PROPOSAL],
        "error": measured - predicted,
        "best_draw": best_draw,
        "best_draw_measured": draws[best_draw],
        "best_draw_seeds": per_seed[best_draw],
        "beats_best_draw": measured < draws[best_draw],
        "rank": 1 + sum(v < measured for v in fitted.values()),  # among the fitted mixtures and itself
    }
    return record


def _loo(x_NU: np.ndarray, y_N: np.ndarray, i: int, ridge: float) -> float:
    keep = np.arange(len(y_N)) != i
    w, b = ridge_fit(x_NU[keep], y_N[keep], ridge)
    return float(x_NU[i] @ w + b)


def stage_table(
    over: str, proposed: dict[str, float], stage_ratio: dict[str, float], proxy_available: dict[str, tuple[str, int]]
) -> dict[str, Any]:
    """The proposal as a stage's `[mixture]` table: every domain named (0 for the ones left out, so that a base
    file's domains do not merge in), and per-source weights when the search was over sources.

    A domain's proxy share is spread over its sources by their available tokens (as the proxies' plan spreads it,
    weight 1 each); each source's share is converted to stage tokens with its ratio; the domain's weight is the sum.
    A source's weight is its share over its available tokens (the stage splits a domain by weight x available),
    which does not depend on the tokenizer.
    """
    per_source: dict[str, float] = {}
    for source, (domain, tokens) in proxy_available.items():
        if over == "sources":
            per_source[source] = proposed.get(source, 0.0)
        else:
            in_domain = sum(t for d, t in proxy_available.values() if d == domain)
            per_source[source] = proposed.get(domain, 0.0) * tokens / in_domain if in_domain else 0.0
    domains = {d: 0.0 for d in DOMAINS}
    for source, share in per_source.items():
        domains[proxy_available[source][0]] += share * stage_ratio.get(source, 1.0)
    total = sum(domains.values()) or 1.0
    table: dict[str, Any] = {"domains": {d: round(w / total, 6) for d, w in domains.items()}}
    if over == "sources":
        weights = {s: share / proxy_available[s][1] for s, share in per_source.items() if proxy_available[s][1]}
        top = max(weights.values(), default=0.0) or 1.0
        table["sources"] = {s: {"weight": round(w / top, 6)} for s, w in sorted(weights.items())}
    return table


def write_proposal(out: Path, record: dict[str, Any], run: Path) -> Path:
    """`out/search.json` (the fit) and `out/mixture.toml` (the proposal, a stage's `[mixture]` table); returns the
    latter."""
    atomic_write_json(out / SEARCH_JSON, record)
    prop = record["proposal"]
    r2 = "n/a" if record["r2"] is None else f"{record['r2']:.3f}"
    loo = "n/a" if record["loo_r2"] is None else f"{record['loo_r2']:.3f}"
    kind = "the stage tokenizer's tokens (converted per source)" if prop["stage_tokens"] else "proxy tokens"
    lines = [
        f"# Proposed by `python -m flows.ablate --search {record['k']}` over the {record['over']} of {run}",
        "# (RegMix, arXiv 2407.01492): a ridge regression from the proxies' realised shares to "
        f"{record['target']} bits per byte,",
        f"# R² {r2} in sample, {loo} leave-one-out, over {len(record['candidates'])} proxies; the mean of the best "
        f"{prop['top']} of {prop['samples']:,} sampled mixtures,",
        f"# predicted {prop['predicted']:.4f} bits per byte. Shares of {kind}. Paste into a stage file as is.",
        *_verdict_lines(record),
        "[mixture.domains]",
        *(f"{d} = {w}" for d, w in prop["table"]["domains"].items()),
    ]
    for source, s in prop["table"].get("sources", {}).items():
        lines += ["", f"[mixture.sources.{_toml_key(source)}]", f"weight = {s['weight']}"]
    path = out / MIXTURE_TOML
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode("utf-8"))
    return path


def _verdict_lines(record: dict[str, Any]) -> list[str]:
    """The proposal's measurement, as comment lines (none before the proposal was trained)."""
    prop = record["proposal"]
    if "measured" not in prop:
        return []
    verdict = "beats" if prop["beats_best_draw"] else "does not beat"
    asked = ", ".join(f"{u} {x:.3f}" for u, x in prop["shares"].items())
    realised = ", ".join(f"{u} {x:.3f}" for u, x in prop["realised_shares"].items())
    return [
        f"# Asked {asked}; realised {realised} (proxy tokens, under the repeat caps).",
        f"# Trained as {prop['candidate']!r} (same budget, seeds and evaluation): measured {prop['measured']:.4f},",
        f"# predicted {prop['predicted_realised']:.4f} at its realised shares; it {verdict} the best of the "
        f"{record['k']} draws ({prop['best_draw']}, {prop['best_draw_measured']:.4f}).",
    ]


def _toml_key(key: str) -> str:
    bare = key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key)
    return key if bare else json.dumps(key)


def stage_token_ratio(run: Path, proxy_available: dict[str, tuple[str, int]]) -> dict[str, float]:
    """source -> the run's stage tokens per proxy token, from its shards manifest's budget rows (empty when the run
    has no single shards manifest)."""
    found = sorted(run.glob("shards/*/manifest.json"))
    if len(found) != 1:
        return {}
    rows = json.loads(found[0].read_text(encoding="utf-8")).get("mixture") or []
    stage = {r["source"]: int(r.get("available_tokens") or 0) for r in rows}
    return {s: stage[s] / t for s, (_d, t) in proxy_available.items() if stage.get(s) and t}
