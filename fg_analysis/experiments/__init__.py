"""Experiments of the book: frozen dataclass configs with ``quick`` and ``paper`` presets, run through the cache.

One module per question of Flügel et al. (arXiv 2410.17764): :mod:`~fg_analysis.experiments.approximation`
(RQ1, approximation quality), :mod:`~fg_analysis.experiments.optimization` (RQ2, closed-form functions),
:mod:`~fg_analysis.experiments.rq3` (RQ3, networks), :mod:`~fg_analysis.experiments.rq4` (RQ4, trade-offs).

Scorecard convention: a module that checks claims defines
``scorecard_rows(preset="quick", *, device="cpu", cache=None, seed=0) -> DataFrame`` with the columns
:data:`SCORECARD_COLUMNS` (rows made by :func:`claim`), running the same configs as its notebook (so the
scorecard page reads the cache); ``notebooks/scorecard.ipynb`` collects the rows of every module in
:data:`SCORECARD_MODULES` that has one.

A row's ``verdict`` is one of :data:`fg_analysis.metrics.VERDICTS`: ``"holds"``, ``"does not hold"`` or
``"inconclusive"`` (overlapping confidence intervals, values below numerical resolution, runs that did not
learn); :func:`fg_analysis.metrics.compare` makes it from two means and their intervals.
"""

from __future__ import annotations

from fg_analysis.metrics import verdict as _verdict

#: question (RQ1..RQ4); the claim; who made it ("paper", or the other work, e.g. "Baydin et al."); the
#: paper's number; ours; the verdict; how our setup differs; the page section the row comes from
#: (``"page#anchor"``); the stored record it rests on ("" for a live run of this build). ``holds`` (verdict ==
#: "holds", a bool) is kept while the modules and their tests still read it; the scorecard page uses ``verdict``.
SCORECARD_COLUMNS = ("question", "claim", "source", "paper", "ours", "verdict", "setup", "section", "record",
                     "holds")

#: modules searched (in this order) for ``scorecard_rows`` by the scorecard page
SCORECARD_MODULES = ("approximation", "optimization", "rq3", "rq4")

#: the page of each question, for rows that name no section
QUESTION_PAGES = {"RQ1": "rq1_approximation", "RQ2": "rq2_optimization", "RQ3": "rq3_networks",
                  "RQ4": "rq4_tradeoffs"}


def claim(question: str, claim: str, paper: str, ours: str, verdict, setup: str = "", *,
          source: str = "paper", section: str = "", record: str = "") -> dict:
    """One scorecard row (a dict with the keys :data:`SCORECARD_COLUMNS`).

    ``verdict`` is ``"holds"``, ``"does not hold"`` or ``"inconclusive"``; a bool is still accepted
    (``True`` → holds, ``False`` → does not hold) until every module decides through
    :func:`fg_analysis.metrics.compare`. ``source`` names who made the claim (``"paper"`` for Flügel et al.,
    else the other work); ``section`` is the page and anchor it comes from (default: the question's page).

    >>> claim("RQ1", "more tangents help", "yes", "0.49", True)["verdict"]
    'holds'
    """
    return {"question": question, "claim": claim, "source": source, "paper": paper, "ours": ours,
            "verdict": _verdict(verdict), "setup": setup, "section": section or QUESTION_PAGES.get(question, ""),
            "record": record, "holds": _verdict(verdict) == "holds"}
