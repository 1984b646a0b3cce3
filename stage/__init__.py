"""A curriculum stage assembled from the step packages: its checked config tables (`config.py`) and its steps in
order (`run.py`). Free of Prefect: `flows/stage.py` runs it as a flow.

This floor stands on every step package (ingest, filters, dedup, synth, sharding, scoring) and on `pipeline/`,
the contract they share; nothing below it imports it.
"""
