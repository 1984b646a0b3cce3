"""Proxy-model ablations (issue 21): train the bundled MoE on each candidate corpus under one token budget and
score it, so that a filter, a threshold or a mixture is judged by the model it makes (FineWeb's and DCLM's method).

- `config.py`: `AblationConfig`, checked when built (candidates, budget, proxy config, evaluation sets, seeds,
  the search).
- `corpus.py`: a candidate's documents read back from its shards, the held-out split, the proxy tokenizer
  (`utf8_bytes`, or a sharding tokenizer) and the proxy's training shards.
- `mixtures.py`: `--mixtures FILE`, named mixtures over one run's domains and sources (checked when loaded), each
  sampled the way a stage realises its `[mixture]`; the run's held-out slices per domain.
- `search.py`: `--search K`, RegMix: Dirichlet draws, a ridge fit from shares to held-out bits per byte, the
  proposed `[mixture]` table (`mixture.toml`) and the fit (`search.json`).
- `evalsets.py`: the items of the evaluation sets that ship in pip packages, as bits-per-byte texts and
  multiple-choice questions.
- `score.py`: bits per byte and log-likelihood multiple choice (as lm-evaluation-harness scores them).
- `run.py`: `run_ablation`, every candidate x seed trained (`trainer.train.train_from_manifest`) and scored,
  `results.parquet` and `curves.parquet` written.

Nothing here imports Prefect; `python -m flows.ablate` is the command line and the flow, `report/ablation.py`
the page.
"""
