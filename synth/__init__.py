"""Synthetic documents: seeds from a stage's corpus, versioned prompt templates, answers from vLLM servers.

`seeds.py` samples the seed documents reproducibly; `templates.py` loads the prompts of `templates/*.toml` and
checks each generation against its template's JSON schema; `server.py` starts local vLLM servers from their own
environment (`.venv-engine`, never imported here) and always stops them; `client.py` spreads requests over N
servers with failover; `run.py` is `generate` (under `python -m flows.synth`) and `step.py` the synth step of a
stage's `[synth]` table, with its journal. The documents it writes go through the same filters and dedup as
every other source.
"""
