"""The book runner: execute every notebook, record how, build the HTML strictly.

``python -m fg_analysis book --preset quick --device cpu --seed 0`` (what ``make book`` runs):

1. reads the page order from ``book/_toc.yml``; every page with a source notebook ``notebooks/<page>.ipynb``
   is executed with papermill into ``book/<page>.ipynb``, with the parameters ``preset``, ``device`` and
   ``seed`` injected after the notebook's cell tagged ``parameters``;
2. prints each notebook's pass/fail and run time and stops at the first failing notebook, printing its name
   and the failing cell's traceback, with a non-zero exit status (nothing is built then);
3. writes ``book/status.md``: per page its run time, preset, device and seed, plus the package versions
   (:func:`fg_analysis.runs.env.environment`);
4. runs ``jupyter-book build book/ --all -W --keep-going``: any Sphinx warning fails the build.

``--only NAME [NAME ...]`` runs a subset and reuses the other pages from an earlier run (recorded in
``book/_runs.json``); a page without a passing earlier run of its current source is an error.

Everything under ``book/`` that the runner writes (``*.ipynb``, ``status.md``, ``_runs.json``) and
``_build/`` are build outputs, ignored by git. Only ``notebooks/`` holds sources.

For notebook authors
--------------------
* The first cell is markdown and starts with a ``# Title`` (the strict build fails without one).
* One code cell is tagged ``parameters`` and defines at least ``preset = "quick"``, ``device = "cpu"`` and
  ``seed = 0``. The defaults are the quick preset: CI runs every notebook with them twice (nbval and the book
  test), so a notebook must finish in about 90 s on 2 CPU cores. ``preset = "paper"`` selects the paper's
  settings; ``device`` is ``"auto"``, ``"cpu"`` or ``"cuda"`` (pass it to
  :func:`fg_analysis.runs.env.resolve_device`).
* The first code cell after the parameters cell calls :func:`check_parameters` (``check_parameters(globals())``,
  tagged ``remove-cell``): a wrong type, an unknown value or an unknown name (a mistyped ``-p``) stops the page
  before any work.
* Only the parameters cell and the page's one call into the package are shown; every other code cell is
  tagged ``hide-input`` (or ``remove-input``/``remove-cell``). Figures come from :mod:`fg_analysis.publish.figures`,
  sentences from package functions, never typed-in numbers.
* Notebooks run with the ``notebooks/`` folder as working directory, under papermill (book) and nbval (CI).
  Reach data and result caches through ``fg_analysis`` (paths found from the package), never by paths
  relative to the working directory: the book test runs a copy of ``notebooks/`` in a temporary folder.
* ``pytest`` runs every notebook with nbval in lax mode: a cell that raises fails the test, and outputs are
  compared only for cells whose source contains the line ``# NBVAL_CHECK_OUTPUT``. Mark the cells whose
  printed numbers are deterministic and meaningful (a table of results at a fixed seed), not plots or
  progress bars.
* Store notebooks WITHOUT outputs, except those of ``# NBVAL_CHECK_OUTPUT`` cells, which nbval compares
  against. ``python -m fg_analysis refresh-checks [NAME ...]`` executes the source notebook(s) on their
  defaults and writes back only the outputs of marked cells (all others stripped); run it after changing a
  notebook and commit the result. ``tests/test_notebooks.py`` checks that stored notebooks follow these rules.
* Use plain ``tqdm`` (not ``tqdm.auto``) and never download anything.

Rerun one notebook: ``python -m fg_analysis book --only rq1_approximation`` (the others are reused), or run
it by hand with ``papermill notebooks/rq1_approximation.ipynb /tmp/out.ipynb -p preset paper -k python3``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import types
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

from fg_analysis.runs.env import environment
from fg_analysis.runs.paths import REPOSITORY

PRESETS = ("quick", "paper")
DEVICES = ("auto", "cpu", "cuda")
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
KERNEL_NAME = "python3"
STATUS_PAGE = "status"
RUNS_FILE = "_runs.json"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _say(message: str) -> None:
    print(message, flush=True)


class BookError(RuntimeError):
    """A problem with the book's sources or layout; the message says what to do."""


@dataclass(frozen=True)
class PageRun:
    """How one notebook page was executed: the record shown on the status page."""

    page: str
    passed: bool
    seconds: float
    preset: str
    device: str
    device_name: str
    seed: int
    finished: str
    source_sha256: str
    reused: bool = False


