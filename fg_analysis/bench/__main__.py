"""``python -m fg_analysis.bench``: the same as ``python -m fg_analysis bench`` (:mod:`fg_analysis.bench.cli`)."""

import sys

from fg_analysis.bench.cli import main
from fg_analysis.runs.cli import run_main

sys.exit(run_main(main))
