"""Prefect flows: thin orchestration over the plain step functions in `pipeline/`."""

import os

# No network at run time: keep Prefect's temporary server from trying to send telemetry.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
