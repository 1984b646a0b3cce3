"""The README's synthesis commands, verbatim, on the default stage and tokenizer (o200k_harmony): the pipeline a
test runs before it serves the exported model with the real vLLM engine (issue 23 item 1).

    paths = run_readme_stage_and_export(tmp_path)       # flows.stage general --train-steps 20, trainer.export_hf
    subprocess.run(readme_synth_command(paths, tmp_path / "reasoning", count=4), cwd=REPO_ROOT, env=paths.env)

Only `--out` (the commands' `runs/` folder, under the test's temporary folder) and `--limit` (records per source;
the stage's own flag for a quick look) are added to the README's command lines; the environment keeps Prefect's
state in the temporary folder too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO_ROOT

# The README's command lines after `.venv/bin/python` (the stage with the "Done when" step count).
README_STAGE = "-m flows.stage general --train-steps 20"
README_EXPORT = "-m trainer.export_hf"  # CHECKPOINT HF_DIR
README_SYNTH = "-m flows.synth"  # --from RUN_DIR --model HF_DIR --count N --out OUT_DIR


@dataclass(frozen=True)
class ReadmeSynthPaths:
    """What the README's commands wrote under one temporary folder.

    Args:
        general: the `general` stage run (`--from` of flows.synth).
        checkpoint: the trainer's checkpoint (`runs/general/train/checkpoint.pt`).
        hf: the exported Hugging Face folder (`--model` of flows.synth).
        env: the environment the commands ran with (Prefect state under the temporary folder).
    """

    general: Path
    checkpoint: Path
    hf: Path
    env: dict[str, str]


def readme_env(tmp: Path) -> dict[str, str]:
    """This process's environment without PREFECT_* settings, Prefect's home under `tmp` (no shared state)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp / "prefect-home"), PREFECT_LOGGING_LEVEL="WARNING")
    return env


def _run(cmd: list[str], env: dict[str, str], timeout_s: float) -> None:
    res = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)
    if res.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd[1:])} exited {res.returncode}:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
        )


def run_readme_stage_and_export(
    tmp: Path, limit: int | None = 25, train_steps: int | None = None, timeout_s: float = 900
) -> ReadmeSynthPaths:
    """Run the README's stage (with training) and export commands under `tmp`; return what they wrote.

    Args:
        tmp: a temporary folder; the run goes to `tmp/general`, the model to `tmp/general/hf`.
        limit: records read per source (`--limit`), None for every record of the embedded default sources.
        train_steps: `--train-steps` instead of the README's 20 (a step over o200k's 201,088-row output layer
            takes 5-15 s on two cores; the served model babbles either way).
        timeout_s: per command.
    """
    env = readme_env(tmp)
    general = tmp / "general"
    stage_args = README_STAGE.split()
    if train_steps is not None:
        stage_args[stage_args.index("--train-steps") + 1] = str(train_steps)
    stage = [sys.executable, *stage_args, "--out", str(general)]
    _run(stage + (["--limit", str(limit)] if limit is not None else []), env, timeout_s)
    checkpoint = general / "train" / "checkpoint.pt"
    hf = general / "hf"
    _run([sys.executable, *README_EXPORT.split(), str(checkpoint), str(hf)], env, timeout_s)
    return ReadmeSynthPaths(general=general, checkpoint=checkpoint, hf=hf, env=env)


def readme_synth_command(paths: ReadmeSynthPaths, out: Path, count: int = 4) -> list[str]:
    """The README's `python -m flows.synth` line on what `run_readme_stage_and_export` wrote, with a small count."""
    args = ["--from", str(paths.general), "--model", str(paths.hf), "--count", str(count), "--out", str(out)]
    return [sys.executable, *README_SYNTH.split(), *args]
