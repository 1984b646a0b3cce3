"""The sources file: which raw inputs a stage reads, and how.

A sources file is TOML with one `[[source]]` table per input::

    [[source]]
    name = "gsm8k"                    # unique, [a-z0-9_-]
    domain = "stem"                   # web | stem | code | books
    format = "jsonl"                  # jsonl (.gz/.zst too) | parquet | text | code | docstrings | pystrings
                                      # | warc | html
    path = "data/gsm8k/*.jsonl"       # glob (or list of globs) relative to this file
    text_field = ["question", "answer"]  # a column, or columns joined by a blank line
    license = "MIT"
    lang = "en"                       # optional: trusted language tag

`path` may start with a placeholder for text that ships with Python or an installed package, so the
embedded default sources work on any machine: `{stdlib}`, `{site-packages}`, `{package:NAME}`.
For `format = "code"`, `path` names the tree root(s) and `include` lists globs inside the tree;
`format = "docstrings"` walks a Python tree the same way and makes one prose document of each module's
docstrings (ingest/docstrings.py: STEM prose with formulas from scientific packages).
`format = "pystrings"` reads Python modules (files) that hold prose as string literals, and needs
`variable = "NAME"`: one document per module, the strings that module assigns to NAME one per line
(ingest/pystrings.py: spaCy's example sentences in 68 languages).
For `format = "text"`, `strip_front_matter = true` drops a leading YAML (`---`) or `Key: value` header
block (Markdown front matter, package METADATA, e-mail headers) and keeps the body.
For `format = "warc"`, `path` names WARC or WET files (`.warc`, `.warc.gz`, `.warc.zst`, `.wet.gz`); for
`format = "html"`, HTML files, or a folder (every `*.htm*` file under it). See ingest/web.py.

Every `path` entry must match something: one that matches no file (no folder, for a tree format) stops the stage
before any work with an error naming the sources file, the source and the path, unless the source says
`optional = true` (then a warning, and the source is listed in the funnel's `sources_without_files`).

A source's root is its path as written, normalised lexically (`..` folded, no link followed): for a glob, its
fixed part before the first glob character; for a literal path, its folder; for a bare placeholder, the folder
it names. A relative path hangs from the sources file's real folder and a placeholder from the real folder
Python or the package has, so only the part written in the sources file counts. No byte is read from a file
that resolves outside its root: a link below the root that leads out is refused (`symlink_outside_root`), and so
is a link *in* the written part (`data/etclink/*` with `data/etclink -> /etc`), which is never listed. Write the
real path (`realpath`) when the data sits behind a symlinked folder.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import logging
import os
import re
import sysconfig
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from schemas import DOMAINS

log = logging.getLogger(__name__)

FORMATS = ("jsonl", "parquet", "text", "code", "docstrings", "pystrings", "warc", "html")
TREE_FORMATS = ("code", "docstrings")  # `path` names tree roots, `include` selects files inside them
_HTML_IN_FOLDER = "**/*.htm*"  # what a folder given as an html source's `path` stands for
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_PLACEHOLDER_RE = re.compile(r"^\{(stdlib|site-packages|package:[A-Za-z0-9_.]+)\}")
DEFAULT_MAX_DOC_BYTES = 8 * 1024 * 1024  # larger records are quarantined as `too_large`


class SourcesError(ValueError):
    """The sources file is wrong; the message names the file, the entry and the field."""


@dataclass(frozen=True)
class SourceSpec:
    name: str
    domain: str
    format: str
    paths: tuple[str, ...]
    base_dir: Path
    text_field: tuple[str, ...] = ("text",)
    license: str | None = None
    lang: str | None = None
    url_field: str | None = None
    include: tuple[str, ...] = ("**/*",)
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES
    metadata_fields: tuple[str, ...] = field(default_factory=tuple)
    strip_front_matter: bool = False
    variable: str | None = None  # pystrings: the module-level name whose strings are the text
    # Not in `to_config`: neither changes what the reader produces, so neither reruns ingest.
    optional: bool = False  # matching no file is a warning, not an error
    origin: str = ""  # "<sources file>: [[source]] #N (<name>)", for messages

    def to_config(self) -> dict:
        """The parts of the spec that change what the reader produces (for fingerprints)."""
        return {
            "name": self.name,
            "domain": self.domain,
            "format": self.format,
            "paths": list(self.paths),
            "text_field": list(self.text_field),
            "license": self.license,
            "lang": self.lang,
            "url_field": self.url_field,
            "include": list(self.include),
            "max_doc_bytes": self.max_doc_bytes,
            "metadata_fields": list(self.metadata_fields),
            "strip_front_matter": self.strip_front_matter,
            # Only when set, so that adding the key changed no other source's fingerprint.
            **({"variable": self.variable} if self.variable is not None else {}),
        }


def _resolve_placeholder(pattern: str) -> str:
    """Replace a leading {stdlib} / {site-packages} / {package:NAME} with a real directory."""
    m = _PLACEHOLDER_RE.match(pattern)
    if not m:
        return pattern
    key = m.group(1)
    if key == "stdlib":
        root = sysconfig.get_paths()["stdlib"]
    elif key == "site-packages":
        root = sysconfig.get_paths()["purelib"]
    else:
        pkg = key.split(":", 1)[1]
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            raise SourcesError(
                f"placeholder {{{key}}}: package '{pkg}' is not installed; run `bash scripts/bootstrap.sh`"
            )
        root = list(spec.submodule_search_locations)[0]
    # The folder Python or the package really has (pyenv, Homebrew and venvs reach it through links): only what
    # the sources file writes after the placeholder is held to "no link".
    return os.path.realpath(root) + pattern[m.end() :]


def _static_root(p: Path) -> Path:
    """The leading part of a path pattern that holds no glob characters."""
    parts = []
    for part in p.parts:
        if any(ch in part for ch in "*?["):
            break
        parts.append(part)
    return Path(*parts)


def _expand(spec: SourceSpec, pattern: str) -> tuple[Path, Path, bool]:
    """(absolute pattern, its root, whether it has glob characters) of one `path` entry.

    The root is the fixed prefix of a glob; for a literal path, its folder; for a bare placeholder
    (`{stdlib}`), the folder the placeholder names; always as written, normalised lexically (see the module
    docstring). Nothing a source reads may resolve outside its root.
    """
    p = Path(_resolve_placeholder(pattern))
    if not p.is_absolute():
        p = spec.base_dir / p
    p = Path(os.path.normpath(p))  # lexical: `data/link/..` is `data`, whatever `link` points to
    if spec.format == "html" and p.is_dir() and not p.is_symlink():
        return p / _HTML_IN_FOLDER, p, True
    root = _static_root(p)
    if root != p:
        return p, root, True
    return p, (p if _PLACEHOLDER_RE.fullmatch(pattern.rstrip("/")) else p.parent), False


def _glob_match(parts: tuple[str, ...], pats: tuple[str, ...]) -> bool:
    """Whether path parts match glob parts as `Path.glob` does (`**`: any number of folders)."""
    if not pats:
        return not parts
    if pats[0] == "**":
        return any(_glob_match(parts[i:], pats[1:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], pats[0]) and _glob_match(parts[1:], pats[1:])


def source_root(spec: SourceSpec, path: Path) -> Path | None:
    """The root of the first `path` entry of the source that yields `path` (see `_expand`), or None.

    A glob's root itself is yielded only when a link in it refuses the whole entry (see `_matches`).
    """
    for pattern in spec.paths:
        p, root, is_glob = _expand(spec, pattern)
        if not is_glob:
            if path == p:
                return root
        elif path == root or (
            path.is_relative_to(root) and _glob_match(path.relative_to(root).parts, p.relative_to(root).parts)
        ):
            return root
    return None


def link_in_root(root: Path) -> Path | None:
    """The first symlink among the folders of a root as written (`data/etclink` of `data/etclink/x`), or None.

    Reads no link's target: only whether each folder on the way is a link.
    """
    if os.path.realpath(root) == str(root):
        return None
    for folder in (*reversed(root.parents), root):
        if folder.is_symlink():
            return folder
    return None  # (realpath differs for another reason, e.g. a case-folding file system: nothing to refuse)


def _matches(spec: SourceSpec, pattern: str) -> tuple[list[Path], Path]:
    """What one `path` entry stands for, and its root: the files it matches (folders, for a tree format), and
    links whose target cannot be had, so that their reader quarantines them instead of them vanishing.

    When a link sits in the root as written, the entry is not listed at all (that would list the link target's
    folder): it is the path itself (literal) or its root (glob), which its reader refuses whole.
    """
    p, root, is_glob = _expand(spec, pattern)
    if link_in_root(root) is not None:
        return [p if not is_glob else root], root
    if not is_glob:  # no glob: the path itself
        found = [p] if p.exists() or p.is_symlink() else []
    else:
        found = sorted(Path(p.anchor).glob(str(p.relative_to(p.anchor))))
    want_dir = spec.format in TREE_FORMATS
    keep = [m for m in found if (m.is_dir() if want_dir else m.is_file()) or (m.is_symlink() and not m.exists())]
    return keep, root


def unmatched_paths(spec: SourceSpec) -> list[str]:
    """The `path` entries of a source that match nothing (see `_matches`)."""
    return [pattern for pattern in spec.paths if not _matches(spec, pattern)[0]]


def check_sources_match(specs: list[SourceSpec]) -> list[str]:
    """Refuse a source with a `path` that matches nothing, before any work; return the names of the optional
    sources that match nothing at all (an optional source's unmatched paths are logged as warnings).

    Raises:
        SourcesError: one line naming the sources file, the source and the path.
    """
    empty_optional = []
    for spec in specs:
        unmatched = unmatched_paths(spec)
        if unmatched and spec.optional:
            log.warning("optional source %r: %s match(es) nothing", spec.name, unmatched)
            if len(unmatched) == len(spec.paths):
                empty_optional.append(spec.name)
        elif unmatched:
            what = "folder" if spec.format in TREE_FORMATS else "file"
            expanded = _expand(spec, unmatched[0])[0]
            raise SourcesError(
                f"{spec.origin or spec.name}: path {unmatched[0]!r} matches no {what} ({expanded}); fix the path, "
                f"or set `optional = true` on the source to run without it"
            )
    return empty_optional


def resolve_paths(spec: SourceSpec) -> list[tuple[Path, str]]:
    """Expand a source's globs into sorted, de-duplicated `(path, location)` pairs.

    `location` is the path relative to the sources file's folder; for text that ships with Python or a
    package (`{stdlib}`, ...), relative to the pattern's fixed prefix, so that document ids do not depend
    on where Python or the venv is installed. Two files never share a location: on a clash the absolute
    path is used. A symlink whose target cannot be had (a loop, a missing target) is listed too, so that
    its reader quarantines it instead of it vanishing; nothing here reads a file or resolves a link.
    """
    found: dict[Path, str] = {}
    taken: set[str] = set()
    for pattern in spec.paths:
        matches, root = _matches(spec, pattern)
        for m in matches:
            if m in found:
                continue
            try:
                loc = m.relative_to(spec.base_dir).as_posix()
            except ValueError:
                loc = m.relative_to(root).as_posix() if m != root else m.name
            if loc in taken:
                loc = m.as_posix()
            taken.add(loc)
            found[m] = loc
    return sorted(found.items(), key=lambda pair: str(pair[0]))


def _as_tuple(value: object, where: str, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise SourcesError(f"{where}: '{key}' must be a string or a non-empty list of strings, got {value!r}")


_KNOWN_KEYS = {
    "name",
    "domain",
    "format",
    "path",
    "text_field",
    "license",
    "lang",
    "url_field",
    "include",
    "max_doc_bytes",
    "metadata_fields",
    "strip_front_matter",
    "optional",
    "variable",
}


def parse_source(entry: dict, base_dir: Path, where: str) -> SourceSpec:
    unknown = set(entry) - _KNOWN_KEYS
    if unknown:
        raise SourcesError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_KNOWN_KEYS)}")
    for key in ("name", "domain", "format", "path"):
        if key not in entry:
            raise SourcesError(f"{where}: missing required key '{key}'")
    name = entry["name"]
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise SourcesError(f"{where}: 'name' must match {_NAME_RE.pattern}, got {name!r}")
    where = f"{where} ({name})"
    if entry["domain"] not in DOMAINS:
        raise SourcesError(f"{where}: 'domain' must be one of {list(DOMAINS)}, got {entry['domain']!r}")
    if entry["format"] not in FORMATS:
        raise SourcesError(f"{where}: 'format' must be one of {list(FORMATS)}, got {entry['format']!r}")
    max_bytes = entry.get("max_doc_bytes", DEFAULT_MAX_DOC_BYTES)
    if not isinstance(max_bytes, int) or max_bytes <= 0:
        raise SourcesError(f"{where}: 'max_doc_bytes' must be a positive integer, got {max_bytes!r}")
    for key in ("strip_front_matter", "optional"):
        if not isinstance(entry.get(key, False), bool):
            raise SourcesError(f"{where}: '{key}' must be true or false, got {entry[key]!r}")
    for key in ("license", "lang", "url_field"):
        if key in entry and not isinstance(entry[key], str):
            raise SourcesError(f"{where}: '{key}' must be a string, got {entry[key]!r}")
    variable = entry.get("variable")
    if entry["format"] == "pystrings" and not (isinstance(variable, str) and variable.isidentifier()):
        raise SourcesError(
            f"{where}: format 'pystrings' needs 'variable', a Python name (e.g. \"sentences\"), got {variable!r}"
        )
    if entry["format"] != "pystrings" and variable is not None:
        raise SourcesError(f"{where}: 'variable' is only for format 'pystrings', not {entry['format']!r}")
    return SourceSpec(
        name=name,
        domain=entry["domain"],
        format=entry["format"],
        paths=_as_tuple(entry["path"], where, "path"),
        base_dir=base_dir,
        text_field=_as_tuple(entry.get("text_field", "text"), where, "text_field"),
        license=entry.get("license"),
        lang=entry.get("lang"),
        url_field=entry.get("url_field"),
        include=_as_tuple(entry.get("include", "**/*"), where, "include"),
        max_doc_bytes=max_bytes,
        strip_front_matter=entry.get("strip_front_matter", False),
        variable=variable,
        optional=entry.get("optional", False),
        origin=where,
        metadata_fields=_as_tuple(entry["metadata_fields"], where, "metadata_fields")
        if "metadata_fields" in entry
        else (),
    )


def load_sources(path: Path) -> list[SourceSpec]:
    """Parse and validate a sources file.

    Raises:
        SourcesError: the file is missing, not TOML, or an entry is wrong (the message says which).
    """
    path = Path(path)
    if not path.is_file():
        raise SourcesError(f"sources file {path} does not exist (pass --sources FILE)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SourcesError(f"{path}: not valid TOML: {e}") from e
    entries = data.get("source")
    if not isinstance(entries, list) or not entries:
        raise SourcesError(f"{path}: expected one or more [[source]] tables")
    specs = [parse_source(e, path.resolve().parent, f"{path}: [[source]] #{i + 1}") for i, e in enumerate(entries)]
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SourcesError(f"{path}: source names must be unique; repeated: {dupes}")
    return specs