# --------------------------------------------------------------------------------------------------------
# Layout


def toc_pages(root: Path = REPOSITORY) -> list[str]:
    """Every page of ``book/_toc.yml`` in reading order (root first), as file names without suffix."""
    toc_path = Path(root) / "book" / "_toc.yml"
    if not toc_path.is_file():
        raise BookError(f"no table of contents at {toc_path}")
    toc = yaml.safe_load(toc_path.read_text())
    pages: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            for key in ("root", "file"):
                if key in node:
                    pages.append(str(Path(node[key]).with_suffix("")))
            for value in node.values():
                if isinstance(value, (list, dict)):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return pages


def notebook_pages(root: Path = REPOSITORY) -> list[str]:
    """The toc's pages that have a source notebook in ``notebooks/``, in toc order.

    Raises :class:`BookError` for a source notebook that the toc does not list (it would silently be left
    out of the book).
    """
    root = Path(root)
    pages = toc_pages(root)
    sources = {path.stem for path in (root / "notebooks").glob("*.ipynb")}
    orphans = sorted(sources - set(pages))
    if orphans:
        raise BookError(f"notebooks/{orphans[0]}.ipynb is not in book/_toc.yml; add it there (or move it out "
                        f"of notebooks/). Not in the toc: {', '.join(orphans)}")
    return [page for page in pages if page in sources]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_source(path: Path) -> None:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    if not any("parameters" in cell.get("metadata", {}).get("tags", []) for cell in nb.cells):
        raise BookError(f"{path} has no cell tagged 'parameters'; tag the cell that defines preset, device "
                        "and seed (papermill injects the runner's values after it)")


def _check_mathjax(root: Path) -> None:
    """Fail early when ``_config.yml`` points ``mathjax_path`` at a local copy that is missing."""
    config_path = root / "_config.yml"
    if not config_path.is_file():
        return
    config = yaml.safe_load(config_path.read_text()) or {}
    sphinx_config = (config.get("sphinx") or {}).get("config") or {}
    path = sphinx_config.get("mathjax_path")
    if not path or "://" in path:
        return
    # Sphinx serves a relative mathjax_path from _static/; resolve it inside the html output, whose files come
    # from the html_extra_path folders.
    relative = os.path.normpath(os.path.join("_static", path))
    for extra in sphinx_config.get("html_extra_path") or []:
        if (root / "book" / extra / relative).is_file():
            return
    raise BookError(f"MathJax is not vendored: _config.yml loads {relative!r} from html_extra_path "
                    f"{sphinx_config.get('html_extra_path')}, which does not have it; run `make mathjax`")


# --------------------------------------------------------------------------------------------------------
# Notebook parameters

#: the parameters every page takes, with their allowed values (a tuple) or type
PAGE_PARAMETERS = {"preset": PRESETS, "device": DEVICES, "seed": int}

# names IPython puts into a fresh kernel's namespace (besides those starting with "_")
_KERNEL_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


def check_parameters(namespace: dict, **spec) -> dict:
    """Validate a page's parameters before it does any work; return them as a dict.

    Call it in the first code cell after the ``parameters`` cell (and after the cell papermill injects,
    tagged ``injected-parameters``): ``check_parameters(globals())``. ``spec`` maps each parameter name to its
    allowed values (a tuple) or its type (default :data:`PAGE_PARAMETERS`: ``preset``, ``device``, ``seed``).
    Raises ``ValueError`` for a missing parameter, an unknown name (a typo such as ``-p presett paper`` would
    otherwise run the quick preset silently) or a value outside the allowed ones, and ``TypeError`` for a wrong
    type (``-p seed abc``).

    >>> check_parameters({"preset": "quick", "device": "cpu", "seed": 0})
    {'preset': 'quick', 'device': 'cpu', 'seed': 0}
    >>> check_parameters({"preset": "quick", "device": "cpu", "seed": "abc"})
    Traceback (most recent call last):
    ...
    TypeError: parameter seed must be an int; got 'abc' (str). Pass e.g. -p seed 0
    """
    spec = spec or PAGE_PARAMETERS
    hidden = set(_KERNEL_NAMES)
    try:  # names of the kernel's own start-up namespace
        hidden |= set(namespace["get_ipython"]().user_ns_hidden)
    except (KeyError, AttributeError, TypeError):
        pass

    unknown = sorted(name for name, value in namespace.items()
                     if not name.startswith("_") and name not in spec and name not in hidden
                     and not isinstance(value, types.ModuleType) and not callable(value))
    if unknown:
        raise ValueError(f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}: "
                         f"this page takes {', '.join(spec)} (check the spelling of -p)")
    values = {}
    for name, allowed in spec.items():
        if name not in namespace:
            raise ValueError(f"parameter {name} is not set; the parameters cell must define it")
        value = namespace[name]
        if isinstance(allowed, type):
            if not isinstance(value, allowed) or (allowed is int and isinstance(value, bool)):
                raise TypeError(f"parameter {name} must be an {allowed.__name__}; got {value!r} "
                                f"({type(value).__name__}). Pass e.g. -p {name} 0")
        elif value not in allowed:
            raise ValueError(f"parameter {name} = {value!r} is not one of {', '.join(map(repr, allowed))}")
        values[name] = value
    return values


