"""Docstrings of a Python tree as prose documents (`format = "docstrings"`).

Scientific packages document their mathematics in docstrings: definitions, formulas in reST `.. math::` and
LaTeX, worked examples. Read without importing anything (`ast`): the module's docstring and each public class's
and function's, in source order, each one document under a heading that names it. This is STEM prose with formulas that ships with every scientific Python install, which the embedded default sources
use; the code itself is the `code` format's business.

The tree is walked exactly as a code tree (`include` globs, links out of the tree or in a loop quarantined
unread, binary and non-UTF-8 files quarantined); a module that does not parse is quarantined as
`unparsable_python`; a docstring shorter than `MIN_DOCSTRING_CHARS` is no document, and a module with none long
enough is counted as a `Skipped` row (`few_docstrings`).
"""

from __future__ import annotations

import ast
import inspect
import warnings
from collections.abc import Iterator
from pathlib import Path

from ingest.records import Record, Skipped, make_doc, quarantine
from ingest.sources import SourceSpec
from ingest.trees import tree_license, tree_texts
from schemas import QuarantineRecord

MIN_DOCSTRING_CHARS = 400  # below this a docstring says too little to be a prose document
_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
# What `parse_python` raises for a module that does not parse: ValueError for NUL bytes, RecursionError for deep
# nesting. Its readers quarantine such a module as `unparsable_python`.
PARSE_ERRORS = (SyntaxError, ValueError, RecursionError)


def parse_python(source: str) -> ast.Module:
    """The syntax tree of a module's source; nothing is imported or run.

    Raises:
        SyntaxError, ValueError, RecursionError: see `PARSE_ERRORS`.
    """
    with warnings.catch_warnings():  # an invalid escape in someone's string is their warning, not the reader's
        warnings.simplefilter("ignore", (SyntaxWarning, DeprecationWarning))
        return ast.parse(source)


def module_docstrings(source: str) -> list[tuple[str, str]]:
    """(qualified name, cleaned docstring) of a module and of every class and function in it, in source order.

    The module's own docstring has the name "". Private names (a leading underscore) are left out, as
    documentation builders do: their docstrings are notes to maintainers.
    """
    tree = parse_python(source)
    out: list[tuple[str, str]] = []
    doc = ast.get_docstring(tree, clean=False)
    if doc:
        out.append(("", inspect.cleandoc(doc)))

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, _DEFS) and not child.name.startswith("_"):
                name = f"{prefix}{child.name}"
                doc = ast.get_docstring(child, clean=False)
                if doc:
                    out.append((name, inspect.cleandoc(doc)))
                if isinstance(child, ast.ClassDef):
                    visit(child, f"{name}.")

    visit(tree, "")
    return out


def docstring_text(module: str, name: str, doc: str) -> str:
    """One document: a Markdown heading naming the module or definition, then its docstring."""
    return f"# {module}.{name}\n\n{doc}" if name else f"# {module}\n\n{doc}"


def read_docstring_tree(spec: SourceSpec, root: Path, tree: str) -> Iterator[Record | Skipped]:
    """One prose document per Python module of the tree that has docstrings worth reading."""
    license_id, license_from = tree_license(spec, root)
    for item in tree_texts(spec, root, tree, suffixes=(".py",)):
        if isinstance(item, QuarantineRecord):
            yield item
            continue
        location, _, text = item
        try:
            docs = module_docstrings(text)
        except PARSE_ERRORS as e:
            yield quarantine(spec, location, "unparsable_python", text[:200], detail=f"{type(e).__name__}: {e}")
            continue
        module = location.removeprefix(f"{tree}/").removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        kept = 0
        for name, doc in docs:
            # One document per docstring: a module's docstrings repeat their section headings (Parameters,
            # Returns, ...) once per function, which repetition filters rightly read as a repeated page.
            if len(doc) < MIN_DOCSTRING_CHARS:
                continue
            kept += 1
            meta = {"module": module, "name": name, "license_from": license_from}
            yield make_doc(
                spec,
                f"{location}#{name}",
                docstring_text(module, name, doc),
                path=location,
                license=license_id,
                metadata=meta,
            )
        if not kept:
            yield Skipped(spec.name, location, "few_docstrings")
