"""The `[annotate]` table of `python -m flows.annotate --config FILE`, checked when built.

```toml
[annotate]
rubric = "educational_value"   # a name in annotate/rubrics, or a .toml path (relative to this file)
model = "../models/built/SmolLM2-135M-Instruct"   # a Hugging Face folder (relative to this file)
count = 600                    # documents to label
seed = 0                       # the sample, the request keys and the sampling seeds
servers = []                   # running vLLM servers; empty: start num_local_servers for the run
num_local_servers = 1
max_concurrency = 8            # requests in flight per server
sampling = { max_tokens = 160 }              # request-body overrides over the rubric's own sampling
server = { max_model_len = 2048, kv_cache_gib = 1 }   # local servers (synth.server.EngineServer arguments)
```

Command-line flags override the file. Every key is checked against its type (core/config_types.py) before any
work; a wrong one is one line naming the file, key and value (exit 2).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.config_types import check_table, type_hints_of, type_mismatch
from core.stage_files import ConfigError

# Local server settings a config may set (the rest of EngineServer's arguments belong to the run).
SERVER_KEYS = ("max_model_len", "dtype", "kv_cache_gib", "enforce_eager", "extra_args", "start_timeout_s")


@dataclass(frozen=True)
class AnnotateConfig:
    """What one annotation run does; see the module docstring for the keys."""

    rubric: str | None = None
    model: Path | None = None
    count: int = 100
    seed: int = 0
    servers: tuple[str, ...] = ()
    num_local_servers: int = 1
    max_concurrency: int = 8
    sampling: dict[str, Any] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in ("count", "num_local_servers", "max_concurrency"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} = {getattr(self, key)!r}: must be >= 1")
        if self.seed < 0:
            raise ConfigError(f"seed = {self.seed!r}: must be >= 0")
        for url in self.servers:
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"servers: {url!r} is not a base URL such as http://127.0.0.1:8000")
        for key in ("prompt", "model", "n", "stream"):
            if key in self.sampling:
                raise ConfigError(f"sampling.{key}: set by the run, not a sampling parameter")

    @classmethod
    def from_table(cls, where: str, table: dict[str, Any], base_dir: Path) -> AnnotateConfig:
        """Check `table` (an `[annotate]` table) and build the config; relative paths hang from `base_dir`.

        Raises:
            ConfigError: an unknown key, a value of the wrong type or out of range; the message names `where`.
        """
        check_table(where, table, type_hints_of(cls), ConfigError)
        from synth.server import EngineServer

        server_hints = type_hints_of(EngineServer)
        for key, value in table.get("server", {}).items():
            if key not in SERVER_KEYS:
                raise ConfigError(f"{where} server.{key}: unknown key; allowed: {list(SERVER_KEYS)}")
            problem = type_mismatch(f"server.{key}", value, server_hints[key])
            if problem:
                raise ConfigError(f"{where} {problem}")
        values = dict(table)
        if "model" in values:
            values["model"] = (base_dir / values["model"]).resolve()
        if str(values.get("rubric", "")).endswith(".toml"):
            values["rubric"] = str((base_dir / values["rubric"]).resolve())
        if "servers" in values:
            values["servers"] = tuple(values["servers"])
        try:
            return cls(**values)
        except ConfigError as e:
            raise ConfigError(f"{where} {e}") from e

    def with_overrides(self, **overrides: Any) -> AnnotateConfig:
        """This config with the command line's values (None: not given) over it, checked again."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def load_annotate_config(path: Path | None) -> AnnotateConfig:
    """The `[annotate]` table of `path` (no file: the defaults).

    Raises:
        ConfigError: an unreadable file, other tables than `[annotate]`, or a bad key or value.
    """
    if path is None:
        return AnnotateConfig()
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from e
    extra = sorted(set(raw) - {"annotate"})
    if extra:
        raise ConfigError(f"{path}: unknown tables {extra}; an annotation config holds one [annotate] table")
    return AnnotateConfig.from_table(f"{path}: [annotate]", raw.get("annotate", {}), Path(path).resolve().parent)
