"""What the book's pages say: their tables and their sentences, computed from the frames they show.

Every number or comparison in a page's prose comes from a function here, called on the frame the page shows, so
``tests/test_pages.py`` can recompute it. Tables
are Markdown with formatted numbers (no NaN cells); they fit the text column or scroll inside it.

Verdicts use :func:`fg_analysis.metrics.compare` (t-based 95% intervals): a difference inside overlapping
intervals is a tie, said as such.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from fg_analysis import bench, metrics, theory
from fg_analysis.bench.report import step_ratio
from fg_analysis.experiments import (
    PROJECT_TARGET,
    QUESTION_PAGES,
    QUESTION_TITLES,
    approximation,
    optimization,
    reference,
    rq3,
)
from fg_analysis.experiments.rq3 import REN_2023_SETUP, difference_text
from fg_analysis.nets.approaches import approach_order
from fg_analysis.problems import get_problem
from fg_analysis.publish.figures import intro_projection_vectors
from fg_analysis.publish.plots import markdown_table
from fg_analysis.bench.report import FAST_PATH_TARGETS

#: the arXiv page of the reproduced paper
PAPER_URL = "https://arxiv.org/abs/2410.17764"
#: chance accuracy of the 10-class data sets of RQ3 (the same as :data:`fg_analysis.experiments.rq3.CHANCE`)
CHANCE = 0.1


# ------------------------------------------------------------------------------------------------ tables


def cell(value, digits: int = 3) -> str:
    """One table cell as text: numbers formatted to ``digits`` significant places, NaN/None as "—"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}" if abs(int(value)) >= 10_000 else str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            return "∞" if value > 0 else "−∞"
        if value == int(value) and abs(value) < 1e6:
            return str(int(value))
        if value != 0 and (abs(value) < 10 ** -(digits - 1) or abs(value) >= 1e6):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}g}" if abs(value) >= 1 else f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return str(value)


def table(frame: pd.DataFrame, columns: Sequence[str] | None = None, *, rename: dict | None = None,
          digits: int = 3) -> str:
    """A Markdown table of ``frame`` (only ``columns``, renamed), every cell through :func:`cell`.

    >>> print(table(pd.DataFrame({"k": [1, 16], "ratio": [0.5, float("nan")]})))
    | k | ratio |
    | --- | --- |
    | 1 | 0.5 |
    | 16 | — |
    """
    frame = frame[list(columns)] if columns is not None else frame
    shown = frame.apply(lambda column: column.map(lambda value: cell(value, digits)))
    if rename:
        shown = shown.rename(columns=rename)
    return markdown_table(shown)


# ------------------------------------------------------------------------------------------------ records


def records(*frames) -> list[dict]:
    """The stored records behind frames (``attrs["record"]`` or ``attrs["records"]``, see fg_analysis.runs.cache):
    one dict each with what produced it (config class, key), its commit, date and device."""
    found = []
    for frame in frames:
        if frame is None:
            continue
        attrs = getattr(frame, "attrs", {})
        for record in ([attrs["record"]] if "record" in attrs else []) + list(attrs.get("records", [])):
            environment = record.get("environment", {})
            config = record.get("config", {})
            found.append({"kind": config.get("class", "?"), "preset": config.get("preset", ""),
                          "key": record.get("key") or record.get("hash", ""),
                          "commit": environment.get("commit") or "unknown", "saved": str(record.get("saved", ""))[:10],
                          "device": environment.get("device", "?"),
                          "device_name": environment.get("device_name", "")})
    unique = {(r["kind"], r["key"], r["commit"], r["saved"]): r for r in found}
    return list(unique.values())