# --------------------------------------------------------------------------------------------------------
# Execution


@contextlib.contextmanager
def _this_python_kernel():
    """Make the ``python3`` kernel run this interpreter (the virtualenv's ipykernel).

    ipykernel installs a ``python3`` kernelspec whose command is ``python``, which jupyter_client replaces by
    ``sys.executable``; but a ``python3`` kernelspec elsewhere (e.g. in ``~/.local/share/jupyter``) takes
    precedence and may point at another Python. In that case a kernelspec for this interpreter is put first
    on ``JUPYTER_PATH`` for the duration of the run.
    """
    try:
        command = KernelSpecManager().get_kernel_spec(KERNEL_NAME).argv[0]
    except NoSuchKernel:
        command = None
    generic = {"python", f"python{sys.version_info[0]}", "python%d.%d" % sys.version_info[:2]}
    if command in generic or (command and os.path.realpath(command) == os.path.realpath(sys.executable)):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="fg-kernel-") as folder:
        spec_dir = Path(folder) / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True)
        spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (fg_analysis)", "language": "python"}
        (spec_dir / "kernel.json").write_text(json.dumps(spec))
        previous = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = os.pathsep.join([folder] + ([previous] if previous else []))
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = previous


class NotebookFailed(RuntimeError):
    """A notebook raised while executing; ``report`` holds its name, failing cell and traceback."""

    def __init__(self, page: str, seconds: float, report: str):
        super().__init__(f"notebook {page!r} failed after {seconds:.1f} s\n{report}")
        self.page, self.seconds, self.report = page, seconds, report


def execute_page(page: str, *, root: Path = REPOSITORY, preset: str, device: str, seed: int,
                 device_name: str = "") -> PageRun:
    """Execute ``notebooks/<page>.ipynb`` into ``book/<page>.ipynb`` with papermill.

    Raises :class:`NotebookFailed` (with the failing cell's traceback) when a cell raises; papermill still
    writes the executed notebook, error included, for inspection.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    root = Path(root)
    source = root / "notebooks" / f"{page}.ipynb"
    target = root / "book" / f"{page}.ipynb"
    _check_source(source)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(source), str(target), parameters={"preset": preset, "device": device, "seed": seed},
            kernel_name=KERNEL_NAME, cwd=str(source.parent), progress_bar=False, log_output=False,
        )
    except PapermillExecutionError as error:
        seconds = time.perf_counter() - start
        trace = _ANSI.sub("", "\n".join(error.traceback))
        raise NotebookFailed(page, seconds, f"cell {error.cell_index} (execution count {error.exec_count}) "
                                            f"raised {error.ename}: {error.evalue}\n{trace}") from error
    except Exception as error:  # dead kernel, timeout, unreadable notebook: same gate
        seconds = time.perf_counter() - start
        raise NotebookFailed(page, seconds, f"{type(error).__name__}: {error}") from error
    seconds = time.perf_counter() - start
    _hide_default_parameters(target)
    return PageRun(page=page, passed=True, seconds=seconds, preset=preset, device=device,
                   device_name=device_name, seed=seed, finished=_now(), source_sha256=_sha256(source))


def _hide_default_parameters(path: Path) -> None:
    """In an executed notebook, hide the defaults cell that papermill's injected parameters supersede."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    tags = [cell.get("metadata", {}).get("tags", []) for cell in nb.cells]
    if not any("injected-parameters" in cell_tags for cell_tags in tags):
        return
    for cell, cell_tags in zip(nb.cells, tags):
        if "parameters" in cell_tags and "remove-cell" not in cell_tags:
            cell.metadata["tags"] = [*cell_tags, "remove-cell"]
    nbformat.write(nb, path)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _load_runs(root: Path) -> dict[str, PageRun]:
    path = root / "book" / RUNS_FILE
    if not path.is_file():
        return {}
    try:
        return {page: PageRun(**record) for page, record in json.loads(path.read_text()).items()}
    except (ValueError, TypeError):
        return {}


