"""Run reports: what a person looks at to decide whether to trust a run.

- `report.data.collect(run_dir)` reads a finished run (funnel.json, the steps' `_STEP.json`, the DuckDB views)
  into one JSON-able dict, every excerpt passed through the project's PII and secret redactors;
- `report.html.build_report(run_dir)` writes it as one self-contained page, `<run>/report/index.html`, with
  inline SVG plots (no script, no CDN, no network);
- `report.artifacts.publish_artifacts(summary, layout)` publishes the same sections as Prefect markdown and
  table artifacts when called inside a flow run;
- `report.progress` has the console progress bars and the Prefect progress artifacts of long steps.

`python -m flows.report RUN_DIR` rebuilds the page of a finished run.
"""
