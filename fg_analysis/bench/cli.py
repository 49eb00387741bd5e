"""``python -m fg_analysis bench --quick|--full [--device auto] [--threads N] [--cached] [--publish]``.

Prints the report (:func:`fg_analysis.bench.report.format_report`), the fitted cost model and, as the last line,
the JSON of :func:`fg_analysis.bench.report.summary`. Bad flags, an unknown device, ``--device cuda`` without a GPU
and bad thread counts are one-line errors naming the flag (:class:`fg_analysis.runs.cli.OneLineParser`).
"""

from __future__ import annotations

import json

from fg_analysis.bench.config import BenchConfig
from fg_analysis.bench.report import cost_models, format_report, summary
from fg_analysis.bench.run import run
from fg_analysis.runs.cache import ResultsCache
from fg_analysis.runs.cli import OneLineParser, positive_count
from fg_analysis.runs.paths import PUBLISHED

__all__ = ["build_parser", "main"]


def build_parser() -> OneLineParser:
    """The command's parser.

    Returns:
        An :class:`fg_analysis.runs.cli.OneLineParser`.
    """
    parser = OneLineParser(prog="python -m fg_analysis bench",
                           description="Time and memory of forward gradients against backpropagation (RQ4).")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="the quick preset (default)")
    size.add_argument("--full", action="store_true", help="the paper-sized preset (FC-256/1024/4096, k to 64, "
                      "ResNet-18, ViT, depths 2..32 at batch 4096)")
    parser.add_argument("--device", default="auto", help="'auto' (CUDA if available; default), 'cpu', 'cuda' or "
                        "'cuda:N'")
    parser.add_argument("--threads", type=positive_count, default=None,
                        help="torch CPU threads during the run (default: 1 on a CPU, torch's default on a GPU)")
    parser.add_argument("--cached", action="store_true", help="reuse a stored result of this config and machine")
    parser.add_argument("--publish", action="store_true",
                        help="store the result in results/published (committed, read by the book)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; see the module docstring.

    Returns:
        The exit status (0).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    overrides = {} if args.threads is None else {"threads": args.threads}
    try:
        config = BenchConfig.from_preset("paper" if args.full else "quick", device=args.device, **overrides)
    except ValueError as error:
        parser.error(f"--device: {error}")
    cache = ResultsCache(PUBLISHED, published=None) if args.publish else ResultsCache()
    frame = run(config, cache=cache, refresh=not args.cached, progress=not args.no_progress)
    result = summary(frame, reference_model=config.reference_model, fit_ks=config.fit_ks)
    print(f"benchmark preset={config.preset} on {config.machine}")
    print(format_report(frame, result))
    models = cost_models(frame, config.fit_ks, config.reference_model)
    if models:
        print("\nCost model T(k) = fixed + per_tangent*k + quadratic*n*k^2 (fitted on k in "
              f"{config.fit_ks}, {config.reference_model}, n = {models['n']}, "
              f"T_BP = {1000 * models['bp_seconds']:.2f} ms):")
        for aggregator in ("projection", "mean"):
            m = models.get(aggregator, {})
            if "fixed_s" in m:
                print(f"  {aggregator}: fixed {1000 * m['fixed_s']:.2f} ms, per tangent {1000 * m['per_tangent_s']:.2f} "
                      f"ms, quadratic {m['quadratic_s']:.3g} s; held-out k {m['held_out_ks']}: max |error| "
                      f"{100 * m['held_out_max_abs_error']:.1f}%; break-even k vs BP {m['break_even_k']:.2f}; "
                      f"k of most descent per second {m['optimal_k']}")
    print(json.dumps(result, default=str))
    return 0