def _save_runs(root: Path, runs: dict[str, PageRun]) -> None:
    path = root / "book" / RUNS_FILE
    path.write_text(json.dumps({page: asdict(run) for page, run in runs.items()}, indent=1) + "\n")


# --------------------------------------------------------------------------------------------------------
# Status page and build


def page_records(root: Path, page: str) -> list[dict]:
    """The stored records an executed page says it shows (outputs of :func:`fg_analysis.publish.pages.show_records`)."""
    import nbformat

    path = Path(root) / "book" / f"{page}.ipynb"
    if not path.is_file():
        return []
    found = []
    for cell in nbformat.read(path, as_version=4).cells:
        for output in cell.get("outputs", []):
            found += output.get("metadata", {}).get("fg_records", [])
    return found


def status_markdown(runs: list[PageRun], environment: dict, *, total_seconds: float, command: str,
                    records: dict[str, list[dict]] | None = None) -> str:
    """The status page: one row per executed page, the stored records each page shows (commit, date, device),
    then the environment (versions, device, commit)."""
    lines = [
        "# Run status",
        "",
        "Every page of this book is a notebook that was executed by `python -m fg_analysis book` before the",
        "HTML was built; this page is written by that run. A page reused from an earlier run (`--only`) keeps",
        "its own preset, device and time.",
        "",
        f"Command: `{command}`. Built {_now()}"
        + (f" from commit `{environment['commit']}`." if environment.get("commit") else "."),
        f"Total notebook run time: {total_seconds:.1f} s.",
        "",
        "| Page | Result | Run time (s) | Preset | Device | Seed | Executed |",
        "| --- | --- | ---: | --- | --- | ---: | --- |",
    ]
    for run in runs:
        result = "pass" if run.passed else "FAIL"
        when = run.finished + (" (reused)" if run.reused else "")
        device = run.device_name if run.device_name.startswith(run.device) else f"{run.device}: {run.device_name}"
        lines.append(f"| {{doc}}`{run.page}` | {result} | {run.seconds:.1f} | {run.preset} | {device} | "
                     f"{run.seed} | {when} |")
    lines += ["", "## Records shown by the pages", ""]
    rows = [(page, record) for page, found in (records or {}).items() for record in found]
    if rows:
        lines += ["Results read from the cache or from `results/published` carry the commit, date and device they",
                  "were made with; a record made by this build has today's date. In summary, per page and kind:", "",
                  "| Page | Record | Records | Commits | Saved | Device |", "| --- | --- | ---: | --- | --- | --- |"]
        lines += [f"| {{doc}}`{page}` | {kind} | {count} | {commits} | {saved} | {device} |"
                  for page, kind, count, commits, saved, device in _record_summary(rows)]
        lines += ["", f"```{{admonition}} All {len(rows)} records", ":class: dropdown", "",
                  "| Page | Record | Key | Commit | Saved | Device |", "| --- | --- | --- | --- | --- | --- |"]
        for page, record in rows:
            lines.append(f"| {{doc}}`{page}` | {_record_kind(record)} | `{str(record.get('key', ''))[:16]}` | "
                         f"`{str(record.get('commit', ''))[:10]}` | {record.get('saved', '')} | "
                         f"{_record_device(record)} |")
        lines += ["```"]
    else:
        lines += ["No page shows a stored record: every result was computed by this build."]
    lines += ["", "## Environment", "", "| Package | Version |", "| --- | --- |"]
    lines += [f"| {name} | {version} |" for name, version in environment["versions"].items()]
    lines += ["", f"Device of this run: {environment['device_name']}. "
              f"Commit: {environment.get('commit') or 'unknown (not a git checkout, or no commit yet)'}.", ""]
    return "\n".join(lines)


