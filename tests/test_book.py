"""The book runner (fg_analysis.publish.book) and the built book.

The slow part runs ``python -m fg_analysis book`` end to end on the quick preset in a copy of the sources (so
the checkout's own book/ and _build/ are left alone), then checks every page of the toc: built, images
present, nothing loaded from the internet, and, in headless Chromium, rendered with MathJax (no raw TeX left).
The failure path and ``--only`` run on tiny notebooks made here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote, urlparse

import nbformat
import pytest
from bs4 import BeautifulSoup
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from fg_analysis.publish import book
from fg_analysis.runs.paths import REPOSITORY

REPO = REPOSITORY
PAGES = ["intro", "rq1_approximation", "rq2_optimization", "rq3_networks", "rq4_tradeoffs", "guided_tangents",
         "scorecard", "differences", "status"]
NOTEBOOK_PAGES = [page for page in PAGES if page not in ("differences", "status")]
RAW_TEX = re.compile(r"\$|\\[()\[\]]|\\(?:frac|begin|end|sqrt|mathbb|mathrm|nabla|top|sum|cdot)\b")


def run_cli(*args: str, cwd: Path = REPO, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fg_analysis", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


# ---------------------------------------------------------------------------------------------- layout (fast)


def test_toc_is_the_argument_one_part_per_question():
    assert book.toc_pages(REPO) == PAGES
    toc = (REPO / "book" / "_toc.yml").read_text()
    for caption in ("RQ1 Can multiple tangents improve forward gradients?", "RQ2 How should they be combined?",
                    "RQ3 Do they extend to real architectures?", "RQ4 What are the trade-offs?", "Beyond the paper",
                    "Reproduction"):
        assert f'caption: "{caption}"' in toc
    assert book.notebook_pages(REPO) == NOTEBOOK_PAGES


def test_strip_outputs_keeps_only_checked_cells():
    nb = new_notebook(cells=[new_code_cell("print(1)", execution_count=1),
                             new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(2)", execution_count=2)])
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="2\n")]
    assert book.strip_outputs(nb) == 1
    assert nb.cells[0].outputs == [] and nb.cells[0].execution_count is None
    assert nb.cells[1].outputs[0]["text"] == "2\n" and nb.cells[1].execution_count == 2


def test_cli_delegates_and_a_bad_setting_is_one_line(monkeypatch, capsys):
    """A delegated command's ValueError (a bad setting found after parsing) is one line and exit status 2."""
    import types

    from fg_analysis import __main__ as cli

    def main(argv):
        raise ValueError(f"bad setting {argv}")

    monkeypatch.setitem(sys.modules, "fg_analysis._delegated_for_test", types.SimpleNamespace(main=main))
    monkeypatch.setitem(cli.DELEGATED, "nothing", ("fg_analysis._delegated_for_test", "test"))
    assert cli.main(["nothing", "--x"]) == 2
    assert capsys.readouterr().err == "error: bad setting ['--x']\n"


# -------------------------------------------------------------------------------- failure path and --only


