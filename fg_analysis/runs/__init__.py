"""Running experiments: the results cache (:mod:`~fg_analysis.runs.cache`), sweeps over units on an executor
(:mod:`~fg_analysis.runs.sweep`), the environment and device of a run (:mod:`~fg_analysis.runs.env`), the shared
command-line options (:mod:`~fg_analysis.runs.cli`) and the repository's paths (:mod:`~fg_analysis.runs.paths`).

Layer 1: it imports the engine (the top-level modules) only.
"""
