"""The dedup steps per language (FineWeb-2) and the cluster size a survivor keeps, on spaCy's example sentences
in eight languages and six scripts (Latin, Cyrillic, Han/kana, Hangul, Arabic, Devanagari, Ethiopic).

Each language's text appears as an original, an exact copy, a near copy (one sentence added) and, labelled as
another language, a second exact copy: the same page that language ID read differently, or a bilingual site's
boilerplate. Documents are spread over three units, so duplicates meet across units.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from core.stage_files import ConfigError
from dedup.steps import DedupApplyStep, ExactKeysStep, MinHashEdgesStep, MinHashSignaturesStep
from pipeline.layout import RunLayout
from pipeline.runner import StepResult, run_step
from pipeline.step import Step, Unit, UnitWriter, iter_unit_docs
from schemas import DUP_CLUSTER_SIZE, Document
from stage.config import load_stage_config

LANGS = ("de", "ru", "zh", "ja", "ko", "ar", "hi", "am")
# The extra sentence of each near copy, in the language's script (a short line, so Jaccard stays >= 0.7).
EXTRA = {
    "de": "Das ist alles.",
    "ru": "Вот и всё.",
    "zh": "就这些。",
    "ja": "以上です。",
    "ko": "이상입니다.",
    "ar": "هذا كل شيء.",
    "hi": "बस इतना ही।",
    "am": "ይህ ብቻ ነው።",
}
OTHER_LABEL = {"de": "nl", "ru": "uk", "zh": "ja", "ja": "zh", "ko": "ja", "ar": "fa", "hi": "mr", "am": "ti"}


def _examples(lang: str) -> str:
    return "\n".join(importlib.import_module(f"spacy.lang.{lang}.examples").sentences)


def corpus() -> list[Document]:
    docs = []
    for lang in LANGS:
        text = _examples(lang)
        for name, body, label in (
            ("orig", text, lang),
            ("copy", text, lang),
            ("near", f"{text}\n{EXTRA[lang]}", lang),
            ("relabel", text, OTHER_LABEL[lang]),
        ):
            docs.append(Document(f"{lang}-{name}", body, "spacy-examples", "web", lang=label))
    return docs


class SeedStep(Step):
    """Writes the given documents as units (round robin over `num_units`), as a filter step's output."""

    name = "seed"

    def __init__(self, docs: list[Document], num_units: int = 3) -> None:
        self.rows = [d.to_row() for d in docs]
        self.num_units = num_units

    def units(self) -> list[Unit]:
        return [Unit(f"u{k}", f"seed-{k}-{len(self.rows)}", {"k": k}) for k in range(self.num_units)]

    def run(self, unit: Unit, out: UnitWriter) -> None:
        for row in self.rows[unit.payload["k"] :: self.num_units]:
            out.read()
            out.keep(Document.from_row(row))


def run_dedup(root: Path, per_language: bool) -> dict[str, Document]:
    """Exact then MinHash dedup as the stage runs them; the surviving documents by id."""
    layout = RunLayout(root)
    last: StepResult = run_step(SeedStep(corpus()), layout)
    keys = run_step(ExactKeysStep({}, last, per_language), layout)
    last = run_step(DedupApplyStep("dedup_exact", "exact_dedup", last, keys, keys), layout)
    sigs = run_step(MinHashSignaturesStep({}, last, per_language), layout)
    edges = run_step(MinHashEdgesStep({}, sigs), layout)
    last = run_step(DedupApplyStep("dedup_minhash", "minhash_dedup", last, edges, sigs), layout)
    return {d.id: d for u in last.units for d in iter_unit_docs(u.dir)}


def test_per_language_dedup_keeps_each_language_apart_and_the_cluster_size(tmp_path: Path) -> None:
    kept = run_dedup(tmp_path / "per_lang", per_language=True)
    for lang in LANGS:
        # One of the same-language versions survives (the first in global order, whichever unit holds it); the
        # relabelled copy is another language's document and stays.
        same = [kept[f"{lang}-{name}"] for name in ("orig", "copy", "near") if f"{lang}-{name}" in kept]
        assert len(same) == 1 and f"{lang}-relabel" in kept, (lang, sorted(kept))
        # The survivor stands for itself, the exact copy (exact dedup) and the near copy (MinHash, which adds the
        # exact cluster a member already stood for).
        assert same[0].metadata[DUP_CLUSTER_SIZE] == 3, lang
        assert DUP_CLUSTER_SIZE not in kept[f"{lang}-relabel"].metadata, lang
    assert len(kept) == 2 * len(LANGS)


def test_global_dedup_merges_the_relabelled_copy(tmp_path: Path) -> None:
    kept = run_dedup(tmp_path / "global", per_language=False)
    assert len(kept) == len(LANGS) and {d.id.split("-")[0] for d in kept.values()} == set(LANGS)
    assert {d.metadata[DUP_CLUSTER_SIZE] for d in kept.values()} == {4}


def test_per_language_is_a_checked_dedup_key(tmp_path: Path) -> None:
    def stage(dedup: str) -> Path:
        path = tmp_path / "stage.toml"
        path.write_text(f'sources = "sources.toml"\n{dedup}\n', encoding="utf-8")
        return path

    cfg = load_stage_config(
        "general", stage("[dedup.exact]\nper_language = true\n[dedup.minhash]\nper_language = true")
    )
    assert cfg.exact.per_language and cfg.minhash.per_language
    assert "per_language" not in cfg.minhash.params  # MinHashDedup never sees it
    assert not load_stage_config("general", stage("")).minhash.per_language
    with pytest.raises(ConfigError, match=r"\[dedup.minhash\] per_language = 'yes': expected true or false"):
        load_stage_config("general", stage('[dedup.minhash]\nper_language = "yes"'))
