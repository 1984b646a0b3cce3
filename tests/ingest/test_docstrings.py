"""`format = "docstrings"`: each public docstring of a Python tree is one prose document, nothing is imported."""

from __future__ import annotations

import os
from pathlib import Path

from ingest.docstrings import MIN_DOCSTRING_CHARS
from ingest.readers import Skipped, read_source
from ingest.sources import load_sources
from schemas import Document, QuarantineRecord

LONG = "The density is $f(x) = \\frac{1}{\\sqrt{2\\pi}} e^{-x^2/2}$ for every real x. " * 8

MODULE = f'''"""{LONG}"""
import sys
sys.exit("importing this module would stop the test")


def pdf(x):
    """{LONG}

    Parameters
    ----------
    x : float
    """


def short(x):
    """Too short to be a document."""


def _private(x):
    """{LONG}"""


class Normal:
    """{LONG}"""

    def cdf(self, x):
        """{LONG}"""
'''


def _read(tmp_path: Path, tree: Path) -> list:
    src = tmp_path / "sources.toml"
    src.write_text(
        f'[[source]]\nname = "docs"\ndomain = "stem"\nformat = "docstrings"\npath = "{tree}"\n'
        'include = ["**/*.py"]\nlicense = "MIT"\n'
    )
    (spec,) = load_sources(src)
    return list(read_source(spec))


def test_each_public_docstring_is_a_document_in_source_order(tmp_path: Path):
    tree = tmp_path / "pkg"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "dist.py").write_text(MODULE)
    (tree / "sub" / "bare.py").write_text("x = 1\n")
    (tree / "sub" / "broken.py").write_text('"""doc"""\ndef f(:\n')
    os.symlink("/etc/hostname", tree / "sub" / "outside.py")
    records = _read(tmp_path, tree)
    docs = [r for r in records if isinstance(r, Document)]
    assert [d.metadata["name"] for d in docs] == ["", "pdf", "Normal", "Normal.cdf"]  # no short, no _private
    assert docs[0].text.startswith("# sub.dist\n\nThe density is $f(x)")
    assert docs[1].text.startswith("# sub.dist.pdf\n\n") and "Parameters\n----------" in docs[1].text
    assert all(d.domain == "stem" and d.license == "MIT" and len(d.text) >= MIN_DOCSTRING_CHARS for d in docs)
    assert len({d.id for d in docs}) == 4
    reasons = {(type(r).__name__, r.reason) for r in records if not isinstance(r, Document)}
    assert reasons == {
        ("Skipped", "few_docstrings"),
        ("QuarantineRecord", "unparsable_python"),
        ("QuarantineRecord", "symlink_outside_tree"),
    }
    assert not any(isinstance(r, QuarantineRecord) and "hostname" in (r.excerpt or "") for r in records)
    assert [d.id for d in docs] == [d.id for d in _read(tmp_path, tree) if isinstance(d, Document)]


def test_a_module_without_long_docstrings_is_counted_not_lost(tmp_path: Path):
    tree = tmp_path / "pkg"
    tree.mkdir()
    (tree / "m.py").write_text('"""Short."""\n')
    (skipped,) = _read(tmp_path, tree)
    assert isinstance(skipped, Skipped) and skipped.location.endswith("m.py")
