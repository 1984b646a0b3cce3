"""What a synth run generates: its requests, each keyed by a hash of everything that determines its output, the
fingerprint of the model's weights, and the keys `generations.jsonl` already holds (so a killed run resumes).

Why a module of its own: the plan is pure and deterministic (same seeds, templates, count and seed, same keys);
sending the requests (synth/send.py) and starting servers (synth/run.py) are not.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synth.seeds import Seed
from synth.templates import Template

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SynthRequest:
    """One generation to make: a seed through a template, with its own sampling seed."""

    key: str
    index: int
    seed: Seed
    template: Template
    sampling_seed: int


def model_sha256(model_dir: Path | str) -> str:
    """sha256 over the model's weight files (name and bytes, sorted): provenance of what generated the data."""
    d = Path(model_dir)
    files = sorted([*d.glob("*.safetensors"), *d.glob("*.bin")])
    if not files:
        raise FileNotFoundError(f"{d}: no *.safetensors or *.bin weight files")
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def plan_requests(
    seeds: list[Seed],
    templates: list[Template],
    count: int,
    seed: int = 0,
    model_id: str = "",
    sampling: dict[str, Any] | None = None,
    allowed: Mapping[str, Collection[str]] | None = None,
) -> list[SynthRequest]:
    """`count` requests, templates in turn (each template takes the next seed that fits its domains).

    Deterministic: the same seeds, templates, count and seed give the same requests and keys; a larger count
    extends the list (the first requests keep their keys).

    Args:
        seeds: seed documents (from `synth.seeds.sample_seeds`).
        templates: templates to use, in turn.
        count: how many requests.
        seed: run seed; each request's sampling seed is derived from it and the request key.
        model_id: identifies the model in the key (its weights' sha256), so another model never reuses outputs.
        sampling: request-body overrides (temperature, max_tokens, ...), part of the key.
        allowed: seed id -> the template names it may go through (`[synth.route]`, synth/routes.py); a seed it
            does not name may go through any template.
    """
    if not templates:
        raise ValueError("no templates")
    fitting = {
        t.name: [s for s in seeds if t.fits(s) and (allowed is None or s.id not in allowed or t.name in allowed[s.id])]
        for t in templates
    }
    usable = [t for t in templates if fitting[t.name]]
    if count and not usable:
        raise ValueError(
            f"no seed fits any template's domains (and route) ({[(t.name, t.domains) for t in templates]}); "
            f"seed domains: {sorted({s.domain for s in seeds})}"
        )
    for t in templates:
        if not fitting[t.name]:
            logger.warning("template %s: no seed in domains %s (and routed to it); skipped", t.ref, list(t.domains))
    cursor = dict.fromkeys(fitting, 0)
    sampling_json = json.dumps(sampling or {}, sort_keys=True)
    out = []
    for i in range(count):
        t = usable[i % len(usable)]
        pool = fitting[t.name]
        s = pool[cursor[t.name] % len(pool)]
        cursor[t.name] += 1
        rep = (cursor[t.name] - 1) // len(pool)  # how often this seed was used with this template before
        ident = json.dumps([t.name, t.version, t.sha256, s.id, rep, seed, model_id, sampling_json])
        key = hashlib.sha256(ident.encode()).hexdigest()[:32]
        out.append(SynthRequest(key=key, index=i, seed=s, template=t, sampling_seed=int(key[:8], 16) % (2**31)))
    return out


def read_done(path: Path) -> set[str]:
    """Keys already in `generations.jsonl`; a torn last line (a kill mid-write) is cut off the file."""
    done: set[str] = set()
    if not path.is_file():
        return done
    good_end = 0
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            try:
                done.add(json.loads(line)["key"])
            except (ValueError, KeyError, TypeError):
                break
            good_end += len(line)
    if good_end != path.stat().st_size:
        logger.warning("%s: cutting a torn record after byte %d (a killed run)", path, good_end)
        with open(path, "r+b") as f:
            f.truncate(good_end)
    return done
