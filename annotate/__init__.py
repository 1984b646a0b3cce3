"""LLM annotation of a finished corpus (issue 20), Prefect-free: a stratified sample labelled by a model through the
synth engine with versioned rubrics.

- `sample.py`: the seeded, stratified sample (domain, language, source) of a run's corpus.
- `rubrics.py` + `rubrics/*.toml`: the rubric templates (synth templates whose JSON output holds a `label`).
- `run.py`: `annotate`: sample -> requests -> vLLM servers (synth.run.generate: server guard, fleet, journal and
  resume, provenance) -> `annotations/<rubric>.parquet`.
- `config.py`: the `[annotate]` table of a `--config` file.

`python -m flows.annotate` is the command line; `flows.query --out OUT_DIR` has the `annotations` view.
"""