def show(figure) -> None:
    """Display a matplotlib figure now and close it: inside a loop each figure then appears where it is made,
    next to the text displayed after it, instead of all of them at the end of the cell."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    display(figure)
    plt.close(figure)


def show_records(*frames) -> None:
    """Display one line naming the stored records a page shows; the book runner collects them (from this
    output's metadata) for the status page."""
    from IPython.display import Markdown, display

    found = records(*frames)
    display(Markdown(records_line(found)), metadata={"fg_records": found})


def records_line(found: Sequence[dict], *, commits_shown: int = 4) -> str:
    """One sentence naming stored records (from :func:`records`): per kind and device how many, when saved and
    at which commits (the first ``commits_shown``; the status page lists every record).

    >>> line = records_line([{"kind": "TrainingRun", "preset": "", "commit": c, "saved": "2026-12-01",
    ...                       "device": "cpu"} for c in ("aaaaaaa", "bbbbbbb", "aaaaaaa")])
    >>> line
    'Records shown here: 3 TrainingRun records (cpu, saved 2026-12-01, commits aaaaaaa, bbbbbbb).'
    """
    if not found:
        return "Everything on this page was computed by this build."
    groups: dict[tuple, list[dict]] = {}
    for record in found:
        groups.setdefault((record["kind"], record.get("preset", ""), record["device"]), []).append(record)
    parts = []
    for (kind, preset, device), members in groups.items():
        dates = sorted({r["saved"] for r in members})
        commits = sorted({str(r["commit"])[:7] for r in members})
        shown = ", ".join(commits[:commits_shown]) + (f" and {len(commits) - commits_shown} more"
                                                     if len(commits) > commits_shown else "")
        label = f"{kind}{' ' + preset if preset else ''}"
        count = f"{len(members)} {label} records" if len(members) > 1 else f"{label}"
        saved = dates[0] if len(dates) == 1 else f"{dates[0]}..{dates[-1]}"
        parts.append(f"{count} ({device}, saved {saved}, commit{'s' if len(commits) > 1 else ''} {shown})")
    return "Records shown here: " + "; ".join(parts) + "."


# ------------------------------------------------------------------------------------------------ RQ2


def rq2_setup_table(config) -> str:
    """The functions of RQ2 with the step limit of this run (and the paper's where it differs)."""
    limits = dict(config.max_steps)
    formulas = {"sphere": ("$\\sum x_i^2$", "all $-1$", "0"),
                "rosenbrock": ("$\\sum_{i<n} 100(x_{i+1}-x_i^2)^2 + (1-x_i)^2$", "$(-1, 0, \\dots, 0)$", "0"),
                "styblinski-tang": ("$\\frac12 \\sum (x_i^4 - 16x_i^2 + 5x_i)$", "all 0", "$-39.166\\,n$")}
    rows = []
    for problem in config.problems:
        paper = get_problem(problem).max_steps
        steps = limits.get(problem, paper)
        formula, start, minimum = formulas.get(problem, ("", "", ""))
        rows.append({"function": problem, "f(x)": formula, "start": start,
                     "steps (this run)": f"{steps}" + (f" (paper: {paper})" if steps != paper else ""),
                     "minimum": minimum})
    return markdown_table(pd.DataFrame(rows))


def rq2_lr_ratio_heading(ratios: pd.DataFrame) -> str:
    """The section title on the tuned-rate ratio, with the largest ratio of the table."""
    top = float(ratios["lr ratio (proj/mean)"].max())
    return f"## Why the tuned learning rates of mean and projection differ by up to {top:.0f}×"


def rq2_last_sentence(finals: pd.DataFrame) -> str:
    """How the last f of the runs differs from their best f (the two tables would mostly repeat each other)."""
    rows = finals[finals["tangents"] == "normal"]
    finite = rows[np.isfinite(rows["last_f"])]
    above = finite["last_f"] - finite["best_f"]
    scale = np.maximum(1.0, finite["minimum"].abs())
    differs = above > 1e-6 * scale
    text = (f"The last f equals the best f (to 1e-6 of the scale of f*) in {int((~differs).sum())} of {len(finite)} "
            "runs")
    if differs.any():
        worst = finite.loc[above.idxmax()]
        text += (f"; where it does not, a run ended on an uptick of its noisy descent, at most "
                 f"{float(above.max()):.2g} above its best ({worst['problem']}, n = {int(worst['n'])}, "
                 f"{worst['approach']})")
    diverged = len(rows) - len(finite)
    return text + (f". {diverged} runs diverged (last f not finite)." if diverged else ".")


def rq2_stored_sentence(stored: pd.DataFrame | None, counts: pd.DataFrame) -> str:
    """How many of the paper-protocol runs are stored so far (per function), and how they differ from the paper."""
    total, found = int(counts["of"].sum()), int(counts["stored"].sum())
    parts = ", ".join(f"{row.runs} {row.stored} of {row.of}" for row in counts.itertuples())
    if stored is None:
        return (f"None of the {total} runs of the paper's protocol is stored yet ({parts}); this section fills in "
                "as `python -m fg_analysis rq2 --preset paper --publish` stores them.")
    seeds = sorted(stored["seed"].unique().tolist())
    return (f"**{found} of {total}** runs (one run: a function, n and approach, with all its seeds) of the paper's "
            f"protocol are stored so far: {parts}. They follow the paper's grid, step limits, patience, tuned "
            f"rates and seeds ({', '.join(map(str, seeds))}); they differ from it in the JVPs, formed as $V\\nabla f$ "
            "from the gradient (oracle: the same numbers as forward mode, which the tests check), and in keeping "
            "about 100 points of each trace.")


def rq2_reference_finals(stored_finals: pd.DataFrame | None, quick_finals: pd.DataFrame, config) -> tuple:
    """Which of our runs the reference comparison shows, and a sentence saying so: the stored paper-protocol
    runs when any is stored, else the live runs of the functions run at the paper's step limit."""
    if stored_finals is not None and len(stored_finals):
        return stored_finals, "Ours: the stored paper-protocol runs (5 seeds each)."
    short = [p for p, steps in config.max_steps if steps < get_problem(p).max_steps]
    finals = quick_finals[~quick_finals["problem"].isin(short)]
    return finals, (f"Ours: the live runs of this page ({len(config.seeds)} seeds), as no paper-protocol run is "
                    "stored yet" + (f"; {', '.join(short)} left out (its step limit is shortened here)" if short
                                    else "") + ".")


def _positions(comparison: pd.DataFrame) -> dict:
    both = comparison[comparison["status"] == "both"]
    return {"both": len(both), "reference only": int((comparison["status"] == "reference only").sum()),
            "ours only": int((comparison["status"] == "ours only").sum()),
            **{key: int((both["position"] == key).sum())
               for key in ("within our seeds", "below our seeds", "above our seeds")}}


def reference_sentence(comparison: pd.DataFrame, kind: str = "rq2") -> str:
    """What the comparison with the reference implementation says, counted from its table
    (:func:`fg_analysis.experiments.reference.rq2_table` or ``rq3_table``), followed by the caveat."""
    counts = _positions(comparison)
    what = "best f" if kind == "rq2" else "validation cross-entropy"
    lower = "ends lower" if kind == "rq2" else "is lower"
    if counts["both"] == 0:
        text = f"None of the reference's {counts['reference only']} cells has a run of ours yet."
    else:
        text = (f"In {counts['both']} cells with both, the reference's one-seed {what} lies within the range of our "
                f"seeds in {counts['within our seeds']}, below it (the reference {lower}) in "
                f"{counts['below our seeds']} and above it in {counts['above our seeds']}. "
                f"{counts['reference only']} of the reference's cells have no run of ours"
                + (f"; {counts['ours only']} of ours have no reference value" if counts["ours only"] else "") + ".")
    return f"{text} {reference.caveat(kind)}"


def rq2_reference_table(comparison: pd.DataFrame, problem: str, *, tangents: str = "normal") -> str:
    """One function's cells with both values as a table: rows n (θ for fixed angles), columns the approaches,
    each cell "ours / reference" of the best f − f* (ours: the mean over seeds); † marks a reference value
    outside our seeds' range."""
    rows = comparison[(comparison["status"] == "both") & (comparison["problem"] == problem)
                      & (comparison["tangents"] == tangents)]
    if rows.empty:
        return ""
    index = "n" if tangents == "normal" else "theta"

    def short(value: float) -> str:
        return "0" if value <= 0 else f"{value:.2g}"

    text = [f"{short(o)} / {short(r)}" + ("" if p == "within our seeds" else " †")
            for o, r, p in zip(rows["ours_gap"], rows["reference_gap"], rows["position"], strict=True)]
    shown = rows.assign(text=text).pivot(index=index, columns="approach", values="text")
    shown = shown[[label for label in approach_order(shown.columns)]].fillna("—").reset_index()
    if index == "theta":
        shown["theta"] = [f"{float(t):g}°" for t in shown["theta"]]
    return markdown_table(shown.rename(columns={"theta": "θ"}))


def rq3_reference_table(comparison: pd.DataFrame) -> str:
    """The RQ3 cells with a run of ours: validation cross-entropy at the best epoch, ours (mean ± 95% CI over
    the seeds stored, and their range) against the reference's one-seed value."""
    rows = comparison[comparison["status"] == "both"]
    if rows.empty:
        return ""
    shown = rows.assign(ours_text=[metrics.format_ci(m, c) for m, c in zip(rows["ours"], rows["ours_ci"])],
                        range=[f"{lo:.3f}..{hi:.3f}" for lo, hi in zip(rows["ours_low"], rows["ours_high"])],
                        seeds=rows["seeds"].astype(int))
    return table(shown, ["network", "approach", "ours_text", "seeds", "range", "reference_loss", "position"],
                 rename={"ours_text": "ours", "range": "our seeds' range", "reference_loss": "reference",
                         "position": "reference against our seeds"})


def rq3_reference_missing(comparison: pd.DataFrame) -> str:
    """The networks whose reference cells have no run of ours yet, in one sentence."""
    missing = comparison[comparison["status"] == "reference only"]
    if missing.empty:
        return ""
    per_network = missing.groupby("network", sort=False).size()
    return ("No run of ours yet for: " + ", ".join(f"{network} ({count} approaches)" for network, count
                                                  in per_network.items()) + ".")


# ------------------------------------------------------------------------------------------------ RQ3


def rq3_setups(table: pd.DataFrame) -> list[tuple[str, str]]:
    return list(dict.fromkeys(zip(table["network"], table["dataset"])))


def rq3_accuracy_table(table: pd.DataFrame) -> str:
    """Test accuracy per approach (mean ± 95% CI over seeds, from :func:`fg_analysis.experiments.rq3.summary`),
    with seeds, the mean best epoch, how many runs the epoch budget ended ("budget-limited", of the seeds), the
    learning rate and the seconds per run; network and data set as columns only when there are several."""
    shown = table.assign(accuracy=[metrics.format_ci(m, c) for m, c in zip(table["mean"], table["ci"])],
                         best_epoch=table["best_epoch"].round(1), wall=table["wall_time_s"].round(0),
                         budget=[f"{int(b)} of {int(n)}" for b, n in zip(table["budget_limited"], table["seeds"])])
    setup = ["network", "dataset"] if len(rq3_setups(table)) > 1 else []
    return table_fitting(shown, setup + ["approach", "accuracy", "seeds", "best_epoch", "budget", "lr", "wall"],
                         rename={"accuracy": "test accuracy", "best_epoch": "best epoch", "budget": "budget-limited",
                                 "wall": "s per run"})


def rq3_budget_sentence(table: pd.DataFrame) -> str:
    """Which approaches had runs ended by the epoch budget (:func:`fg_analysis.experiments.rq3.budget_limited`)."""
    limited = table[table["budget_limited"] > 0]
    if limited.empty:
        return "Every run was ended by its stopping rule, none by the epoch budget."
    parts = [f"{row.approach} ({int(row.budget_limited)} of {int(row.seeds)})" for row in limited.itertuples()]
    return (f"**Budget-limited** runs (ended by the {int(limited['budget'].max())}-epoch budget before the stopping "
            f"rule could end them): {', '.join(parts)}. Their accuracies are what the budget allowed; more epochs "
            "might raise them.")


def rq3_comparison_table(comparisons: pd.DataFrame) -> str:
    """The paired comparisons (:func:`fg_analysis.experiments.rq3.comparisons`), narrow: the claim, its verdict,
    the mean per-seed difference of the test accuracy with its 95% t interval, and the seeds paired."""
    shown = comparisons.assign(claim=[f"{a} > {b}" for a, b in zip(comparisons["a"], comparisons["b"])],
                               difference=[difference_text(row) for _, row in comparisons.iterrows()])
    setup = ["network", "dataset"] if comparisons[["network", "dataset"]].drop_duplicates().shape[0] > 1 else []
    return table(shown, ["claim", "verdict", "difference"] + setup,
                 rename={"difference": "paired difference (seeds)"})


def rq3_anchor_table(anchors: pd.DataFrame) -> str:
    """Ren et al.'s MNIST test errors beside ours (:func:`fg_analysis.experiments.rq3.anchors`), in %."""
    shown = anchors.assign(ren=[cell(v) for v in anchors["ren"]],
                           ours=[metrics.format_ci(m, c, digits=2) if n else "—"
                                 for m, c, n in zip(anchors["ours"], anchors["ours_ci"], anchors["seeds"])])
    return table(shown, ["method", "ren", "ours"],
                 rename={"ren": "Ren et al. 2023 (%)", "ours": "ours, FC (%)"})


def rq3_anchor_sentence(stored: pd.DataFrame) -> str:
    """How Ren et al.'s setting (:data:`fg_analysis.experiments.rq3.REN_2023_SETUP`) and that of our stored runs
    differ, the latter read from the runs."""
    width = int(stored["width"].iloc[0])
    parameters = int(stored["n_parameters"].iloc[0])
    return (f"Ren et al.'s figures are quoted from their paper (Table 3 of arXiv 2210.03310), not rerun here: "
            f"{REN_2023_SETUP}, under their own training protocol. Ours: the fully-connected net with two hidden "
            f"layers of {width} ({parameters:,} parameters), trained by plain SGD at the paper's tuned constant rates "
            f"(batch {int(stored['batch_size'].iloc[0])}, up to {int(stored['epochs'].max())} epochs, patience "
            f"{int(stored['patience'].iloc[0])}, {stored['seed'].nunique()} seeds); our FG is activity-perturbed "
            "(one tangent over all layer outputs, shared by the batch) with JVPs from the BP gradient, and its "
            "multi-tangent variants have no counterpart there, nor do FA, DFA and the weight-perturbed forward "
            "gradient here. The architectures and protocols differ, so the rows place our numbers among published "
            "ones; they do not test them.")


def table_fitting(frame: pd.DataFrame, columns, *, rename=None) -> str:
    return table(frame, columns, rename=rename)


def rq3_learned(frame: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Per (network, dataset, approach): did the runs learn? (:func:`fg_analysis.experiments.rq3.learned`: mean
    test accuracy above chance and above the untrained network's validation accuracy, beyond the 95% CI)."""
    return rq3.learned(frame, table)


def rq3_verdict(frame: pd.DataFrame, learned: pd.DataFrame, a: str, b: str, network: str, dataset: str) -> str:
    """Verdict of "approach ``a`` beats approach ``b``" on one setup from the runs of ``frame``, paired by seed
    (inconclusive when either did not learn): :func:`fg_analysis.experiments.rq3.verdict`."""
    return rq3.verdict(frame, learned, a, b, network, dataset)


def _phrase(verdict: str, a: str, b: str) -> str:
    return {metrics.HOLDS: f"{a} beats {b}", metrics.FAILS: f"{a} does not beat {b}",
            metrics.INCONCLUSIVE: f"{a} and {b} cannot be told apart at this number of seeds (the per-seed "
                                  "differences' interval contains 0)"}[verdict]


def rq3_summary(frame: pd.DataFrame, table: pd.DataFrame) -> str:
    """The RQ3 page's closing sentences, per setup: BP, FG, the best forward gradient, the verdicts (paired by
    seed: :func:`rq3_verdict`)."""
    learned = rq3_learned(frame, table)
    lines = []
    for network, dataset in rq3_setups(table):
        rows = table[(table["network"] == network) & (table["dataset"] == dataset)].set_index("approach")
        seeds = int(rows["seeds"].max())
        text = lambda label: metrics.format_ci(rows.loc[label, "mean"], rows.loc[label, "ci"])  # noqa: E731
        parts = [f"**{network} on {dataset}** ({seeds} seed{'s' if seeds > 1 else ''}):"]
        if "BP" in rows.index:
            parts.append(f"BP reaches {text('BP')} test accuracy")
        if "FG" in rows.index:
            parts.append(f"one tangent (FG) {text('FG')}")
        others = rows.drop(index=[label for label in ("BP", "FG") if label in rows.index])
        if len(others):
            best = others["mean"].idxmax()
            parts.append(f"the best forward gradient, {best}, {text(best)}")
        sentence = parts[0] + " " + "; ".join(parts[1:]) + "."
        for a, b in (("projection k=16", "FG"), ("projection k=16", "mean k=16"), ("BP", "projection k=16")):
            if a in rows.index and b in rows.index:
                phrase = _phrase(rq3_verdict(frame, learned, a, b, network, dataset), a, b)
                sentence += " " + phrase[0].upper() + phrase[1:] + "."
        failed = learned[(learned["network"] == network) & (learned["dataset"] == dataset) & ~learned["learned"]]
        if len(failed):
            sentence += (f" {' and '.join(failed['approach'])} did not learn (test accuracy not above chance or the "
                         "untrained network beyond its interval); comparisons with them are inconclusive.")
        lines.append("* " + sentence)
    return "\n".join(lines)


def rq3_stored_sentence(stored: pd.DataFrame | None, config) -> str:
    """How many of the paper-protocol RQ3 runs of one width (``config``: a preset of
    :data:`fg_analysis.experiments.rq3.WIDTH_PRESETS`) are stored so far, and how they differ."""
    total = len(config.runs())
    width = config.networks[0][1]
    name = f"FC-{width}"
    if stored is None:
        return (f"None of the {total} runs of the paper's protocol for {name} on MNIST is stored yet; this section "
                f"fills in as `python -m fg_analysis rq3 --preset {rq3.WIDTH_PRESETS[width]} --publish` stores them.")

    seeds = stored.groupby("approach")["seed"].apply(lambda s: ", ".join(map(str, sorted(s.unique()))))
    shown = "; ".join(f"{label} (seed{'s' if ',' in seeds[label] else ''} {seeds[label]})"
                      for label in approach_order(stored["approach"]))
    return (f"**{stored.attrs.get('stored')} of {total}** runs (one approach and seed each) of the paper's protocol "
            f"for {name} on MNIST are stored so far: {shown}. They follow the paper's protocol (all 50k training "
            f"images, up to {config.epochs} epochs, patience {config.patience}, batch 64, the paper's tuned rates, "
            f"seeds {', '.join(map(str, config.seeds))}); they differ from it in forming the JVPs from the BP "
            "gradient (oracle, the paper's own default, \"simulated\") and, until all are stored, in the seeds: "
            "an approach with one seed has no interval, so its comparisons are inconclusive.")


#: what a cell of the width comparison says when a width has no run of it yet
WAITS = "waits for runs"


def _seeds_text(seeds: dict) -> str:
    """``{approach: [seeds]}`` as "BP seed 0; FG seeds 0, 1"."""
    return "; ".join(f"{label} seed{'s' if len(found) > 1 else ''} {', '.join(map(str, found))}"
                     for label, found in seeds.items())


def _coverage_text(coverage: pd.DataFrame) -> str:
    """What is stored of each width (:func:`fg_analysis.experiments.rq3.coverage`): "FC-256: all 24 runs stored;
    FC-1024: 1 of 24 runs stored (BP seed 0)"."""
    return "; ".join(f"FC-{row.width}: " + (f"all {row.units} runs stored" if row.stored == row.units else
                                            f"{row.stored} of {row.units} runs stored"
                                            + (f" ({_seeds_text(row.seeds)})" if row.stored else ""))
                     for row in coverage.itertuples())


def rq3_width_table(summary: pd.DataFrame, coverage: pd.DataFrame) -> str:
    """Test accuracy and validation cross-entropy of the tested state per approach of the paper's protocol, the
    widths side by side (:func:`fg_analysis.experiments.rq3.width_summary`): mean ± 95% t interval over the seeds,
    their number in parentheses; :data:`WAITS` where a width has no run of the approach yet."""
    found = summary.set_index(["width", "approach"])
    rows = []
    for label in ("BP", *rq3.FG_APPROACHES):
        row = {"approach": label}
        for value, name in (("accuracy", "test accuracy"), ("val_loss", "validation loss")):
            for width in coverage["width"]:
                key = (width, label)
                row[f"{name}, FC-{width}"] = (
                    f"{metrics.format_ci(found.loc[key, value], found.loc[key, f'{value}_ci'])} "
                    f"({int(found.loc[key, 'seeds'])})" if key in found.index else WAITS)
        rows.append(row)
    return table(pd.DataFrame(rows))


def _pair_name(a: str, b: str) -> str:
    """A pair of :data:`fg_analysis.experiments.rq3.WIDTH_PAIRS` in words."""
    return f"gap to BP of {b}" if a == "BP" else f"gain of {a} over {b}"


def _trend_word(row) -> str:
    """A width trend's verdict (:func:`fg_analysis.experiments.rq3.width_trends`) in words."""
    if row["seeds"] < 2:
        return WAITS if row["seeds"] == 0 else "one seed: no interval"
    return {metrics.HOLDS: "grows", metrics.FAILS: "shrinks",
            metrics.INCONCLUSIVE: "no change beyond the interval"}[row["verdict"]]


def rq3_width_gap_table(differences: pd.DataFrame, trends: pd.DataFrame) -> str:
    """Per pair of :data:`fg_analysis.experiments.rq3.WIDTH_PAIRS`: its paired difference of the test accuracy at
    each width (:func:`fg_analysis.experiments.rq3.width_differences`) and its change from the narrow width to the
    wide one, paired by seed, with what that says (:func:`fg_analysis.experiments.rq3.width_trends`)."""
    found = differences.set_index(["a", "b", "width"])
    rows = []
    for _, trend in trends.iterrows():
        a, b = trend["a"], trend["b"]
        row = {"difference": _pair_name(a, b)}
        for width in dict.fromkeys(differences["width"]):
            entry = found.loc[(a, b, width)]
            row[f"FC-{width}"] = difference_text(entry) if entry["seeds"] else WAITS
        change = f"FC-{trend['narrow']} → FC-{trend['wide']}"
        row[change] = difference_text(trend.rename({"change": "difference"})) if trend["seeds"] else WAITS
        row["with width"] = _trend_word(trend)
        rows.append(row)
    return table(pd.DataFrame(rows))


def rq3_width_sentence(trends: pd.DataFrame, coverage: pd.DataFrame) -> str:
    """The answer to the width question from the paired changes (:func:`fg_analysis.experiments.rq3.width_trends`):
    does the gap to BP grow with width, and do 16 tangents gain more over one at the larger width? Or, until the
    runs are stored, which runs it waits for."""
    stored = _coverage_text(coverage)
    ready = trends[trends["seeds"] >= 2]
    missing = int((coverage["units"] - coverage["stored"]).sum())
    if ready.empty:
        return (f"{stored}. The width comparison waits for the other {missing} runs: each of its answers needs BP and "
                "the approach at both widths for at least two seeds (the page's intervals are over seeds, paired).")
    narrow, wide = int(trends["narrow"].iloc[0]), int(trends["wide"].iloc[0])

    def said(rows: pd.DataFrame) -> str:
        return "; ".join(f"the {_pair_name(row['a'], row['b'])}: {_trend_word(row)} (change "
                         f"{difference_text(row.rename({'change': 'difference'}))})" for _, row in rows.iterrows())

    gaps, gains = ready[ready["a"] == "BP"], ready[ready["a"] != "BP"]
    text = (f"From FC-{narrow} to FC-{wide} (the change of each paired difference, itself paired by seed, mean ± "
            "95% t interval):")
    if len(gaps):
        text += f" Does the gap to BP grow with width? {said(gaps)[:1].upper()}{said(gaps)[1:]}."
    if len(gains):
        text += f" Does k help more at the larger width? {said(gains)[:1].upper()}{said(gains)[1:]}."
    waiting = trends[trends["seeds"] < 2]
    if len(waiting):
        names = ", ".join(_pair_name(a, b) for a, b in zip(waiting["a"], waiting["b"]))
        text += f" Still waiting for runs: the {names} ({stored})."
    return text


def rq3_width_cosine_table(cosines: pd.DataFrame) -> str:
    """The measured cosine per approach and width, mean ± 95% t interval over the seeds (their number in
    parentheses), beside the activity-space closed form E[cos] (:func:`fg_analysis.experiments.rq3.width_cosines`)."""
    rows = []
    for label, group in cosines.groupby("approach", sort=False):
        row = {"approach": label}
        for entry in group.itertuples():
            row[f"FC-{entry.width}, measured"] = (f"{metrics.format_ci(entry.cosine, entry.ci)} ({entry.seeds})"
                                                  if entry.seeds else WAITS)
            row[f"FC-{entry.width}, E[cos] for A = {entry.A}"] = f"{entry.theory:.3f}"
        rows.append(row)
    return table(pd.DataFrame(rows))


def rq3_width_cosine_sentence(cosines: pd.DataFrame) -> str:
    """How the measured cosines compare with the closed form at each width, and how the closed form scales."""
    parts = []
    for width, group in cosines.groupby("width", sort=False):
        measured = group[group["seeds"] > 0]
        if measured.empty:
            parts.append(f"FC-{width} waits for runs")
            continue
        ratio = measured["cosine"] / measured["theory"]
        parts.append(f"at FC-{width} (A = {int(group['A'].iloc[0])}) the measured cosines are "
                     f"{ratio.min():.2f}–{ratio.max():.2f} times the closed form")
    text = "; ".join(parts)
    first, last = (cosines[cosines["width"] == width] for width in (cosines["width"].min(), cosines["width"].max()))
    falls = first["theory"].to_numpy() / last["theory"].to_numpy()
    low, high = int(first["A"].iloc[0]), int(last["A"].iloc[0])
    return (f"{text[0].upper()}{text[1:]}. From A = {low} to A = {high} the closed form falls by a factor "
            f"{falls.min():.2f}–{falls.max():.2f} (about √({high}/{low}) = {math.sqrt(high / low):.2f}). The "
            "measured cosine is in weight space, reached through the layer-local updates, so it need not equal the "
            "activity-space closed form.")


def rq3_cosine_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per forward-gradient approach: mean, min and max over epochs ≥ 1 of the cosine to the BP gradient, with
    the activity-space closed form E[cos] of the projection (dimension A from the frame)."""
    rows = frame[(frame["method"] == "fg") & (frame["epoch"] > 0)]
    out = rows.groupby(["network", "dataset", "approach", "aggregator", "k"], sort=False).agg(
        mean=("cosine", "mean"), low=("cosine", "min"), high=("cosine", "max"),
        A=("activity_dimension", "first")).reset_index()
    out["theory"] = [float(theory.expected_cosine("projection" if a == "projection" else "mean", int(k), int(A)))
                     if int(k) <= int(A) else np.nan for a, k, A in zip(out["aggregator"], out["k"], out["A"])]
    out["order"] = out["approach"].map({label: i for i, label in enumerate(_order(out["approach"]))})
    return out.sort_values(["network", "dataset", "order"]).drop(columns="order").reset_index(drop=True)


def _order(labels):

    return approach_order(labels)


def rq3_cosine_sentence(cosines: pd.DataFrame) -> str:
    """How close the estimates are to the gradient during training, against the activity-space closed form."""
    parts = []
    for row in cosines.itertuples():
        theory = f" (closed form for a random gradient in A = {int(row.A)} dimensions: {row.theory:.3f})" \
            if math.isfinite(row.theory) else ""
        parts.append(f"{row.approach} {row.mean:.3f}{theory}")
    return ("Mean cosine to the BP gradient over the epochs: " + "; ".join(parts) + ". The measured cosine is in "
            "weight space, reached through the layer-local updates, so it need not equal the activity-space "
            "closed form.")


def rq3_lr_sentence(table: pd.DataFrame) -> str:
    """The ratio of the projection's to the mean's learning rate at each k, from the runs' rates."""
    parts = []
    for network, dataset in rq3_setups(table):
        rows = table[(table["network"] == network) & (table["dataset"] == dataset)].set_index("approach")
        for k in sorted({int(k) for k in rows["k"]}):
            a, b = f"projection k={k}", f"mean k={k}"
            if a in rows.index and b in rows.index:
                parts.append(f"{rows.loc[a, 'lr'] / rows.loc[b, 'lr']:.0f}× at k = {k} ({network} on {dataset})")
    if not parts:
        return ""
    return ("The projection trains with larger rates than the mean: " + ", ".join(parts) + ". The mean of k "
            "forward gradients overshoots the gradient's norm by about sqrt(A/k); the projection never does.")


# ------------------------------------------------------------------------------------------------ RQ4


def rq4_step_table(frame: pd.DataFrame, model: str) -> str:
    """Median step times (ms) of one model: BP and each FG variant per k."""
    steps = bench.step_table(frame)
    steps = steps[steps["model"] == model].drop(columns=["model", "n"])
    for column in steps.columns:
        if column != "k":
            steps[column] = 1000 * steps[column]
    if "bp" in steps:
        steps["bp"] = steps["bp"].fillna(steps["bp"].median())
    return table(steps, rename={c: f"{c} (ms)" for c in steps.columns if c != "k"})


def rq4_numbers(frame: pd.DataFrame, *, model: str, fit_ks: Sequence[int]) -> dict:
    """The numbers the RQ4 sentences state, computed from one benchmark frame; the step ratios paired by round
    as the scorecard's (:func:`fg_analysis.bench.report.step_ratio`), so that both state one number."""
    steps = frame[(frame["section"] == "step") & (frame["phase"] == "step") & (frame["model"] == model)]
    bp = float(steps[steps["method"] == "bp"]["seconds"].median())
    ks = sorted(int(k) for k in steps[steps["method"] == "vmap"]["k"].unique())
    ratio = {k: 1 / step_ratio(frame, model, "vmap", "mean", k, over="step") for k in ks}
    ratio = {k: v for k, v in ratio.items() if math.isfinite(v)}
    worst = max(ratio, key=ratio.get) if ratio else None
    small = {k: v for k, v in ratio.items() if k <= 16}
    numbers = {"bp_ms": 1000 * bp, "ks": ks, "projection_over_mean": ratio,
               "projection_over_mean_max": ratio.get(worst, math.nan), "projection_over_mean_max_k": worst,
               "projection_over_mean_max_small": max(small.values()) if small else math.nan,
               "fg1_over_bp": step_ratio(frame, model, "vmap", "mean", 1),
               "vmap_over_loop_k16": step_ratio(frame, model, "loop", "projection", 16, over="step")}
    models = bench.cost_models(frame, fit_ks, model)
    numbers["break_even_k"] = models.get("projection", {}).get("break_even_k", math.nan)
    numbers["held_out_error"] = models.get("projection", {}).get("held_out_max_abs_error", math.nan)
    memory = frame[(frame["section"] == "memory") & frame["mode"].isin(["bp", "fg"])]
    if len(memory):
        peak = memory.pivot_table(index="depth", columns="mode", values="peak_bytes")
        depths = sorted(peak.index)
        numbers.update(depth_low=int(depths[0]), depth_high=int(depths[-1]),
                       fg_over_bp_low=float(peak.loc[depths[0], "fg"] / peak.loc[depths[0], "bp"]),
                       fg_over_bp_high=float(peak.loc[depths[-1], "fg"] / peak.loc[depths[-1], "bp"]),
                       bp_growth=float(peak.loc[depths[-1], "bp"] / peak.loc[depths[0], "bp"]),
                       fg_growth=float(peak.loc[depths[-1], "fg"] / peak.loc[depths[0], "fg"]))
    return numbers


def rq4_summary(numbers: dict, *, name: str, device: str) -> str:
    """The RQ4 sentences from :func:`rq4_numbers`."""
    lines = []
    ratio = numbers["projection_over_mean"]
    if ratio:
        per_k = ", ".join(f"{v:.2f}× at k = {k}" for k, v in ratio.items())
        lines.append(f"* **Time** ({name}, {device}). A BP step takes {numbers['bp_ms']:.2f} ms; a single-tangent "
                     f"FG step {numbers['fg1_over_bp']:.2f}× as long. The projection's step costs {per_k} the "
                     f"mean's (at most {numbers['projection_over_mean_max']:.2f}×, at k = "
                     f"{numbers['projection_over_mean_max_k']}"
                     + (f"; for k ≤ 16 at most {numbers['projection_over_mean_max_small']:.2f}×"
                        if numbers["projection_over_mean_max_k"] > 16 else "") + ").")
    if math.isfinite(numbers.get("vmap_over_loop_k16", math.nan)):
        lines.append(f"* **Vmapped JVPs** make the k = 16 step {numbers['vmap_over_loop_k16']:.2f}× as fast as "
                     "the reference implementation's per-tangent loop.")
    even = numbers.get("break_even_k", math.nan)
    if math.isfinite(even):
        lines.append("* **Break-even.** " + (
            f"The fitted cost model puts the break-even k at {even:.2f}, below one tangent: no k makes an FG "
            "step as cheap as a BP step here." if even < 1 else
            f"FG steps with up to {even:.1f} tangents cost less than a BP step."))
    if "fg_over_bp_low" in numbers:
        lines.append(f"* **Memory.** At {numbers['depth_low']} hidden layers FG's peak memory is "
                     f"{numbers['fg_over_bp_low']:.1f}× BP's; at {numbers['depth_high']} it is "
                     f"{numbers['fg_over_bp_high']:.2f}×. From {numbers['depth_low']} to {numbers['depth_high']} "
                     f"layers BP's peak grows {numbers['bp_growth']:.1f}×, FG's {numbers['fg_growth']:.2f}×. "
                     + ("FG needs less memory than BP only from the depth where the lines cross."
                        if numbers["fg_over_bp_high"] < 1 <= numbers["fg_over_bp_low"] else
                        "FG needs less memory than BP at every depth measured." if numbers["fg_over_bp_low"] < 1
                        else "FG needs more memory than BP at every depth measured."))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ scorecard


def scorecard_tables(claims: pd.DataFrame) -> Iterable[tuple[str, str]]:
    """``(heading, Markdown table)`` for the distinct claims of :func:`fg_analysis.experiments.distinct_claims`:
    the paper's claims per question (in the order of :data:`fg_analysis.experiments.QUESTION_PAGES`), then the
    claims of other work per source, then the project's own targets. The verdict comes right after the claim (it
    stays in view on a narrow screen); every claim links to the page section it comes from."""
    order = list(QUESTION_PAGES)
    def by_question(rows):
        return sorted(rows.groupby("question", sort=False), key=lambda item: (
            order.index(item[0]) if item[0] in order else len(order), item[0]))

    def shown(rows, claimed="paper"):
        linked = rows.assign(claim=[f'<a href="{_link(s)}">{c}</a>' for c, s in zip(rows["claim"], rows["section"])])
        return table(linked, ["claim", "verdict", "paper", "ours", "basis"], rename={"paper": claimed})

    paper = claims[claims["source"] == "paper"]
    for question, rows in by_question(paper):
        yield f"{QUESTION_TITLES.get(question, question)}: claims of the paper", shown(rows)
    others = claims[~claims["source"].isin(["paper", PROJECT_TARGET])]
    for question, rows in by_question(others):
        for source, part in rows.groupby("source", sort=False):
            yield f"{QUESTION_TITLES.get(question, question)}: claims of {source}", shown(part, "claimed")
    targets = claims[claims["source"] == PROJECT_TARGET]
    if len(targets):
        yield "This project's own targets", shown(targets, "target")


def _link(section: str) -> str:
    page, _, anchor = str(section).partition("#")
    return f"{page}.html" + (f"#{anchor}" if anchor else "")


def scorecard_count(claims: pd.DataFrame, what: str = "claims") -> str:
    """``"7 of 16 claims hold, 3 do not hold, 6 are inconclusive"``."""
    counts = claims["verdict"].value_counts()
    return (f"{int(counts.get(metrics.HOLDS, 0))} of {len(claims)} {what} hold, "
            f"{int(counts.get(metrics.FAILS, 0))} do not hold, {int(counts.get(metrics.INCONCLUSIVE, 0))} are "
            "inconclusive")


# ------------------------------------------------------------------------------------------------ intro


def intro_projection_sentence() -> str:
    """The cosines and norm ratios of the intro's 3-D example (:func:`fg_analysis.publish.figures.intro_projection`)."""
    g, _, p, m = intro_projection_vectors()
    cos, ratio = metrics.cosine, metrics.norm_ratio
    return (f"Here $\\cos(P_U g, g) = {cos(p, g):.3f}$ against $\\cos(\\mathrm{{mean}}, g) = {cos(m, g):.3f}$, and "
            f"$|P_U g|/|g| = {ratio(p, g):.3f}$ against $|\\mathrm{{mean}}|/|g| = {ratio(m, g):.3f}$.")


def rq4_time_to_accuracy_table(table: pd.DataFrame, target: float) -> str:
    """The time to ``target`` validation accuracy per approach (:func:`fg_analysis.experiments.rq4.time_to_accuracy`)
    as a Markdown table: approach, seeds that reached it, epoch, seconds, the ratio to BP."""
    shown = pd.DataFrame({
        "approach": table["approach"],
        f"seeds reaching {target:.0%}": [f"{int(r)} of {int(s)}" for r, s in zip(table["reached"], table["seeds"])],
        "epoch": ["—" if pd.isna(e) else f"{e:.0f}" for e in table["epoch"]],
        "seconds": ["—" if pd.isna(t) else f"{t:.0f}" for t in table["seconds"]],
        "× BP": ["—" if pd.isna(r) else f"{r:.1f}" for r in table["over_bp"]],
        "best val. accuracy": [f"{a:.3f}" for a in table["best_val_accuracy"]]})
    return markdown_table(shown)


def rq4_fast_path_table(frame: pd.DataFrame) -> str:
    """The fast path's targets as a record judged them (rows ``fast_path:<key>`` of its summary: the step and
    the public call with normal and Rademacher tangents against the reference loop and BP, and the sampling's
    share of a step), or a sentence saying that the record predates them."""
    rows = frame[(frame["section"] == "summary") & frame["key"].astype(str).str.startswith("fast_path:")]
    if rows.empty:
        return "This record predates the fast path's figures (`python -m fg_analysis bench --quick` measures them)."
    meanings = {key: meaning for key, _, _, meaning in FAST_PATH_TARGETS}
    shown = pd.DataFrame({
        "target": [meanings.get(key.removeprefix("fast_path:"), key) for key in rows["key"]],
        "measured": [f"{value:.2f}" for value in rows["value"]],
        "bound": [f"{op} {bound:g}" for op, bound in zip(rows["op"], rows["bound"], strict=True)],
        "met": ["met" if str(met) == "True" else "missed" for met in rows["met"]]})
    return table(shown, ["target", "met", "measured", "bound"])


# ------------------------------------------------------------------------------------------------ summaries


def rq1_summary(frame: pd.DataFrame, config: approximation.ApproximationConfig | None = None, *,
                     where: str = "In this run") -> str:
    """The RQ1 page's closing paragraph, computed from ``frame``: the n = 64, k = 16 numbers and the claims
    (``where`` opens the sentence that counts them: ``"In the stored grid"`` for the stored runs)."""
    claims = approximation.scorecard(frame, config)
    text = []
    try:
        p, m = (approximation.cell_value(frame, aggregator=a, n=64, k=16) for a in ("projection", "mean"))
        r = approximation.cell_value(frame, aggregator="mean", n=64, k=16, metric="norm_ratio")
        text.append(f"At $n = 64$, $k = 16$ the projection reaches a mean cosine of "
                    f"**{metrics.format_ci(p['mean'], p['ci'])}**"
                    f" (closed form {float(theory.expected_cosine('projection', 16, 64)):.3f}, paper 0.494), the "
                    f"mean **{metrics.format_ci(m['mean'], m['ci'])}** (0.444), and the mean's norm is "
                    f"{r['mean']:.2f} times "
                    "$|g|$ ($\\sqrt{n/k} = 2$).")
    except KeyError:
        pass
    text.append(f"{where} {scorecard_count(claims).replace('claims', 'RQ1 claims', 1)}:")
    return " ".join(text) + "\n\n" + markdown_table(claims[["claim", "paper", "ours", "verdict"]])


def rq1_laws_sentence(frame: pd.DataFrame) -> str:
    """What the fast law costs in cosine, computed from the law comparison's ``frame``
    (:func:`fg_analysis.experiments.approximation.run_laws`, through
    :func:`~fg_analysis.experiments.approximation.law_table`): per true gradient, in how many cells the Rademacher
    cosine lies above, around or below the Gaussian closed form; the largest gain off the axis; the exact loss at
    k = 1 against all-ones; the normal control; and where the projection was left out."""
    table = approximation.law_table(frame)
    rademacher, normal = table[table["law"] == "rademacher"], table[table["law"] == "normal"]
    names = {"ones": "the paper's $g$ = all-ones", "generic": "a generic $g$", "axis": "the axis $g = e_1$"}
    ns, ks = sorted(table["n"].unique()), sorted(table["k"].unique())

    def split(rows) -> str:
        counts = rows["verdict"].value_counts()
        return "/".join(str(counts.get(v, 0)) for v in (metrics.HOLDS, metrics.INCONCLUSIVE, metrics.FAILS)) \
            + f" of {len(rows)}"

    parts = [f"{split(rademacher[rademacher['gradient'] == g])} cells against {names[g]}"
             for g in approximation.GRADIENTS if g in set(rademacher["gradient"])]
    text = ("Rademacher tangents give an average cosine above/within the 95% interval of/below the Gaussian closed "
            f"form in {', '.join(parts)} (mean and projection; $n$ = {ns[0]}..{ns[-1]}, $k$ = {ks[0]}..{ks[-1]}).")
    single = rademacher[(rademacher["k"] == 1) & (rademacher["aggregator"] == "mean")].set_index(["gradient", "n"])
    if "axis" in single.index.get_level_values(0):
        ratio = single.loc["axis", "exact"] / single.loc["axis", "gaussian"]
        text += (f" Against the axis every single-tangent cosine is exactly $1/\\sqrt n$, {ratio.min():.2f}–"
                 f"{ratio.max():.2f} times the Gaussian value (Jensen's upper bound, as $E[\\cos^2] = 1/n$ for "
                 "either law).")
    gains = rademacher[(rademacher["gradient"] != "axis") & (rademacher["verdict"] == metrics.HOLDS)]
    if len(gains):
        top = gains.loc[gains["ratio"].idxmax()]
        text += (f" Off the axis the gains are all the {' and the '.join(sorted(gains['aggregator'].unique()))}'s, "
                 f"at $n \\le {gains['n'].max()}$; the largest is {metrics.format_ci(top['ratio'], top['ratio_ci'])} "
                 f"times the Gaussian value ({top['aggregator']}, {names[top['gradient']]}, $n$ = {top['n']}, "
                 f"$k$ = {top['k']}).")
    if "ones" in single.index.get_level_values(0):
        ones = single.loc["ones"]
        low, high = ones.index.min(), ones.index.max()
        loss = 1 - ones["exact"] / ones["gaussian"]
        resolved = "inside" if loss[low] <= ones.loc[low, "ratio_ci"] else "beyond"
        text += (" The one exact loss is at $k = 1$ against all-ones, where $\\hat g = 0$ whenever $v \\cdot g = 0$: "
                 f"$E[\\cos] = \\binom{{n}}{{n/2}}/2^n$ (even $n$) is {100 * loss[low]:.1f}% below the Gaussian value "
                 f"at $n$ = {low} and {100 * loss[high]:.2f}% at $n$ = {high}, {resolved} the ±"
                 f"{100 * ones.loc[low, 'ratio_ci']:.1f}% that {int(ones.loc[low, 'count'])} draws resolve.")
    if len(normal):
        inside = int((normal["verdict"] == metrics.INCONCLUSIVE).sum())
        text += (f" Normal tangents, measured by the same code, lie within the closed form's interval in {inside} of "
                 f"{len(normal)} cells ({100 * inside / len(normal):.0f}%; about 95% by chance alone).")
    below = rademacher[rademacher["verdict"] == metrics.FAILS]
    if below.empty:
        text += " So the fast law costs no measurable cosine in any of these cells"
    else:
        worst = below.loc[below["ratio"].idxmin()]
        text += (f" So the fast law costs cosine in {len(below)} of {len(rademacher)} cells, at most "
                 f"{100 * (1 - worst['ratio']):.1f}% ({worst['aggregator']}, {names[worst['gradient']]}, "
                 f"$n$ = {worst['n']}, $k$ = {worst['k']})")
    cut = [(n, int(rows["k"].max())) for n, rows in rademacher[rademacher["aggregator"] == "projection"].groupby("n")
           if rows["k"].max() < min(n, max(ks))]
    if cut:
        text += ("; the projection pays at small $n$: it refuses linearly dependent tangents (Rademacher tangents "
                 "are dependent with a chance up to $(2^k - 2)/2^n$), so it ran here only for "
                 + " and ".join(f"$k \\le {k}$ at $n$ = {n}" for n, k in cut))
    return text + "."


def rq2_summary(traces: pd.DataFrame, config: optimization.OptimizationConfig | None = None) -> str:
    """The RQ2 page's closing paragraph: the claims of :func:`fg_analysis.experiments.optimization.scorecard` as a
    Markdown table."""
    claims = optimization.scorecard(traces, config)
    return (f"In this run {scorecard_count(claims).replace('claims', 'RQ2 claims', 1)}:\n\n"
            + markdown_table(claims[["claim", "paper", "ours", "verdict"]]))
