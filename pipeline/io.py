"""Moved to `core/io.py`. Kept only for `filters/step.py`, which imports `file_sha256` from here: delete this
module once that import names `core.io`."""

from core.io import file_sha256

__all__ = ["file_sha256"]
