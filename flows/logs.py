"""Where Prefect's run records go: the Prefect API (so the UI shows them) and the run's log file, not the terminal.

Prefect logs every flow and task run through two loggers, `prefect.flow_runs` and `prefect.task_runs` (its
logging config gives them the API handler and lets them propagate to the root logger's console handler). A stage
maps one task per work unit, so the console handler alone prints ~2,000 "Task run ... Finished in state
Completed()" lines for the README's first command. `run_records_to_file` adds a file handler to both loggers and
stops them propagating to the console; `verbose=True` keeps the console too. Warnings and errors of every other
logger still reach the terminal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")
_FORMAT = "%(asctime)s.%(msecs)03d | %(levelname)-7s | %(name)s - %(message)s"
_FLOW_RUN_FORMAT = "%(asctime)s.%(msecs)03d | %(levelname)-7s | Flow run %(flow_run_name)r - %(message)s"
_TASK_RUN_FORMAT = "%(asctime)s.%(msecs)03d | %(levelname)-7s | Task run %(task_run_name)r - %(message)s"


@contextmanager
def run_records_to_file(log_file: Path, verbose: bool = False) -> Iterator[Path]:
    """Send Prefect's flow and task run records to `log_file` (appended) and the API, and to the terminal only
    when `verbose`; the loggers are as before on exit.

    Args:
        log_file: `RunLayout.prefect_log` of the run.
        verbose: also print every record on the terminal (Prefect's default).
    """
    import importlib

    from prefect.logging.formatters import PrefectFormatter

    # NOTE: Prefect configures its loggers (a dictConfig that replaces their handlers) when `prefect.main` is first
    # imported (`from prefect import flow` does it); if that came after the handler below was added, the handler
    # would be gone. The stage command imports its flow module only once the run has started (flows/stage.py).
    importlib.import_module("prefect.main")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(
        PrefectFormatter(_FORMAT, "%Y-%m-%d %H:%M:%S", flow_run_fmt=_FLOW_RUN_FORMAT, task_run_fmt=_TASK_RUN_FORMAT)
    )
    loggers = [logging.getLogger(name) for name in RUN_LOGGERS]
    saved = [logger.propagate for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.propagate = verbose
    try:
        yield log_file
    finally:
        for logger, propagate in zip(loggers, saved):
            logger.removeHandler(handler)
            logger.propagate = propagate
        handler.close()
