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
``"inconclusive"``. It is made from means and their t-based 95% intervals: :func:`fg_analysis.metrics.compare`
for "a beats b" (overlapping intervals, values below numerical resolution: inconclusive), :func:`agrees` for
"a equals the claimed number", :func:`combine` for a claim over many cells; a claim resting on a run that did
not learn (:func:`fg_analysis.metrics.learned`) is inconclusive. Where runs are paired (the same seeds or the same
tangents), the experiment modules test the per-pair differences.

The scorecard page lists each distinct claim once (:func:`distinct_claims`): a claim checked both on stored
paper-protocol records and on this build's quick run is judged on the stored records, and the quick run's row
goes to a separate smoke-test table.

>>> combine(["holds", "holds"]), combine(["holds", "inconclusive"]), combine(["holds", "does not hold"])
('holds', 'inconclusive', 'does not hold')
>>> agrees(0.4941, 0.006, 0.494, resolution=0.0005), agrees(0.52, 0.006, 0.494)
('holds', 'does not hold')
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from fg_analysis.metrics import FAILS, HOLDS, INCONCLUSIVE, compare
from fg_analysis.metrics import verdict as _verdict

#: question (RQ1..RQ4); the claim; who made it ("paper", or the other work, e.g. "Baydin et al."); the
#: paper's number; ours; the verdict; how our setup differs; the page section the row comes from
#: (``"page#anchor"``); the stored record it rests on ("" for a live run of this build)
SCORECARD_COLUMNS = ("question", "claim", "source", "paper", "ours", "verdict", "setup", "section", "record")

#: what a module appends to the claim of a row checked on stored paper-protocol records
STORED_SUFFIX = " (stored paper-protocol runs)"

#: the ``source`` of a row that states one of this project's own targets (not a claim of any paper)
PROJECT_TARGET = "project target"

#: modules searched (in this order) for ``scorecard_rows`` by the scorecard page
SCORECARD_MODULES = ("approximation", "optimization", "rq3", "rq4", "guided")

#: the page of each question, for rows that name no section; the scorecard lists the questions in this order
QUESTION_PAGES = {"RQ1": "rq1_approximation", "RQ2": "rq2_optimization", "RQ3": "rq3_networks",
                  "RQ4": "rq4_tradeoffs", "Guided": "guided_tangents"}

#: the scorecard's heading of a question that is not its own name
QUESTION_TITLES = {"Guided": "Beyond the paper, guided tangents"}


def claim(question: str, claim: str, paper: str, ours: str, verdict, setup: str = "", *,
          source: str = "paper", section: str = "", record: str = "") -> dict:
    """One scorecard row (a dict with the keys :data:`SCORECARD_COLUMNS`).

    ``verdict`` is ``"holds"``, ``"does not hold"`` or ``"inconclusive"`` (a bool is read as holds / does not
    hold, for deterministic checks). ``source`` names who made the claim (``"paper"`` for Flügel et al., else
    the other work); ``section`` is the page and anchor it comes from (default: the question's page);
    ``record`` names the stored record(s) the row was read from (:func:`record_text`), "" for a live run.

    >>> claim("RQ1", "more tangents help", "yes", "0.49", "holds")["verdict"]
    'holds'
    """
    return {"question": question, "claim": claim, "source": source, "paper": paper, "ours": ours,
            "verdict": _verdict(verdict), "setup": setup, "section": section or QUESTION_PAGES.get(question, ""),
            "record": record}


def agrees(mean: float, ci: float, target: float, *, target_ci: float = 0.0, resolution: float = 0.0) -> str:
    """Verdict of "the measured ``mean ± ci`` equals the claimed ``target``".

    ``"holds"`` when the target lies within the interval (widened by ``target_ci`` and by ``resolution``, the
    precision the target was stated to, e.g. 0.0005 for a number given to three decimals); ``"does not hold"``
    when the intervals are apart; ``"inconclusive"`` when the interval is undefined (one seed).
    """
    values = [float(v) for v in (mean, ci, target, target_ci)]
    if not all(math.isfinite(v) for v in values):
        return INCONCLUSIVE
    found = compare(values[0], values[1], values[2], values[3], resolution=resolution)
    return HOLDS if found == INCONCLUSIVE else FAILS


