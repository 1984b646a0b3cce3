"""One checker for config tables: each TOML value against the Python type of the field or argument it fills.

Every table of a stage file (and of a trainer file) fills a dataclass or a constructor whose type hints say what
each key takes; `check_table` checks a parsed table against those hints before anything is built, so a wrong
type is one line naming the table, the key and the value instead of a `TypeError` from deep inside the work::

    check_table("stage.toml: [shards]", {"seq_len": "1024"}, type_hints_of(ShardsConfig), ConfigError)
    # ConfigError: stage.toml: [shards] seq_len = '1024': expected an integer

A TOML value fits a hint as follows: `bool` only true/false (TOML keeps them apart, and Python's `True == 1`
would let `seq_len = true` through); `int` an integer; `float` a number (an integer too: `max_repeats = 4`);
`str` and `Path` a string; a sequence (`list[X]`, `tuple[X, ...]`, `Sequence[X]`, `Iterable[X]`) an array of
X; `tuple[A, B]` an array of exactly an A and a B; `dict[str, V]` / `Mapping[str, V]` a table of V; a dataclass a
table of its fields; `X | None` an X (TOML has no null); `Literal[...]` one of the values. A hint the checker does
not know (a class, `Any`) accepts anything: the constructor decides.
"""

from __future__ import annotations

import collections.abc as abc
import dataclasses
import inspect
import types
import typing
from pathlib import PurePath
from typing import Any

_SEQUENCES = (list, tuple, set, frozenset, abc.Sequence, abc.Iterable, abc.Collection, abc.Set, abc.MutableSequence)
_MAPPINGS = (dict, abc.Mapping, abc.MutableMapping)


class _Mismatch(Exception):
    """A value (at `path` below the key) that does not fit; `expected` says what would."""

    def __init__(self, path: str, value: Any, expected: str) -> None:
        self.path, self.value, self.expected = path, value, expected


def describe(hint: Any) -> str:
    """A hint in words, as the error message says what a key takes."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in args if a is not type(None))
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is str:
        return "a string"
    if isinstance(hint, type) and issubclass(hint, PurePath):
        return "a path (string)"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is tuple and args and args[-1] is not Ellipsis:
        return f"an array of {len(args)} ({', '.join(describe(a) for a in args)})"
    if origin in _SEQUENCES or hint in _SEQUENCES:
        return f"an array of {_plural(args[0])}" if args else "an array"
    if origin in _MAPPINGS or hint in _MAPPINGS:
        return f"a table of {_plural(args[1])}" if len(args) == 2 and args[1] is not Any else "a table"
    if dataclasses.is_dataclass(hint):
        return "a table"
    return getattr(hint, "__name__", str(hint))


def _plural(hint: Any) -> str:
    return {bool: "true/false", int: "integers", float: "numbers", str: "strings"}.get(hint, f"({describe(hint)})")


def _check(value: Any, hint: Any, path: str) -> None:
    """Raise _Mismatch unless `value` (parsed TOML) fits `hint` (see the module docstring)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in args if a is not type(None)]
        errors = []
        for arm in arms:
            try:
                return _check(value, arm, path)
            except _Mismatch as e:
                errors.append(e)
        if len(arms) == 1:
            raise errors[0]  # `X | None`: the error inside X names the deeper path
        raise _Mismatch(path, value, describe(hint))
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif hint is str or (isinstance(hint, type) and issubclass(hint, PurePath)):
        ok = isinstance(value, str)
    elif origin is typing.Literal:
        ok = any(value == a and type(value) is type(a) for a in args)
    elif origin is tuple and args and args[-1] is not Ellipsis:
        if not isinstance(value, list) or len(value) != len(args):
            raise _Mismatch(path, value, describe(hint))
        for i, (item, arm) in enumerate(zip(value, args)):
            _check(item, arm, f"{path}[{i}]")
        return
    elif origin in _SEQUENCES or hint in _SEQUENCES:
        if not isinstance(value, list):
            raise _Mismatch(path, value, describe(hint))
        for i, item in enumerate(value):
            _check(item, args[0] if args else Any, f"{path}[{i}]")
        return
    elif origin in _MAPPINGS or hint in _MAPPINGS:
        if not isinstance(value, dict):
            raise _Mismatch(path, value, describe(hint))
        for key, item in value.items():
            _check(item, args[1] if len(args) == 2 else Any, f"{path}.{key}")
        return
    elif dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, dict):
            raise _Mismatch(path, value, describe(hint))
        hints = type_hints_of(hint)
        for key, item in value.items():
            if key not in hints:
                raise _Mismatch(f"{path}.{key}", item, f"a known key ({', '.join(sorted(hints))})")
            _check(item, hints[key], f"{path}.{key}")
        return
    else:
        return  # Any, a class: the constructor decides
    if not ok:
        raise _Mismatch(path, value, describe(hint))


def type_mismatch(key: str, value: Any, hint: Any) -> str | None:
    """`"<key>[.sub] = <value>: expected <what>"` when `value` does not fit `hint`, else None."""
    try:
        _check(value, hint, key)
    except _Mismatch as e:
        return f"{e.path} = {e.value!r}: expected {e.expected}"
    return None


def type_hints_of(target: Any) -> dict[str, Any]:
    """Field name -> resolved type hint of a dataclass, or parameter name -> hint of a class's `__init__` or a
    function (string annotations, as `from __future__ import annotations` leaves them, resolved)."""
    if dataclasses.is_dataclass(target) and isinstance(target, type):
        hints = typing.get_type_hints(target)
        return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(target)}
    func = target.__init__ if isinstance(target, type) else target
    hints = typing.get_type_hints(func)
    params = inspect.signature(target).parameters
    return {name: hints.get(name, Any) for name in params if name != "self"}


def check_table(
    where: str,
    table: dict[str, Any],
    hints: dict[str, Any],
    error: type[Exception] = ValueError,
    skip: tuple[str, ...] = (),
) -> None:
    """Raise `error("<where> <key> = <value>: ...")` for the first unknown key or wrongly typed value.

    Args:
        where: "<file>: [table]" (or "[table]" when the caller adds the file).
        table: the parsed TOML table.
        hints: key -> type hint (`type_hints_of` a dataclass or constructor); only these keys are allowed.
        error: the exception class the caller's command turns into a one-line error.
        skip: keys the caller checks itself.
    """
    for key, value in table.items():
        if key in skip:
            continue
        if key not in hints:
            raise error(
                f"{where} {key} = {value!r}: unknown key; allowed: {sorted(k for k in hints if k not in skip)}"
            )
        problem = type_mismatch(key, value, hints[key])
        if problem:
            raise error(f"{where} {problem}")
