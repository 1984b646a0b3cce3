"""The `[scorers.<name>]` table of a stage file: score every document with a trained classifier after the filters.

    [scorers.edu]
    model = "../../models/edu"     # a classifier folder (model.bin + card.json), relative to the stage file
    mode = "annotate"              # annotate: every kept document gets scores['edu']; filter: also drop below min
    min_score = 0.5                # filter mode: the threshold where no `thresholds` entry is more specific
    # keep_top = 0.1               # filter mode, instead of min_score: keep the run's top 10% (DCLM's cut)
    domains = ["web"]              # optional: only these domains are scored (others get no 'edu' score)
    [[scorers.edu.thresholds]]     # optional, filter mode: per domain and/or language
    domain = "web"
    lang = "en"
    min_score = 0.7                # or keep_top = 0.2: the top 20% of this entry's documents

A perplexity scorer (CCNet-style, `scoring/perplexity.py`) needs no trained folder: SmolLM2-135M-Instruct as set-up
exported it (`bash scripts/bootstrap.sh`) scores `1 / perplexity` of each document's first `max_tokens`::

    [scorers.ppl]
    kind = "perplexity"            # default "fasttext"; `model` then defaults to the SmolLM2 export
    max_tokens = 256               # tokens of each document's opening that are scored (the default)
    sample = 0.1                   # optional, annotate mode: score a fixed tenth of the documents (any scorer)
    sample_max = 64                # optional, annotate mode: and at most 64 documents of the run
    servers = ["http://gpu-1:8000"]  # optional: vLLM servers of the same model compute it (the GPU engine)
    served_model = "corpusforge-synth"  # their --served-model-name (the default `python -m synth.server` uses)

`sample` (a share in (0, 1]) scores only the documents whose id hashes below it (`in_sample`): the same documents
at any worker count and in any order, and the others get no key in `scores` (DuckDB reads NULL; `score_thirds` and
the report's histograms count the scored ones). A costly scorer can then be on in every run and still describe
the run's distribution. `sample_max = N` caps the count at the N smallest hashes of the run (`scoring/sample.py`),
so that the cost does not grow with the input. Filter mode refuses both: a filter judges every document.

An embedding classifier (`python -m flows.classify train --kind embedding`; `scoring/embedding.py`: MiniLM
embeddings and a linear head) is a classifier folder like a fastText one; its card says its kind, so `kind` may be
left out (when given, it must match the card).

A multi-class classifier (a class rubric such as `topic`, `python -m flows.classify train --labels ... --rubric topic`;
its card lists its classes) gives each document one score per class, its probability, under the key
`<name>.<class>` (`WHERE scores['topic.science_tech'] > 0.5`; the probabilities of a document sum to 1). In filter
mode `class` names the class whose probability the thresholds apply to (required for such a classifier, refused
for any other); the drop reason and lineage score are the same as for one score::

    [scorers.science]
    model = "../../models/topic"
    mode = "filter"
    class = "science_tech"         # keep documents with P(science_tech) >= 0.5
    min_score = 0.5

The threshold of a document is the most specific entry that matches it: domain and language, then language,
then domain, then the table's own `min_score` / `keep_top`; a document no threshold covers is kept (with its
score). An absolute threshold drops in the filter step: `scorer_<name>_below_min`, the score in the lineage row.

A percentile threshold (`keep_top`, a share in (0, 1]; DCLM, Li et al. 2024, arXiv 2406.11794, keeps the top ~10%
of its pool by the fastText score) needs every score of the run first, so it is decided by a step of its own after
the filter step (`filters/score_cut.py`): among the documents an entry governs, the cutoff is the score of the
ceil(keep_top * n)-th best, and a document scoring below it is dropped as `scorer_<name>_below_top` with its score
and the cutoff (`threshold`) in the lineage row. Ties at the cutoff are all kept, so the same scores give the same
cut at any worker count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from core.config_types import check_table
from schemas import DOMAINS
from scoring.card import CardError, card_classes, read_card
from scoring.sample import id_hash

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class ScoreThreshold:
    """One `[[scorers.<name>.thresholds]]` entry: `min_score` (absolute) or `keep_top` (a share of the run's
    documents this entry governs) for the documents of `domain` and/or `lang`."""

    min_score: float | None = None
    domain: str | None = None
    lang: str | None = None
    keep_top: float | None = None

    @property
    def key(self) -> str:
        """The entry as a stable name (`domain/lang`, `*` for any): the groups a percentile is taken over."""
        return f"{self.domain or '*'}/{self.lang or '*'}"


@dataclass(frozen=True)
class ScorerConfig:
    """A checked `[scorers.<name>]` table (see the module docstring); `model_sha256` is read from the card."""

    name: str
    model: Path
    model_sha256: str
    kind: str = "fasttext"
    mode: Literal["annotate", "filter"] = "annotate"
    min_score: float | None = None
    thresholds: tuple[ScoreThreshold, ...] = ()
    domains: tuple[str, ...] = ()
    keep_top: float | None = None
    max_tokens: int | None = None  # perplexity scorers: tokens scored per document
    classes: tuple[str, ...] = ()  # a multi-class classifier's classes (its card's); () for one score
    score_class: str | None = None  # filter mode of a multi-class classifier: the class thresholds apply to
    sample: float | None = None  # the share of documents scored (`in_sample`); None: every document
    sample_max: int | None = None  # at most this many documents of a run scored (scoring/sample.py)
    sample_cutoff: float | None = None  # set by the stage from its input when sample_max binds; never in a file
    servers: tuple[str, ...] = ()  # perplexity scorers: vLLM servers of the same model compute it (the GPU engine)
    served_model: str = "corpusforge-synth"  # the name those servers serve it under (`--served-model-name`)

    @property
    def score_keys(self) -> tuple[str, ...]:
        """Every key this scorer writes into the `scores` map: its name, or `<name>.<class>` per class."""
        return tuple(f"{self.name}.{c}" for c in self.classes) or (self.name,)

    @property
    def score_key(self) -> str:
        """The key of the `scores` map that the thresholds compare: the name, or `<name>.<class>`."""
        return f"{self.name}.{self.score_class}" if self.score_class else self.name

    @classmethod
    def from_table(
        cls, where: str, name: str, table: dict[str, Any], base_dir: Path, error: type[Exception] = ValueError
    ) -> ScorerConfig:
        """Check a `[scorers.<name>]` table and its classifier folder (card and model sha256) before any work.

        Args:
            where: "<file>: [scorers.<name>]" for messages.
            base_dir: the stage file's folder, which a relative `model` hangs from.
            error: the exception class the caller's command turns into a one-line error.
        """
        hints = {
            "model": str,
            "mode": Literal["annotate", "filter"],
            "min_score": float,
            "keep_top": float,
            "thresholds": list[ScoreThreshold],
            "domains": list[str],
            "kind": Literal["fasttext", "embedding", "perplexity"],
            "max_tokens": int,
            "class": str,
            "sample": float,
            "sample_max": int,
            "servers": list[str],
            "served_model": str,
        }
        check_table(where, table, hints, error)
        if not _NAME_RE.match(name):
            raise error(f"{where}: scorer name {name!r} must be lower-case letters, digits and _ (a column key)")
        servers = _check_servers(where, table, table.get("kind", "fasttext"), error)
        model, model_sha256, kind, max_tokens, classes = _check_model(where, table, base_dir, error)
        thresholds = tuple(ScoreThreshold(**t) for t in table.get("thresholds", []))
        own = ScoreThreshold(table.get("min_score"), keep_top=table.get("keep_top"))
        for t in [*thresholds, own]:
            _check_threshold(where, t, own, error)
        domains = tuple(table.get("domains", ()))
        if set(domains) - set(DOMAINS):
            raise error(f"{where} domains = {list(domains)!r}: must be drawn from {list(DOMAINS)}")
        mode = table.get("mode", "annotate")
        if mode == "filter" and "min_score" not in table and "keep_top" not in table and not thresholds:
            raise error(f'{where}: mode = "filter" needs min_score, keep_top or [[scorers.{name}.thresholds]]')
        if mode == "annotate" and ("min_score" in table or "keep_top" in table or thresholds or "class" in table):
            raise error(f'{where}: min_score, keep_top, thresholds and class drop documents only with mode = "filter"')
        _check_class(where, table.get("class"), classes, mode, error)
        _check_sample(where, table, mode, error)
        return cls(
            name,
            model,
            model_sha256,
            kind,
            mode,
            table.get("min_score"),
            thresholds,
            domains,
            table.get("keep_top"),
            max_tokens,
            classes,
            table.get("class"),
            table.get("sample"),
            sample_max=table.get("sample_max"),
            servers=servers,
            served_model=table.get("served_model", cls.served_model),
        )

    def rule_for(self, domain: str, lang: str | None) -> ScoreThreshold | None:
        """The threshold entry that decides a document of `domain` and `lang` (the most specific that matches; the
        table's own min_score / keep_top as an entry for any domain and language); None: it is kept."""
        for entry_domain, entry_lang in ((domain, lang), (None, lang), (domain, None)):
            for t in self.thresholds:
                if t.domain == entry_domain and t.lang == entry_lang and (t.domain or t.lang):
                    return t
        if self.min_score is None and self.keep_top is None:
            return None
        return ScoreThreshold(self.min_score, keep_top=self.keep_top)

    def threshold_for(self, domain: str, lang: str | None) -> float | None:
        """The absolute minimum score of a document of `domain` and `lang` (None: no absolute threshold covers it;
        it is kept by the filter step, and a `keep_top` entry may still cut it after)."""
        rule = self.rule_for(domain, lang)
        return rule.min_score if rule is not None else None

    @property
    def has_percentiles(self) -> bool:
        """Whether a `keep_top` decides some documents: the stage then runs `filters.score_cut` after the filters."""
        return self.mode == "filter" and (self.keep_top is not None or any(t.keep_top for t in self.thresholds))

    def fingerprint(self) -> dict[str, Any]:
        """What decides the scores and drops (the step's fingerprint): the model's bytes, not its folder."""
        return {
            "name": self.name,
            "model_sha256": self.model_sha256,
            "kind": self.kind,
            "mode": self.mode,
            "min_score": self.min_score,
            "domains": list(self.domains),
            "thresholds": [[t.domain, t.lang, t.min_score, t.keep_top] for t in self.thresholds],
            "keep_top": self.keep_top,
            "max_tokens": self.max_tokens,
            **({"class": self.score_class} if self.score_class else {}),  # absent: the fingerprints of before
            **({"sample": self.sample} if self.sample is not None else {}),  # likewise
            # The engine's kernels give other last digits than the scorer's own forward pass (~0.03 nats a token):
            # a run that switches between them recomputes its scores instead of mixing them. Which servers does not
            # matter, as long as they serve `model`.
            **({"engine": "vllm"} if self.servers else {}),
            **({"sample_max": self.sample_max} if self.sample_max is not None else {}),
            # Derived from the run's input: the units scored under another cutoff are not reused.
            **({"sample_cutoff": self.sample_cutoff} if self.sample_cutoff is not None else {}),
        }

    def in_sample(self, doc_id: str) -> bool:
        """Whether this scorer scores the document `doc_id` (always, without `sample`): a hash of the id alone, so
        the sample depends on neither the order nor the other documents (as `scoring.train.held_out` splits); with
        `sample_max`, also under the cutoff the stage took from its input (`scoring.sample`)."""
        if self.sample is None and self.sample_cutoff is None:
            return True
        h = id_hash(doc_id)
        return h < (self.sample if self.sample is not None else 1.0) and (
            self.sample_cutoff is None or h <= self.sample_cutoff
        )


def _check_model(
    where: str, table: dict[str, Any], base_dir: Path, error: type[Exception]
) -> tuple[Path, str, str, int | None, tuple[str, ...]]:
    """(model folder, its sha256, kind, max_tokens, classes) of a table: a classifier folder checked against its card
    (classes: a multi-class one's), or for `kind = "perplexity"` an exported language model (default: SmolLM2, which
    set-up exports)."""
    if table.get("kind", "fasttext") == "perplexity":
        from scoring.perplexity import DEFAULT_MAX_TOKENS, model_sha256
        from synth.models import exported_model

        max_tokens = table.get("max_tokens", DEFAULT_MAX_TOKENS)
        if max_tokens < 1:
            raise error(f"{where} max_tokens = {max_tokens!r}: tokens scored per document, at least 1")
        try:
            model = (base_dir / table["model"]).resolve() if "model" in table else exported_model()
            return model, model_sha256(model), "perplexity", max_tokens, ()
        except FileNotFoundError as e:
            raise error(f"{where}: {e}") from e
    if "max_tokens" in table:
        raise error(f'{where}: max_tokens is a setting of kind = "perplexity" only')
    if "model" not in table:
        raise error(f"{where}: 'model' (a classifier folder from `python -m flows.classify train`) is required")
    model = (base_dir / table["model"]).resolve()
    try:
        card = read_card(model)
    except CardError as e:
        raise error(f"{where} model = {table['model']!r}: {e}") from e
    if table.get("kind", card["kind"]) != card["kind"]:
        raise error(f"{where} kind = {table['kind']!r}, but the card of {table['model']!r} says {card['kind']!r}")
    if card["kind"] == "embedding":  # its encoder is an asset: checked here, not first in a worker
        from core.assets import AssetError
        from scoring.encoder import require_encoder

        try:
            require_encoder(card["encoder"]["sha256"])
        except AssetError as e:
            raise error(f"{where} model = {table['model']!r}: {e}") from e
    return model, card["model_sha256"], card["kind"], None, tuple(card_classes(card) or ())


def _check_class(
    where: str, score_class: str | None, classes: tuple[str, ...], mode: str, error: type[Exception]
) -> None:
    """`class` names one of a multi-class classifier's classes, and filter mode of such a classifier needs one."""
    if score_class is not None and not classes:
        raise error(f"{where} class = {score_class!r}: the classifier is not multi-class (its card has no classes)")
    if score_class is not None and score_class not in classes:
        raise error(f"{where} class = {score_class!r}: not one of the classifier's classes {list(classes)}")
    if mode == "filter" and classes and score_class is None:
        raise error(f'{where}: mode = "filter" with a multi-class classifier needs class = one of {list(classes)}')


def _check_sample(where: str, table: dict[str, Any], mode: str, error: type[Exception]) -> None:
    """`sample` is a share in (0, 1] and `sample_max` a count >= 1, in annotate mode only."""
    sample, sample_max = table.get("sample"), table.get("sample_max")
    if sample is not None and not 0.0 < sample <= 1.0:
        raise error(f"{where} sample = {sample!r}: the share of documents scored, in (0, 1] (0.1: a tenth)")
    if sample is not None and mode == "filter":
        raise error(
            f'{where} sample = {sample!r}: mode = "filter" judges every document; sample needs mode = "annotate"'
        )
    if sample_max is not None and (sample_max < 1 or mode == "filter"):
        raise error(f'{where} sample_max = {sample_max!r}: documents scored, >= 1, with mode = "annotate"')


def _check_servers(where: str, table: dict[str, Any], kind: str, error: type[Exception]) -> tuple[str, ...]:
    """`servers` (and `served_model`) belong to a perplexity scorer, and are base URLs."""
    servers = tuple(table.get("servers", ()))
    if ("servers" in table or "served_model" in table) and kind != "perplexity":
        raise error(f'{where}: servers and served_model are settings of kind = "perplexity" only')
    if "servers" in table and not servers:
        raise error(f"{where} servers = []: name at least one server, or leave the key out to score in the stage")
    for url in servers:
        if not url.startswith(("http://", "https://")):
            raise error(f"{where} servers: {url!r} is not a base URL such as http://127.0.0.1:8000")
    return servers


def _check_threshold(where: str, t: ScoreThreshold, own: ScoreThreshold, error: type[Exception]) -> None:
    """One entry (or the table's own min_score / keep_top): one kind of threshold, in range, a known domain."""
    entry = t is not own
    name = "thresholds: an entry" if entry else "the table"
    if t.min_score is not None and t.keep_top is not None:
        raise error(f"{where} {name} has both min_score and keep_top: an absolute threshold or a percentile, not both")
    if entry and t.min_score is None and t.keep_top is None:
        raise error(f"{where} thresholds: every entry needs min_score or keep_top (and a domain, a lang or both)")
    if t.min_score is not None and not 0.0 <= t.min_score <= 1.0:
        raise error(f"{where} min_score = {t.min_score!r}: a score is a probability, in [0, 1]")
    if t.keep_top is not None and not 0.0 < t.keep_top <= 1.0:
        raise error(f"{where} keep_top = {t.keep_top!r}: the share of documents kept, in (0, 1] (0.1: the top 10%)")
    if t.domain is not None and t.domain not in DOMAINS:
        raise error(f"{where} thresholds: domain = {t.domain!r}: unknown; known: {list(DOMAINS)}")
