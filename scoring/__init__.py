"""Model-based judgements of documents (issue 20), Prefect-free and below the step packages.

- `texts.py`: the labelled texts a classifier learns from (sources files or finished stage runs) and the one
  line of text fastText reads, shared by training and scoring;
- `metrics.py`: held-out accuracy, ROC AUC and Spearman (ordinal labels), overall and per language;
- `train.py`: DCLM's recipe, a fastText supervised classifier with word bigrams, trained reproducibly
  (fixed seed, one thread) into `CLS_DIR/model.bin` with its `card.json` (`card.py`);
- `encoder.py`, `embedding.py`: FineWeb-Edu's recipe, frozen all-MiniLM-L6-v2 embeddings (a pip-shipped asset,
  unpacked into `models/built`) and a linear head (logistic, or ridge for ordinal labels) in `CLS_DIR/head.json`;
- `scorer.py`: a trained classifier loaded from its folder (by its card's kind), scoring batches of texts;
- `config.py`: the `[scorers.<name>]` table of a stage file (model, mode, thresholds per domain and language).

The filter chain runs scorers through `filters/scorer.py`; `python -m flows.classify` is the command line.
"""
