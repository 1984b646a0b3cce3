"""Code trees: the files of a tree a reader looks at (links held inside the tree, never followed), the tree's
license from its LICENSE file, and one document per source file.

Nothing here executes or imports what it reads.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from ingest.records import Record, make_doc, quarantine, read_file_text
from ingest.sources import SourceSpec
from schemas import QuarantineRecord

# File extension -> programming language, for code trees (the languages The Stack v2 weighs most).
CODE_EXTENSIONS = {
    ".py": "Python",
    ".pyi": "Python",
    ".c": "C",
    ".h": "C",
    ".cc": "C++",
    ".cpp": "C++",
    ".cxx": "C++",
    ".hpp": "C++",
    ".hh": "C++",
    ".js": "JavaScript",
    ".mjs": "JavaScript",
    ".cjs": "JavaScript",
    ".ts": "TypeScript",
    ".tsx": "TypeScript",
    ".rs": "Rust",
    ".go": "Go",
    ".java": "Java",
    ".rb": "Ruby",
    ".kt": "Kotlin",
    ".scala": "Scala",
    ".swift": "Swift",
    ".cs": "C#",
    ".php": "PHP",
    ".sh": "Shell",
    ".lua": "Lua",
    ".r": "R",
    ".jl": "Julia",
    ".hs": "Haskell",
    ".ml": "OCaml",
    ".sql": "SQL",
    ".tex": "TeX",
    ".md": "Markdown",
    ".rst": "reStructuredText",
    ".toml": "TOML",
    ".yaml": "YAML",
    ".yml": "YAML",
    ".json": "JSON",
    ".html": "HTML",
    ".css": "CSS",
}

LICENSE_FILE_NAMES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "COPYING", "COPYING.txt", "LICENSE-MIT")

# (SPDX id, patterns that must all appear), most specific first.
LICENSE_PATTERNS: list[tuple[str, tuple[str, ...]]] = [
    ("PSF-2.0", ("PYTHON SOFTWARE FOUNDATION LICENSE",)),
    ("Apache-2.0", ("Apache License", "Version 2.0")),
    ("MIT", ("Permission is hereby granted, free of charge",)),
    ("BSD-3-Clause", ("Redistribution and use in source and binary forms", "Neither the name")),
    ("BSD-2-Clause", ("Redistribution and use in source and binary forms",)),
    ("LGPL-3.0", ("GNU LESSER GENERAL PUBLIC LICENSE", "Version 3")),
    ("LGPL-2.1", ("GNU LESSER GENERAL PUBLIC LICENSE", "Version 2.1")),
    ("GPL-3.0", ("GNU GENERAL PUBLIC LICENSE", "Version 3")),
    ("GPL-2.0", ("GNU GENERAL PUBLIC LICENSE", "Version 2")),
    ("AGPL-3.0", ("GNU AFFERO GENERAL PUBLIC LICENSE",)),
    ("MPL-2.0", ("Mozilla Public License", "2.0")),
    ("Unlicense", ("This is free and unencumbered software released into the public domain",)),
    ("Zlib", ("provided 'as-is'", "must not be misrepresented")),
]


def detect_license(text: str) -> str | None:
    """SPDX id of a LICENSE file's text, or None when no known template matches."""
    flat = re.sub(r"\s+", " ", text)
    for spdx, needles in LICENSE_PATTERNS:
        if all(n.lower() in flat.lower() for n in needles):
            return spdx
    return None


def tree_license(spec: SourceSpec, root: Path) -> tuple[str | None, str]:
    """License of a tree from its LICENSE file, else the sources file's `license`."""
    for name in LICENSE_FILE_NAMES:
        candidate = root / name
        if candidate.is_file() and not candidate.is_symlink():
            spdx = detect_license(candidate.read_text(encoding="utf-8", errors="replace"))
            if spdx:
                return spdx, f"{name} file"
            return spec.license or "LicenseRef-unknown", f"{name} file (unrecognised)"
    return spec.license, "sources file"


def _included(spec: SourceSpec, rel: str) -> bool:
    # fnmatch's * crosses '/', so "pkg/**/*.py" also needs its "pkg/*.py" form for top-level files.
    return any(fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(rel, pat.replace("**/", "")) for pat in spec.include)


