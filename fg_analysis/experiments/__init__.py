"""Experiments of the book: frozen dataclass configs with ``quick`` and ``paper`` presets, run through the cache.

One module per question of Flügel et al. (arXiv 2410.17764): :mod:`~fg_analysis.experiments.approximation`
(RQ1, approximation quality), :mod:`~fg_analysis.experiments.optimization` (RQ2, closed-form functions).

Scorecard convention: a module that checks claims of the paper defines
``scorecard_rows(preset="quick", *, device="cpu", cache=None) -> DataFrame`` with the columns
:data:`SCORECARD_COLUMNS`, running the same configs as its notebook (so the scorecard page reads the cache);
``notebooks/scorecard.ipynb`` collects the rows of every module in :data:`SCORECARD_MODULES` that has one.
"""

from __future__ import annotations

#: question (RQ1..RQ4), the claim, the paper's number, ours, whether it holds, how our setup differs
SCORECARD_COLUMNS = ("question", "claim", "paper", "ours", "holds", "setup")

#: modules searched (in this order) for ``scorecard_rows`` by the scorecard page
SCORECARD_MODULES = ("approximation", "optimization", "rq3", "rq4")


def claim(question: str, claim: str, paper: str, ours: str, holds: bool, setup: str = "") -> dict:
    """One scorecard row (a dict with the keys :data:`SCORECARD_COLUMNS`)."""
    return {"question": question, "claim": claim, "paper": paper, "ours": ours, "holds": bool(holds),
            "setup": setup}
