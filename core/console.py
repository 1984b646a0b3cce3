"""What a person sees on the terminal while a command works.

A live bar (tqdm) only on an interactive terminal; everywhere else (CI, a pipe, a log file) no bar, and each
finished piece of work says so in one plain line. `CI` or `CORPUSFORGE_NO_PROGRESS` in the environment turn the
bars off on a terminal too.
"""

from __future__ import annotations

import os
import sys
from typing import IO


def console_enabled(stream: IO[str] | None = None) -> bool:
    """Live bars only on an interactive terminal, never in CI (`CI` set) or with `CORPUSFORGE_NO_PROGRESS` set."""
    stream = stream or sys.stderr
    if os.environ.get("CI") or os.environ.get("CORPUSFORGE_NO_PROGRESS"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def say(line: str, stream: IO[str] | None = None) -> None:
    """One line for a person (stderr by default), written straight to the stream: inside a Prefect flow with
    `log_prints=True` a `print` would become a run log record instead."""
    stream = stream or sys.stderr
    stream.write(line + "\n")
    stream.flush()