def confined(path: Path, root: Path, outside: str) -> Path | tuple[str, str]:
    """`path` fully resolved when it stays inside `root` (a path without links, compared as it is), else
    (reason, detail); reads no byte of it.

    Reasons: `outside` (it resolves outside the root), `symlink_loop`, `unreadable_file` (a missing
    link target, a permission error on the way).
    """
    try:
        real = Path(os.path.realpath(path, strict=True))
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symlink_loop", f"{type(e).__name__}: {e}"
        return "unreadable_file", f"{type(e).__name__}: {e}"
    if not real.is_relative_to(root):
        return outside, f"resolves to {real}, outside the root {root}"
    return real


class _TreeEntry(NamedTuple):
    rel: str  # path inside the tree
    path: Path  # the file (or, with a problem, the directory entry)
    problem: tuple[str, str] | None  # (reason, detail) when the entry is refused or unreadable


def tree_entries(spec: SourceSpec, root: Path) -> Iterator[_TreeEntry]:
    """Every entry of a code tree the reader looks at, in reading order: the files with a known extension
    that `include` selects, links that leave the tree or loop, and directories that cannot be listed.

    Links are never descended; a link is only read when it resolves to a file inside the tree.
    """
    walk_errors: list[OSError] = []  # unreadable directories are quarantined, never skipped silently
    # The tree's real folder: `_check_path` has already held the tree itself to its source's root.
    real_root = Path(os.path.realpath(root))

    def error_entry(err: OSError) -> _TreeEntry:
        where = Path(err.filename).relative_to(root).as_posix() if err.filename else "?"
        return _TreeEntry(where, Path(err.filename or root), ("unreadable_file", f"{type(err).__name__}: {err}"))

    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=walk_errors.append):
        while walk_errors:
            yield error_entry(walk_errors.pop(0))
        dirnames.sort()
        here = Path(dirpath)
        for d in list(dirnames):
            if (here / d).is_symlink():
                dirnames.remove(d)  # never descend through a link
                checked = confined(here / d, real_root, "symlink_outside_tree")
                if isinstance(checked, tuple):
                    yield _TreeEntry((here / d).relative_to(root).as_posix(), here / d, checked)
        for name in sorted(filenames):
            path = here / name
            rel = path.relative_to(root).as_posix()
            if path.suffix.lower() not in CODE_EXTENSIONS or not _included(spec, rel):
                continue
            if path.is_symlink():  # a loop or a link out of the tree is refused before any byte is read
                checked = confined(path, real_root, "symlink_outside_tree")
                if isinstance(checked, tuple) and checked[0] != "unreadable_file":
                    yield _TreeEntry(rel, path, checked)
                    continue
            yield _TreeEntry(rel, path, None)  # (a missing link target: the reader says unreadable_file)
    for err in walk_errors:  # an error on the last directory walked
        yield error_entry(err)


def read_code_tree(spec: SourceSpec, root: Path, tree: str) -> Iterator[Record]:
    """One document per source file of a tree, language from the extension, license from LICENSE.

    Symlinks that leave the tree or loop are refused (quarantined), never followed; files with NUL bytes
    are quarantined as binary. Nothing is imported or executed.
    """
    license_id, license_from = tree_license(spec, root)
    for item in tree_texts(spec, root, tree):
        if isinstance(item, QuarantineRecord):
            yield item
            continue
        location, path, text = item
        meta = {"language": CODE_EXTENSIONS[path.suffix.lower()], "license_from": license_from}
        yield make_doc(spec, location, text, path=location, license=license_id, metadata=meta)


def tree_texts(
    spec: SourceSpec,
    root: Path,
    tree: str,
    suffixes: tuple[str, ...] | None = None,
) -> Iterator[tuple[str, Path, str] | QuarantineRecord]:
    """(location, path, text) of every file of a tree its reader looks at (only `suffixes` when given), or the
    quarantine row of an entry that is refused or unreadable."""
    for entry in tree_entries(spec, root):
        location = f"{tree}/{entry.rel}"
        if entry.problem:
            yield quarantine(spec, location, entry.problem[0], detail=entry.problem[1])
            continue
        if suffixes is not None and entry.path.suffix not in suffixes:
            continue
        text = read_file_text(spec, entry.path, location)
        yield text if isinstance(text, QuarantineRecord) else (location, entry.path, text)
