"""Benchmark of forward gradients against backpropagation: step time, peak memory, throughput (RQ4).

``python -m fg_analysis bench --quick|--full [--device auto] [--publish]`` measures, in one run (Flügel et al.,
RQ4 "What are the trade-offs of using multiple tangents?"):

1. training steps (gradient + SGD update) of BP, the package's fast path (:meth:`fg_analysis.estimator.
   ForwardGradient.step`, weight perturbation, vmapped forward mode), the public one-off path
   (:func:`fg_analysis.estimator.forward_gradient` + SGD), the reference implementation's per-tangent loop and
   activity perturbation (what RQ3 trains, forward and oracle JVPs), on FC nets and ResNet/ViT, with the bare
   primitives as a floor (:mod:`~fg_analysis.bench.steps`, timed round-robin by :mod:`~fg_analysis.bench.timing`);
2. peak memory against depth (:mod:`~fg_analysis.bench.memory`);
3. the approximation sweep, batched against a per-sample loop (:mod:`~fg_analysis.bench.approximation`);
4. what skipping zero-tangent products saves (:mod:`~fg_analysis.bench.zeros`).

The configs and presets are in :mod:`~fg_analysis.bench.config`; the tables, cost model, headline ratios,
targets and report in :mod:`~fg_analysis.bench.report`; :func:`run` stores the frame with its environment. The
chapter's data read from the stored records is in :mod:`fg_analysis.experiments.rq4`.

References:
    Flügel, Coquelin, Weiel, Debus, Streit, Götz. Beyond Backpropagation: Optimization with Multi-Tangent
    Forward Gradients. arXiv:2410.17764. Baydin, Pearlmutter, Syme, Wood, Torr. Gradients without
    Backpropagation. arXiv:2202.08587.
"""

from fg_analysis.bench.approximation import approximation_cosines, benchmark_approximation
from fg_analysis.bench.cli import main
from fg_analysis.bench.config import PAPER_SOTA, PRESETS, TINY_SOTA, BenchConfig, ModelSpec, fc
from fg_analysis.bench.memory import MALLOC_ENV, benchmark_memory, measure_memory, memory_in_subprocess
from fg_analysis.bench.report import (
                                      FAST_PATH_TARGETS,
                                      GPU_TARGETS,
                                      TARGETS,
                                      cost_models,
                                      floor_table,
                                      format_report,
                                      phase_table,
                                      step_table,
                                      summary,
                                      summary_rows,
                                      targets_for,
)
from fg_analysis.bench.run import compute, run
from fg_analysis.bench.steps import (
                                      ACTIVITY_METHODS,
                                      BP_PHASES,
                                      FG_PHASES,
                                      FLOOR_PHASES,
                                      JVP_METHODS,
                                      benchmark_steps,
                                      flat_parameters,
                                      make_activity_step,
                                      make_bp_step,
                                      make_fg_step,
                                      make_floor_step,
                                      make_oneoff_step,
                                      make_reference_loop_step,
                                      random_batch,
)
from fg_analysis.bench.timing import sync, time_round_robin
from fg_analysis.bench.zeros import ZERO_TANGENT_CASES, benchmark_zero_tangents

__all__ = ["ACTIVITY_METHODS", "BP_PHASES", "FAST_PATH_TARGETS", "FG_PHASES", "FLOOR_PHASES", "GPU_TARGETS",
           "JVP_METHODS", "MALLOC_ENV", "PAPER_SOTA", "PRESETS", "TARGETS", "TINY_SOTA", "ZERO_TANGENT_CASES",
           "BenchConfig", "ModelSpec", "approximation_cosines", "benchmark_approximation", "benchmark_memory",
           "benchmark_steps", "benchmark_zero_tangents", "compute", "cost_models", "fc", "flat_parameters",
           "floor_table", "format_report", "main", "make_activity_step", "make_bp_step", "make_fg_step", "make_floor_step",
           "make_oneoff_step", "make_reference_loop_step", "measure_memory", "memory_in_subprocess", "phase_table",
           "random_batch", "run", "step_table", "summary", "summary_rows", "sync", "targets_for",
           "time_round_robin"]