def _record_kind(record: dict) -> str:
    return record.get("kind", "?") + (f" ({record['preset']})" if record.get("preset") else "")


def _record_device(record: dict) -> str:
    return record.get("device", "?") + (f": {record['device_name']}" if record.get("device_name") else "")


def _record_summary(rows: list[tuple[str, dict]], *, commits_shown: int = 3) -> list[tuple]:
    """``(page, kind, count, commits, saved, device)`` per page, record kind and device, in page order: the
    status page's summary of the records the pages show."""
    groups: dict[tuple, list[dict]] = {}
    for page, record in rows:
        groups.setdefault((page, _record_kind(record), _record_device(record)), []).append(record)
    summary = []
    for (page, kind, device), found in groups.items():
        commits = sorted({str(r.get("commit", ""))[:7] or "?" for r in found})
        shown = ", ".join(f"`{c}`" for c in commits[:commits_shown])
        if len(commits) > commits_shown:
            shown += f" and {len(commits) - commits_shown} more"
        dates = sorted({str(r.get("saved", ""))[:10] for r in found})
        summary.append((page, kind, len(found), shown, dates[0] if len(dates) == 1 else f"{dates[0]}..{dates[-1]}",
                        device))
    return summary


def build_html(root: Path = REPOSITORY, *, out=_say) -> int:
    """``jupyter-book build book/ --all -W --keep-going`` in ``root``; returns its exit status."""
    command = [str(Path(sys.executable).with_name("jupyter-book")), "build", "book/", "--all", "-W",
               "--keep-going"]
    if not Path(command[0]).exists():
        command[0:1] = [sys.executable, "-m", "jupyter_book.cli.main"]
    out("building: jupyter-book build book/ --all -W --keep-going")
    start = time.perf_counter()
    status = subprocess.run(command, cwd=root).returncode
    out(f"build {'passed' if status == 0 else 'FAILED (exit %d)' % status} in "
        f"{time.perf_counter() - start:.1f} s")
    return status


def run_book(*, preset: str = "quick", device: str = "cpu", seed: int = 0, only: list[str] | None = None,
             root: Path = REPOSITORY, build: bool = True, out=_say) -> int:
    """Execute the notebooks, write the status page and build the book; returns an exit status (0 = ok)."""
    root = Path(root)
    if preset not in PRESETS:
        raise BookError(f"unknown preset {preset!r}; use one of {PRESETS}")
    env = environment(device)  # validates the device before anything runs
    pages = notebook_pages(root)
    if not pages:
        raise BookError(f"no notebooks of book/_toc.yml found in {root / 'notebooks'}")
    unknown = sorted(set(only or ()) - set(pages))
    if unknown:
        raise BookError(f"--only: no notebook page named {', '.join(unknown)}; pages are {', '.join(pages)}")
    if build:
        _check_mathjax(root)

    previous = _load_runs(root)
    selected = [page for page in pages if only is None or page in only]
    for page in pages:  # check reuse up front, so a long run never ends in a missing page
        if page in selected:
            continue
        old = previous.get(page)
        if (old is None or not old.passed or not (root / "book" / f"{page}.ipynb").is_file()
                or old.source_sha256 != _sha256(root / "notebooks" / f"{page}.ipynb")):
            raise BookError(f"--only: page {page!r} has no passing earlier run of its current source in book/; "
                            f"add it to --only, or run the whole book without --only")

    out(f"running {len(selected)} notebook(s) with preset={preset} device={device} ({env['device_name']}) "
        f"seed={seed}")
    runs = dict(previous)
    total = 0.0
    with _this_python_kernel():
        for page in selected:
            try:
                run = execute_page(page, root=root, preset=preset, device=device, seed=seed,
                                   device_name=env["device_name"])
                run = PageRun(**{**asdict(run), "device": env["device"]})  # "auto" recorded as resolved
            except NotebookFailed as failure:
                runs.pop(page, None)
                _save_runs(root, runs)
                out(f"FAIL  {page}  ({failure.seconds:.1f} s)")
                out(f"notebook notebooks/{page}.ipynb failed; executed copy with the error: book/{page}.ipynb")
                out(failure.report)
                out("stopped at the first failing notebook; the book was not built")
                return 1
            total += run.seconds
            runs[page] = run
            _save_runs(root, runs)
            out(f"pass  {page}  ({run.seconds:.1f} s)")

    ordered = [runs[page] if page in selected else PageRun(**{**asdict(runs[page]), "reused": True})
               for page in pages]
    for run in ordered:
        if run.reused:
            out(f"reuse {run.page}  (preset={run.preset} device={run.device}, run {run.finished})")
    if len({(run.preset, run.device) for run in ordered}) > 1:
        out("note: the pages were run with different presets or devices; the status page shows each")
    command = f"python -m fg_analysis book --preset {preset} --device {device} --seed {seed}"
    if only:
        command += " --only " + " ".join(only)
    status = status_markdown(ordered, env, total_seconds=sum(run.seconds for run in ordered), command=command,
                             records={run.page: page_records(root, run.page) for run in ordered})
    (root / "book" / f"{STATUS_PAGE}.md").write_text(status)
    out(f"wrote book/{STATUS_PAGE}.md; notebooks took {total:.1f} s")
    if not build:
        return 0
    return 0 if build_html(root, out=out) == 0 else 2


