"""`format = "pystrings"`: prose that Python modules hold as string literals, one document per module, never imported.

The real files are spaCy's example sentences (`spacy/lang/<code>/examples.py`), which ship with the spaCy that
set-up installs.
"""

from __future__ import annotations

import importlib.util
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from ingest.readers import read_source
from ingest.sources import SourcesError, load_sources
from schemas import Document, QuarantineRecord
from tests.conftest import REPO_ROOT

SPACY_SOURCE = """[[source]]
name = "spacy-sentences"
domain = "web"
format = "pystrings"
variable = "sentences"
path = "{package:spacy}/lang/*/examples.py"
license = "LicenseRef-from-the-sources-file"
"""


def _scripts(text: str) -> Counter[str]:
    """Letters per script, named by the first word of their Unicode name (LATIN, HIRAGANA, CJK, ARABIC, ...)."""
    return Counter(unicodedata.name(c, "?").split()[0] for c in text if c.isalpha())


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(body)
    return path


@pytest.fixture(scope="module")
def spacy_docs(tmp_path_factory) -> list[Document]:
    (spec,) = load_sources(_write(tmp_path_factory.mktemp("src"), SPACY_SOURCE))
    records = list(read_source(spec))
    assert all(isinstance(r, Document) for r in records), [r for r in records if not isinstance(r, Document)]
    return records


def test_one_document_per_spacy_language_in_its_script(spacy_docs):
    spacy_dir = importlib.util.find_spec("spacy").submodule_search_locations[0]  # (importing spaCy takes seconds)
    modules = sorted(Path(spacy_dir).glob("lang/*/examples.py"))
    assert len(spacy_docs) == len(modules) >= 60
    by_lang = {d.metadata.get("declared_lang"): d for d in spacy_docs}
    assert len(by_lang) == len(spacy_docs)  # one document per folder
    assert None in by_lang and "xx" not in by_lang  # spaCy's `xx` (a mixed page) declares no language
    for lang, script in [
        ("ja", "HIRAGANA"),
        ("fa", "ARABIC"),
        ("am", "ETHIOPIC"),
        ("bo", "TIBETAN"),
        ("ko", "HANGUL"),
        ("he", "HEBREW"),
        ("ta", "TAMIL"),
        ("ru", "CYRILLIC"),
        ("el", "GREEK"),
        ("hi", "DEVANAGARI"),
        ("zh", "CJK"),
    ]:
        assert _scripts(by_lang[lang].text)[script] > 10, (lang, by_lang[lang].text[:80])
    ja = by_lang["ja"]
    assert ja.text.splitlines()[0] == "アップルがイギリスの新興企業を１０億ドルで購入を検討"  # a sentence per line
    assert " " not in ja.text  # Japanese joined by newlines gets no space it never had
    assert len(ja.text.splitlines()) == ja.metadata["strings"]
    assert ja.path == "ja/examples.py" and ja.lang is None and ja.lang_score is None  # language ID decides
    # The license the package's dist-info declares, not the sources file's fallback.
    assert {(d.license, d.metadata["license_from"]) for d in spacy_docs} == {("MIT", "spacy dist-info")}
    assert len({d.id for d in spacy_docs}) == len(spacy_docs)


def test_bad_modules_are_quarantined_with_a_reason_never_imported(tmp_path: Path):
    pkg = tmp_path / "lang"
    modules = {
        "de": 'import sys\nsys.exit("importing this module would stop the test")\n'
        'sentences: list[str] = ["Erste Zeile.", "  ", "Zweite Zeile."]\n',
        "broken": 'sentences = ["unclosed"\n',
        "none": 'examples = ["the sentences are under another name"]\n',
        "call": 'sentences = load("sentences.txt")\n',
        "mixed": 'sentences = ["a sentence", 42]\n',
        "empty": "sentences = []\n",
        "single": 'sentences = "Une seule phrase."\n',  # a string, not a list
    }
    for folder, source in modules.items():
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "examples.py").write_text(source)
    src = _write(tmp_path, SPACY_SOURCE.replace("{package:spacy}", str(tmp_path)))
    (spec,) = load_sources(src)
    records = {
        (r.location if isinstance(r, QuarantineRecord) else r.path).removeprefix("lang/"): r for r in read_source(spec)
    }
    assert len(records) == len(modules)  # one row per module: nothing vanishes
    ok = records["de/examples.py"]
    assert isinstance(ok, Document) and ok.text == "Erste Zeile.\nZweite Zeile." and ok.metadata["strings"] == 2
    # Outside site-packages no dist-info owns the file: the sources file's license.
    assert ok.license == "LicenseRef-from-the-sources-file" and ok.metadata["license_from"] == "sources file"
    assert ok.metadata["declared_lang"] == "de" and ok.lang is None
    single = records["single/examples.py"]
    assert single.text == "Une seule phrase." and "declared_lang" not in single.metadata  # no language code
    reasons = {
        loc.split("/")[0]: (r.reason, r.detail) for loc, r in records.items() if isinstance(r, QuarantineRecord)
    }
    assert {k: v[0] for k, v in reasons.items()} == {
        "broken": "unparsable_python",
        "none": "missing_variable",
        "call": "not_string_literals",
        "mixed": "not_string_literals",
        "empty": "empty_text",
    }
    assert "item 1 is a int" in reasons["mixed"][1] and "Call" in reasons["call"][1]
    assert "'sentences'" in reasons["none"][1]


@pytest.mark.parametrize(
    "extra, fmt, message",
    [
        ("", "pystrings", "format 'pystrings' needs 'variable'"),
        ('variable = "not a name"\n', "pystrings", "needs 'variable', a Python name"),
        ('variable = "sentences"\n', "text", "'variable' is only for format 'pystrings'"),
    ],
)
def test_variable_is_checked_before_any_work(tmp_path: Path, extra: str, fmt: str, message: str):
    body = f'[[source]]\nname = "s"\ndomain = "web"\nformat = "{fmt}"\npath = "x.py"\n{extra}'
    with pytest.raises(SourcesError, match=message):
        load_sources(_write(tmp_path, body))


def test_embedded_default_sources_hold_documents_in_many_scripts():
    specs = load_sources(REPO_ROOT / "configs" / "sources" / "default.toml")
    assert "pystrings" in {s.format for s in specs}
    dominant = Counter()
    for spec in specs:
        if spec.domain != "web":
            continue
        for doc in read_source(spec):
            if isinstance(doc, Document) and _scripts(doc.text):
                dominant[_scripts(doc.text).most_common(1)[0][0]] += 1
    assert len(dominant) >= 15, dominant
    assert {"LATIN", "CYRILLIC", "ARABIC", "DEVANAGARI", "HANGUL", "CJK", "ETHIOPIC", "TAMIL"} <= set(dominant)
