"""Prose that Python modules hold as string literals (`format = "pystrings"`).

Packages ship real prose as data in modules: spaCy's `lang/<code>/examples.py` holds a few sentences of news,
facts and questions in each of 68 languages (18 scripts) as `sentences = [...]`. Read without importing anything
(`ast`): the strings the module assigns to the source's `variable` at its top level (a string, or a list or
tuple of strings; the last such assignment, as Python would leave it) make one document per module, one string
per line. NOTE: joined by newlines, not spaces: the strings are separate sentences (a page of them, as a page of
headlines), and a space would put word breaks into Chinese and Japanese that the text never had.

`lang` stays unset (unless the source sets it), so language ID decides, as for any web page; the module's folder,
when it is named as a language code (`ja`, `grc`), is kept as `metadata.declared_lang` to compare with. The
license is the one the owning package's dist-info declares (`License-Expression`, else a one-line `License`),
else the sources file's.

Quarantine reasons (besides a text file's: too_large, invalid_utf8, nul_bytes, empty_text):
`unparsable_python` (the module does not parse), `missing_variable` (no top-level assignment of `variable`),
`not_string_literals` (it is assigned something other than string literals: a call, a name, a number).
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import os
import re
import sysconfig
from collections.abc import Iterator
from pathlib import Path

from ingest.docstrings import PARSE_ERRORS, parse_python
from ingest.records import Record, check_text, make_doc, quarantine, read_file_text
from ingest.sources import SourceSpec
from schemas import QuarantineRecord

# A folder named as an ISO 639-1/-3 code; not a special code: spaCy's `xx` (its multi-language folder) and
# ISO 639-2's mul (several), und (undetermined), zxx (no linguistic content), mis (uncoded).
_LANG_FOLDER = re.compile(r"^[a-z]{2,3}$")
_NOT_A_LANGUAGE = frozenset({"xx", "mul", "und", "zxx", "mis"})
_MAX_LICENSE_CHARS = 100  # a longer `License` field is the license's full text, not its name


class NotStringLiterals(ValueError):
    """The variable is assigned something other than a string or a list/tuple of string literals."""


def assigned_strings(tree: ast.Module, variable: str) -> list[str] | None:
    """The strings a module assigns to `variable` at its top level (the last assignment), or None if it assigns none.

    Raises:
        NotStringLiterals: the value is not a string or a list/tuple of strings (the message says what it is).
    """
    value: ast.expr | None = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == variable for t in node.targets):
            value = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == variable:
            value = node.value if node.value is not None else value  # a bare annotation assigns nothing
    if value is None:
        return None
    try:
        literal = ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as e:
        raise NotStringLiterals(f"line {value.lineno}: {type(value).__name__} is no literal ({e})") from e
    if isinstance(literal, str):
        return [literal]
    if not isinstance(literal, (list, tuple)):
        raise NotStringLiterals(f"line {value.lineno}: a {type(literal).__name__}, not a string or list of strings")
    for i, item in enumerate(literal):
        if not isinstance(item, str):
            raise NotStringLiterals(f"line {value.lineno}: item {i} is a {type(item).__name__}, not a string")
    return list(literal)


def declared_language(path: Path) -> str | None:
    """The code a module's folder is named by when it is a language's (`ja` for `spacy/lang/ja/examples.py`)."""
    folder = path.parent.name
    return folder if _LANG_FOLDER.match(folder) and folder not in _NOT_A_LANGUAGE else None


@functools.cache
def _top_level_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()  # scans every installed dist-info once


def dist_license(path: Path) -> tuple[str, str] | None:
    """(license, "<distribution> dist-info") of the installed distribution that owns `path`, or None when the
    file is not in site-packages or its distribution declares no short license."""
    paths = sysconfig.get_paths()
    for site in {os.path.realpath(paths["purelib"]), os.path.realpath(paths["platlib"])}:
        if path.is_relative_to(site) and path != Path(site):
            top = path.relative_to(site).parts[0].removesuffix(".py")
            break
    else:
        return None
    for dist in _top_level_distributions().get(top, []):
        meta = importlib.metadata.metadata(dist)
        declared = (meta.get("License-Expression") or meta.get("License") or "").strip()
        if declared and "\n" not in declared and len(declared) <= _MAX_LICENSE_CHARS:
            return declared, f"{dist} dist-info"
    return None


def read_pystrings(spec: SourceSpec, path: Path, rel: str) -> Iterator[Record]:
    """One document per Python module: the strings it assigns to `spec.variable`, one per line."""
    text = read_file_text(spec, path, rel)
    if isinstance(text, QuarantineRecord):
        yield text
        return
    assert spec.variable is not None, "parse_source requires `variable` for format 'pystrings'"
    try:
        strings = assigned_strings(parse_python(text), spec.variable)
    except NotStringLiterals as e:
        yield quarantine(spec, rel, "not_string_literals", text[:200], detail=f"{spec.variable}: {e}")
        return
    except PARSE_ERRORS as e:
        yield quarantine(spec, rel, "unparsable_python", text[:200], detail=f"{type(e).__name__}: {e}")
        return
    if strings is None:
        detail = f"no top-level assignment of {spec.variable!r} in the module"
        yield quarantine(spec, rel, "missing_variable", text[:200], detail=detail)
        return
    lines = [s.strip() for s in strings if s.strip()]
    prose = "\n".join(lines)
    bad = check_text(spec, rel, prose, text[:200])
    if bad:
        yield bad
        return
    license_id, license_from = dist_license(path) or (spec.license, "sources file")
    meta: dict[str, object] = {"variable": spec.variable, "strings": len(lines), "license_from": license_from}
    declared = declared_language(path)
    if declared:
        meta["declared_lang"] = declared
    yield make_doc(spec, rel, prose, path=rel, license=license_id, metadata=meta)
