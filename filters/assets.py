"""Alias of `core.assets` (the asset registry moved there): `python -m filters.assets --check` keeps working for
scripts/bootstrap.sh, and `from filters.assets import asset_path` for existing callers."""

from __future__ import annotations

import sys

from core.assets import _VERIFIED, ASSETS, BOOTSTRAP_HINT, Asset, AssetError, asset_path, check_all, main

__all__ = ["ASSETS", "BOOTSTRAP_HINT", "Asset", "AssetError", "_VERIFIED", "asset_path", "check_all", "main"]

if __name__ == "__main__":
    sys.exit(main())
