"""`[synth.route]`: which templates a seed may go through, by the bucket its score falls in (Nemotron-CC, Su et al.
2024, arXiv 2412.02595, section 3.2: low-quality documents are rephrased, high-quality ones become question/answer
pairs, distilled and extracted knowledge).

    [synth.route]
    scorer = "educational_value"      # a [scorers.<name>] of the stage: the seeds' `scores` key
    [[synth.route.buckets]]
    min_score = 0.0                   # a seed is in the bucket with the highest min_score <= its score
    templates = ["rephrase"]
    [[synth.route.buckets]]
    min_score = 0.5
    templates = ["stem_qa", "textbook_section"]

A seed without the score (a domain the scorer skips, a corpus from before it) goes through the `[synth] templates`
(all when empty). Routing only restricts each template's pool of seeds; the plan still takes templates in turn
(synth/plan.py), so a request's key, and resume, are as without routes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synth.seeds import Seed, corpus_dir


@dataclass(frozen=True)
class RouteBucket:
    """Seeds scoring at least `min_score` (and below the next bucket's) go through `templates`."""

    min_score: float
    templates: tuple[str, ...]


@dataclass(frozen=True)
class SynthRoute:
    """A checked `[synth.route]` table; buckets in ascending min_score."""

    scorer: str
    buckets: tuple[RouteBucket, ...]

    @classmethod
    def from_table(cls, where: str, table: dict[str, Any], error: type[Exception] = ValueError) -> SynthRoute:
        """Check the table (types are checked by the caller against this class's hints): a scorer, buckets with
        scores in [0, 1] that start at 0, and templates that exist.

        Raises:
            error: one line naming the key and the value.
        """
        from synth.templates import TemplateError, load_templates

        buckets = sorted(
            (
                RouteBucket(float(b.get("min_score", -1.0)), tuple(b.get("templates", ())))
                for b in table.get("buckets", [])
            ),
            key=lambda b: b.min_score,
        )
        if "scorer" not in table or not buckets:
            raise error(f"{where}: needs scorer (a [scorers.<name>] of the stage) and [[synth.route.buckets]]")
        for b in buckets:
            if not 0.0 <= b.min_score <= 1.0 or not b.templates:
                raise error(f"{where} buckets: each needs min_score in [0, 1] and templates, got {b}")
        if buckets[0].min_score != 0.0:
            raise error(f"{where} buckets: the lowest min_score must be 0, so that every scored seed has a bucket")
        if len({b.min_score for b in buckets}) != len(buckets):
            raise error(f"{where} buckets: two buckets have the same min_score")
        try:
            load_templates(sorted({n for b in buckets for n in b.templates}))
        except TemplateError as e:
            raise error(f"{where} templates: {e}") from e
        return cls(table["scorer"], tuple(buckets))

    @property
    def template_names(self) -> list[str]:
        """Every template a bucket names, in first-named order."""
        return list(dict.fromkeys(n for b in self.buckets for n in b.templates))

    def templates_for(self, score: float | None, default: tuple[str, ...]) -> tuple[str, ...]:
        """The templates of a seed with `score` (None: no score, the `default` ones)."""
        if score is None:
            return default
        return [b for b in self.buckets if b.min_score <= score][-1].templates


def read_seed_scores(corpus: Path | list[Path], ids: Iterable[str], scorer: str) -> dict[str, float]:
    """`scores[scorer]` of the documents `ids` of a corpus (a run, a corpus folder, or unit folders, as
    `sample_seeds` reads them); a document without the score is absent from the result."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    wanted = set(ids)
    if isinstance(corpus, list):
        files = [str(f) for d in corpus for f in sorted(Path(d).rglob("*.parquet"))]
        dataset = ds.dataset(files, format="parquet") if files else None
    else:
        dataset = ds.dataset(corpus_dir(corpus), format="parquet", partitioning="hive")
    if dataset is None or "scores" not in dataset.schema.names:
        return {}
    out: dict[str, float] = {}
    for batch in dataset.to_batches(columns=["id", "scores"], filter=pc.field("id").isin(sorted(wanted))):
        values = pc.map_lookup(batch.column("scores"), scorer, "first").to_pylist()
        for doc_id, value in zip(batch.column("id").to_pylist(), values):
            if value is not None:
                out.setdefault(doc_id, value)
    return out


def seed_templates(
    seeds: list[Seed], scores: dict[str, float], route: SynthRoute, default: tuple[str, ...]
) -> dict[str, tuple[str, ...]]:
    """Seed id -> the templates it may go through (`SynthRoute.templates_for` of its score)."""
    return {s.id: tuple(route.templates_for(scores.get(s.id), default)) for s in seeds}