# --------------------------------------------------------------------------------------------------------
# NBVAL_CHECK_OUTPUT refresh


def strip_outputs(nb) -> int:
    """Strip every code cell's outputs except those of cells marked ``# NBVAL_CHECK_OUTPUT``.

    Unmarked cells lose their outputs and execution count (nbval never compares an unexecuted cell); marked
    cells keep both. Notebook-level execution metadata is dropped. Returns the number of marked cells.
    """
    marked = 0
    for cell in nb.cells:
        cell.get("metadata", {}).pop("execution", None)
        if cell.cell_type != "code":
            continue
        if CHECK_MARK in cell.source:
            marked += 1
        else:
            cell.outputs = []
            cell.execution_count = None
    for key in ("papermill", "widgets"):
        nb.metadata.pop(key, None)
    return marked


def refresh_checks(pages: list[str] | None = None, *, root: Path = REPOSITORY, timeout: int = 900, out=_say) -> None:
    """Execute source notebooks on their defaults; store only the outputs of ``# NBVAL_CHECK_OUTPUT`` cells."""
    import nbformat
    from nbclient import NotebookClient

    root = Path(root)
    names = pages or sorted(path.stem for path in (root / "notebooks").glob("*.ipynb"))
    with _this_python_kernel():
        for name in names:
            path = root / "notebooks" / f"{Path(name).stem}.ipynb"
            if not path.is_file():
                raise BookError(f"no notebook {path}")
            nb = nbformat.read(path, as_version=4)
            start = time.perf_counter()
            NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=timeout,
                           resources={"metadata": {"path": str(path.parent)}}).execute()
            marked = strip_outputs(nb)
            nbformat.write(nb, path)
            out(f"refreshed notebooks/{path.name}: {marked} checked cell(s) kept, "
                f"{time.perf_counter() - start:.1f} s")


# --------------------------------------------------------------------------------------------------------
# Command line


def add_book_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=PRESETS, default="quick",
                        help="experiment size passed to every notebook (default: quick)")
    parser.add_argument("--device", choices=DEVICES, default="cpu",
                        help="device passed to every notebook (default: cpu)")
    parser.add_argument("--seed", type=int, default=0, help="seed passed to every notebook (default: 0)")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="run only these pages (e.g. rq1_approximation); reuse earlier runs of the others")
    parser.add_argument("--no-build", action="store_true",
                        help="execute and write the status page, but do not run jupyter-book")
    parser.add_argument("--root", type=Path, default=REPOSITORY, help=argparse.SUPPRESS)


def book_command(args: argparse.Namespace) -> int:
    only = [Path(name).stem for name in args.only] if args.only else None
    try:
        return run_book(preset=args.preset, device=args.device, seed=args.seed, only=only, root=args.root,
                        build=not args.no_build)
    except (BookError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def add_refresh_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="notebooks to refresh (default: all of notebooks/)")
    parser.add_argument("--root", type=Path, default=REPOSITORY, help=argparse.SUPPRESS)


def refresh_command(args: argparse.Namespace) -> int:
    try:
        refresh_checks(args.names or None, root=args.root)
    except BookError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