def combine(verdicts: Iterable[str]) -> str:
    """One verdict for a claim made for many cells (every n, every k): ``"does not hold"`` if any cell refutes
    it, ``"holds"`` if every cell supports it, otherwise (a tie somewhere) ``"inconclusive"``; no cells:
    inconclusive. :func:`tally` says how the cells split."""
    verdicts = [_verdict(v) for v in verdicts]
    if not verdicts:
        return INCONCLUSIVE
    if FAILS in verdicts:
        return FAILS
    return HOLDS if all(v == HOLDS for v in verdicts) else INCONCLUSIVE


def tally(verdicts: Iterable[str]) -> str:
    """``"12 for, 3 ties, 0 against"``: how the cells of a :func:`combine` verdict split."""
    verdicts = [_verdict(v) for v in verdicts]
    return (f"{verdicts.count(HOLDS)} for, {verdicts.count(INCONCLUSIVE)} "
            f"tie{'s' if verdicts.count(INCONCLUSIVE) != 1 else ''}, {verdicts.count(FAILS)} against")


def record_text(records: Iterable[dict]) -> str:
    """The stored records a row was read from, in one line: ``"OptimizationRun ×12 (commit 70c9229;
    saved 2026-12-01)"``, or the key for a single record. "" for none (a live run)."""
    records = [r for r in records if r]
    if not records:
        return ""
    kinds = sorted({r.get("config", {}).get("class", "?") for r in records})
    commits = sorted({str(r.get("environment", {}).get("commit") or "unknown")[:7] for r in records})
    dates = sorted({str(r.get("saved", ""))[:10] for r in records})
    saved = dates[0] if len(dates) == 1 else f"{dates[0]}..{dates[-1]}"
    count = f" {records[0].get('key', '')}" if len(records) == 1 else f" ×{len(records)}"
    return f"{'/'.join(kinds)}{count} (commit {', '.join(commits)}; saved {saved})"


def distinct_claims(card):
    """``(claims, smoke)``: the scorecard ``card`` (rows of every module) as one row per distinct claim, and the
    quick-run rows that a stored row supersedes.

    A claim is its (question, source, claim text without :data:`STORED_SUFFIX`). When it was checked on stored
    paper-protocol records (``record`` not empty), that row is the claim's row and this build's quick-run row of it
    goes to ``smoke`` (a smoke test of the code, not evidence on the paper's claim); a claim checked only live keeps
    its live row. ``claims`` gains the column ``basis`` ("stored records" or "this build's run"); the claim text
    loses the suffix.

    >>> import pandas as pd
    >>> card = pd.DataFrame([claim("RQ1", "c", "", "", "holds"), claim("RQ1", "c" + STORED_SUFFIX, "", "", "holds",
    ...                      record="X"), claim("RQ1", "d", "", "", "inconclusive")])
    >>> claims, smoke = distinct_claims(card)
    >>> list(zip(claims["claim"], claims["basis"])), list(smoke["claim"])
    ([('c', 'stored records'), ('d', "this build's run")], ['c'])
    """
    card = card.reset_index(drop=True)
    card = card.assign(claim=[text.removesuffix(STORED_SUFFIX) for text in card["claim"]])
    key = ["question", "source", "claim"]
    stored = card[card["record"] != ""].drop_duplicates(key)
    live = card[card["record"] == ""].drop_duplicates(key)
    superseded = live.set_index(key).index.isin(stored.set_index(key).index)
    claims = (card.loc[list(stored.index) + list(live.index[~superseded])].sort_index()
              .assign(basis=lambda frame: ["stored records" if r else "this build's run" for r in frame["record"]]))
    return claims.reset_index(drop=True), live[superseded].reset_index(drop=True)