def make_root(tmp_path: Path, notebooks: dict[str, str]) -> Path:
    """A tiny book: one notebook per (name, code), toc in that order, a bare _config.yml."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "book").mkdir()
    names = list(notebooks)
    for name, code in notebooks.items():
        nb = new_notebook(cells=[new_markdown_cell(f"# Page {name}"),
                                 new_code_cell('preset = "quick"\ndevice = "cpu"\nseed = 0',
                                               metadata={"tags": ["parameters"]}),
                                 new_code_cell(code)])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, tmp_path / "notebooks" / f"{name}.ipynb")
    toc = f"format: jb-book\nroot: {names[0]}\nchapters:\n" + "".join(f"  - file: {n}\n" for n in names[1:])
    toc += "  - file: status\n"
    (tmp_path / "book" / "_toc.yml").write_text(toc)
    (tmp_path / "_config.yml").write_text('title: tiny\nonly_build_toc_files: true\n'
                                          'execute:\n  execute_notebooks: "off"\n')
    return tmp_path


def test_failing_notebook_stops_the_runner_and_nothing_is_built(tmp_path):
    root = make_root(tmp_path, {"first": "x = 1",
                                "broken": "def inner():\n    raise ValueError('deliberate failure 4711')\ninner()",
                                "after": "y = 2"})
    result = run_cli("book", "--root", str(root), timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "pass  first" in output
    assert "FAIL  broken" in output and "notebooks/broken.ipynb" in output
    assert "ValueError" in output and "deliberate failure 4711" in output
    assert "inner()" in output and "raise ValueError" in output  # the cell's traceback, not just the message
    assert "after" not in output.split("FAIL  broken")[1].split("\n")[0]
    assert not (root / "book" / "after.ipynb").exists(), "a notebook after the failing one was executed"
    assert not (root / "book" / "status.md").exists()
    assert not (root / "_build").exists(), "the book was built despite a failing notebook"


def test_a_sphinx_warning_fails_the_build(tmp_path):
    root = make_root(tmp_path, {"first": "x = 1"})
    nb = nbformat.read(root / "notebooks" / "first.ipynb", as_version=4)
    nb.cells[0].source += "\n\nSee {doc}`no_such_page`."
    nbformat.write(nb, root / "notebooks" / "first.ipynb")
    result = run_cli("book", "--root", str(root), timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "no_such_page" in output and "build FAILED" in output, output


def test_only_reuses_earlier_runs_and_refuses_missing_ones(tmp_path):
    root = make_root(tmp_path, {"first": "x = 1", "second": "y = 2"})
    quiet = dict(root=root, build=False, out=lambda message: None)
    with pytest.raises(book.BookError, match="'first'"):
        book.run_book(only=["second"], **quiet)

    assert book.run_book(**quiet) == 0
    said = []
    assert book.run_book(only=["second"], preset="paper", root=root, build=False, out=said.append) == 0
    assert any(line.startswith("reuse first") for line in said) and "pass  second" in " ".join(said)
    status = (root / "book" / "status.md").read_text()
    assert re.search(r"\{doc\}`first` \| pass \| [\d.]+ \| quick \| .*\(reused\)", status), status
    assert re.search(r"\{doc\}`second` \| pass \| [\d.]+ \| paper \| cpu", status), status
    assert "| torch |" in status

    # a changed source is not reused
    nb = nbformat.read(root / "notebooks" / "first.ipynb", as_version=4)
    nb.cells[-1].source = "x = 3"
    nbformat.write(nb, root / "notebooks" / "first.ipynb")
    with pytest.raises(book.BookError, match="'first'"):
        book.run_book(only=["second"], **quiet)


# ------------------------------------------------------------------------------ parameters checked first


def _parameter_notebook(path: Path) -> Path:
    """A tiny page: parameters, the check, then work that leaves a file behind."""
    nb = new_notebook(cells=[new_markdown_cell("# Parameters"),
                             new_code_cell('preset = "quick"\ndevice = "cpu"\nseed = 0',
                                           metadata={"tags": ["parameters"]}),
                             new_code_cell("from fg_analysis.publish.book import check_parameters\n"
                                           "check_parameters(globals())"),
                             new_code_cell("import pathlib\npathlib.Path('worked').write_text(f'{preset} {seed}')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize(("parameters", "error"), [
    ({"seed": "abc"}, "TypeError: parameter seed must be an int; got 'abc'"),
    ({"presett": "paper"}, "unknown parameter 'presett'"),
    ({"preset": "papr"}, "parameter preset = 'papr' is not one of"),
    ({"device": "gpu"}, "parameter device = 'gpu' is not one of"),
])
def test_papermill_parameters_are_validated_before_any_work(tmp_path, parameters, error):
    import papermill
    from papermill.exceptions import PapermillExecutionError

    source = _parameter_notebook(tmp_path / "page.ipynb")
    with book._this_python_kernel(), pytest.raises(PapermillExecutionError) as failure:
        papermill.execute_notebook(str(source), str(tmp_path / "out.ipynb"), parameters=parameters,
                                   kernel_name="python3", cwd=str(tmp_path), progress_bar=False)
    assert error in f"{failure.value.ename}: {failure.value.evalue}"
    assert not (tmp_path / "worked").exists(), "the page did work with invalid parameters"


def test_valid_parameters_run_the_page(tmp_path):
    import papermill

    source = _parameter_notebook(tmp_path / "page.ipynb")
    with book._this_python_kernel():
        papermill.execute_notebook(str(source), str(tmp_path / "out.ipynb"), parameters={"preset": "paper", "seed": 3},
                                   kernel_name="python3", cwd=str(tmp_path), progress_bar=False)
    assert (tmp_path / "worked").read_text() == "paper 3"


def test_a_real_page_refuses_a_string_seed_at_once(tmp_path):
    import time

    import papermill
    from papermill.exceptions import PapermillExecutionError

    start = time.perf_counter()
    with book._this_python_kernel(), pytest.raises(PapermillExecutionError, match="seed must be an int"):
        papermill.execute_notebook(str(REPO / "notebooks" / "rq3_networks.ipynb"), str(tmp_path / "out.ipynb"),
                                   parameters={"seed": "abc"}, kernel_name="python3",
                                   cwd=str(REPO / "notebooks"), progress_bar=False)
    assert time.perf_counter() - start < 60, "the page ran before its parameters were checked"


# ------------------------------------------------------------------------------ the real book, end to end


@pytest.fixture(scope="module")
def built_book(tmp_path_factory) -> Path:
    """Run ``python -m fg_analysis book`` (quick, cpu) on a copy of the sources; return its _build/html."""
    mathjax = REPO / "book" / "_extra" / "mathjax" / "tex-mml-chtml.js"
    if not mathjax.is_file():
        made = subprocess.run(["make", "-s", "mathjax"], cwd=REPO, capture_output=True, text=True)
        assert made.returncode == 0, f"`make mathjax` failed:\n{made.stdout}{made.stderr}"
    root = tmp_path_factory.mktemp("book_root")
    shutil.copy2(REPO / "_config.yml", root / "_config.yml")
    shutil.copytree(REPO / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    generated = {f"{page}.ipynb" for page in PAGES} | {"status.md", book.RUNS_FILE}
    shutil.copytree(REPO / "book", root / "book",
                    ignore=lambda folder, names: [n for n in names if n in generated or n == "_build"])
    result = run_cli("book", "--preset", "quick", "--device", "cpu", "--seed", "0", "--root", str(root))
    print(result.stdout[-5000:])
    assert result.returncode == 0, f"the book runner failed:\n{result.stdout[-20000:]}\n{result.stderr[-5000:]}"
    return root / "_build" / "html"


def local_file(html: Path, src: str) -> Path | None:
    """The file an <img src>/<script src> of page ``html`` points at, or None for data:/remote URLs."""
    url = urlparse(src)
    if url.scheme == "data":
        return None
    if url.scheme == "file":
        return Path(unquote(url.path))
    assert not url.scheme and not url.netloc, f"{html.name} loads {src} from the network"
    return (html.parent / unquote(url.path)).resolve()


def check_images(html: Path, soup: BeautifulSoup) -> int:
    count = 0
    for img in soup.find_all("img"):
        src = img.get("src")
        assert src, f"{html.name}: <img> without src"
        path = local_file(html, src)
        if path is not None:
            assert path.is_file() and path.stat().st_size > 0, f"{html.name}: image {src} is missing"
        count += 1
    return count


@pytest.mark.slow
def test_every_page_is_built_with_its_images(built_book):
    for page in PAGES:
        html = built_book / f"{page}.html"
        assert html.is_file(), f"{page}.html was not built"
        soup = BeautifulSoup(html.read_text(), "html.parser")
        assert soup.find("h1"), f"{page}.html has no title"
        check_images(html, soup)
        for tag, attr in (("script", "src"), ("link", "href")):
            for element in soup.find_all(tag):
                if element.get(attr) and (tag == "script" or "stylesheet" in (element.get("rel") or [])):
                    path = local_file(html, element[attr].split("?")[0])
                    assert path is None or path.is_file(), f"{page}.html: {element[attr]} is missing"
    assert (built_book / "mathjax" / "tex-mml-chtml.js").is_file(), "MathJax was not copied into the book"


def test_status_page_summarizes_records_and_folds_the_list():
    records = {"rq2_optimization": [{"kind": "OptimizationRun", "key": f"{i:016x}", "commit": f"abc{i % 4}def",
                                     "saved": f"2026-12-0{1 + i % 2}T10:00:00", "device": "cpu"} for i in range(40)]}
    run = book.PageRun("rq2_optimization", True, 1.0, "quick", "cpu", "cpu (x86_64)", 0, "now", "0" * 64)
    text = book.status_markdown([run], {"versions": {"torch": "2"}, "device_name": "cpu"}, total_seconds=1.0,
                                command="make book", records=records)
    summary = [line for line in text.splitlines() if line.startswith("| {doc}`rq2_optimization` | OptimizationRun")]
    assert summary[0].split(" | ")[2:5] == ["40", "`abc0def`, `abc1def`, `abc2def` and 1 more",
                                              "2026-12-01..2026-12-02"]
    assert "```{admonition} All 40 records" in text and ":class: dropdown" in text
    assert len(summary) == 1 + 40  # the summary row, then every record inside the folded list


@pytest.mark.slow
def test_status_page_records_preset_device_and_versions(built_book):
    status = (built_book.parent.parent / "book" / "status.md").read_text()
    for page in NOTEBOOK_PAGES:
        assert re.search(rf"\{{doc\}}`{page}` \| pass \| [\d.]+ \| quick \| cpu", status), status
    for package in ("torch", "numpy", "papermill", "jupyter-book"):
        assert f"| {package} |" in status
    assert "rq1_approximation" in (built_book / "status.html").read_text()


def render(chromium: str, html: Path) -> str:
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--window-size=1280,900",
             "--dump-dom", html.as_uri()],
            capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, f"chromium failed on {html.name}: {result.stderr[-2000:]}"
    return result.stdout


@pytest.mark.slow
def test_pages_render_in_a_browser_with_math(built_book):
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("chromium is not installed (`apt-get install -y chromium`; `make test` installs it)")
    pages = [built_book / f"{page}.html" for page in PAGES]
    with ThreadPoolExecutor(max_workers=2) as pool:
        doms = list(pool.map(lambda html: render(chromium, html), pages))
    for html, dom in zip(pages, doms):
        soup = BeautifulSoup(dom, "html.parser")
        article = soup.find("article") or soup.body
        assert article is not None, f"{html.name}: blank page"
        check_images(html, soup)
        source = BeautifulSoup(html.read_text(), "html.parser")
        source_math = (source.find("article") or source.body).select(".math")
        rendered = article.select(".math")
        assert len(rendered) == len(source_math), f"{html.name}: math elements lost in the browser"
        unrendered = [element.get_text() for element in rendered if element.find("mjx-container") is None]
        assert not unrendered, f"{html.name}: MathJax did not render {unrendered[:3]}"
        for element in article.find_all(["script", "style", "pre", "code", "mjx-container", "noscript"]):
            element.decompose()
        text = article.get_text(" ", strip=True)
        assert len(text) > 40, f"{html.name}: blank page (text: {text!r})"
        raw = sorted({match.group() for match in RAW_TEX.finditer(text)})
        assert not raw, f"{html.name}: raw TeX {raw} visible in {text[:800]!r}"


# ------------------------------------------------------------------ reader's layout in a real browser

#: run in the page after load: elements wider than the text column (outside scrolling containers), each
#: image's natural and rendered width, the line counts of visible code cells, the text of outputs
LAYOUT_SCRIPT = r"""
<script>
window.addEventListener('load', function () { setTimeout(function () {
  var main = document.querySelector('article') || document.body;
  var limit = main.getBoundingClientRect().right + 2;
  var wide = [];
  main.querySelectorAll('*').forEach(function (el) {
    var r = el.getBoundingClientRect();
    if (r.width === 0 || r.right <= limit) return;
    for (var p = el.parentElement; p && p !== main; p = p.parentElement) {
      var o = getComputedStyle(p).overflowX;
      if (o === 'auto' || o === 'scroll' || o === 'hidden') return;
    }
    wide.push(el.tagName.toLowerCase() + '.' + String(el.className).split(' ')[0] + ' ' + Math.round(r.right));
  });
  var images = [];
  main.querySelectorAll('img').forEach(function (img) {
    images.push([img.getAttribute('src'), img.naturalWidth, img.getBoundingClientRect().width]);
  });
  var code = [];
  main.querySelectorAll('div.cell_input').forEach(function (el) {
    if (el.offsetHeight > 0) code.push(el.innerText.trim().split('\n').length);
  });
  var outputs = [];
  main.querySelectorAll('div.cell_output, table').forEach(function (el) { outputs.push(el.innerText); });
  var out = document.createElement('pre'); out.id = 'fg-layout-check';
  out.textContent = JSON.stringify({width: main.getBoundingClientRect().width, wide: wide.slice(0, 10),
                                    images: images, code: code, outputs: outputs});
  document.body.appendChild(out);
}, 1500); });
</script>
"""
EMOJI = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF\u2B50\u2B55\uFE0F]")
TQDM = re.compile(r"\d+%\|[█▏▎▍▌▋▊▉ #]*\||\bit/s\b|s/it\b")
RAW_NAN = re.compile(r"(?<![\w.])(nan|NaN|None)(?![\w.])")
#: a figure may be shown at no less than this fraction of its natural width (tick labels stay >= 9 pt)
MIN_SCALE = 0.9


def browser(chromium: str, html: Path, *args: str, width: int = 1400, height: int = 900) -> str:
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", f"--user-data-dir={profile}", "--virtual-time-budget=6000",
             f"--window-size={width},{height}", *args, html.as_uri()],
            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"chromium failed on {html.name}: {result.stderr[-2000:]}"
    return result.stdout


@pytest.mark.slow
def test_pages_read_well_in_a_browser(built_book):
    """At 1400 px: nothing wider than the text column, figures at >= 90% of their size, no tqdm, raw NaN or
    emoji, no long visible code on a question page. Screenshots of every page at 1400 px and 390 px (a phone)
    land in _build/screenshots for a look."""
    import json

    chromium = find_chromium()
    if chromium is None:
        pytest.skip("chromium is not installed (`apt-get install -y chromium`; `make test` installs it)")
    shots = built_book.parent / "screenshots"
    shots.mkdir(exist_ok=True)
    problems = []
    for page in PAGES:
        html = built_book / f"{page}.html"
        probe = html.with_name(f"_layout_{page}.html")
        probe.write_text(html.read_text().replace("</body>", LAYOUT_SCRIPT + "</body>"))
        dom = browser(chromium, probe, "--dump-dom")
        probe.unlink()
        found = BeautifulSoup(dom, "html.parser").find(id="fg-layout-check")
        assert found is not None, f"{page}: the layout probe did not run"
        layout = json.loads(found.get_text())
        if layout["wide"]:
            problems.append(f"{page}: wider than the text column ({layout['width']:.0f} px): {layout['wide']}")
        for src, natural, shown in layout["images"]:
            if natural and shown / natural < MIN_SCALE:
                problems.append(f"{page}: {src} is {natural} px wide, shown at {shown:.0f} px "
                                f"({100 * shown / natural:.0f}%): its tick labels shrink below 9 pt")
        text = "\n".join(layout["outputs"])
        for name, pattern in (("tqdm", TQDM), ("raw NaN/None", RAW_NAN)):
            if match := pattern.search(text):
                problems.append(f"{page}: {name} in an output: {text[max(0, match.start() - 60):match.end() + 60]!r}")
        if match := EMOJI.search(BeautifulSoup(dom, "html.parser").get_text()):
            problems.append(f"{page}: emoji {match.group()!r} (renders as a box without an emoji font)")
        if page.startswith("rq") and any(lines > 6 for lines in layout["code"]):
            problems.append(f"{page}: a visible code cell of {max(layout['code'])} lines")
        for width, height in ((1400, 900), (390, 844)):
            browser(chromium, html, f"--screenshot={shots / f'{page}-{width}.png'}", width=width, height=height)
            assert (shots / f"{page}-{width}.png").stat().st_size > 0
    assert not problems, "\n".join(problems)
