"""Benchmark formats, metrics, OpenS2V normalisation/TotalScore and IPVG submissions.

Importing this package is cheap: torch, transformers, OpenCV, dlib and PyAV are imported
inside the functions that need them, so the Dagster code location stays light.

Modules: ``benchmarks`` (readers), ``total_score`` (OpenS2V normalisation, TotalScore), ``metrics``
(metric backends), ``submission`` (IPVG layout and validation), ``packaging`` (zips and
run manifest), ``video`` (decode/probe/write), ``cli`` (``reactid submission``);
the evaluation stages: ``demo_benchmarks`` (the demo sets), ``registry`` (named
model exports), ``generation`` (videos per entry), ``benchmark_scores`` (per-video metrics,
score cards), ``leaderboard`` / ``leaderboard_plots``, ``ipvg_runs`` (submission zips) and
``stages`` (their StageSpecs for Dagster and ``reactid eval-stage``).
"""
