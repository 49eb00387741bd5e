"""The source notebooks follow the book's rules (see the docstring of fg_analysis.publish.book).

nbval itself (configured in pyproject.toml) executes every notebook in notebooks/; these are the cheap checks
that a notebook can be run by the book runner and is stored the way nbval expects.
"""

from __future__ import annotations

import ast

import nbformat
import pytest

from fg_analysis.publish import book
from fg_analysis.runs.paths import REPOSITORY

NOTEBOOKS = sorted((REPOSITORY / "notebooks").glob("*.ipynb"))


def test_every_notebook_is_in_the_toc():
    assert book.notebook_pages(REPOSITORY)  # raises for a notebook the toc does not list


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_layout(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), \
        f"{path.name}: the first cell must be markdown starting with '# Title' (the strict build needs it)"

    tagged = [cell for cell in nb.cells if "parameters" in cell.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: tag exactly one code cell 'parameters' (found {len(tagged)})"
    defaults = {}
    for statement in ast.parse(tagged[0].source).body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
            if isinstance(target, ast.Name):
                defaults[target.id] = ast.literal_eval(statement.value)
    expected = {"preset": "quick", "device": "cpu", "seed": 0}
    assert {key: defaults.get(key) for key in expected} == expected, \
        f"{path.name}: the parameters cell must default to {expected}; found {defaults}"

    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and book.CHECK_MARK not in cell.source:
            assert not cell.outputs, (
                f"{path.name}: cell {index} has stored outputs but no '{book.CHECK_MARK}' mark; store notebooks "
                f"without outputs: `python -m fg_analysis refresh-checks {path.stem}`")
        if cell.cell_type == "code" and book.CHECK_MARK in cell.source:
            assert cell.execution_count is not None and cell.outputs, (
                f"{path.name}: cell {index} is marked '{book.CHECK_MARK}' but has no stored output to compare; "
                f"run `python -m fg_analysis refresh-checks {path.stem}`")


HIDDEN = {"hide-input", "remove-input", "remove-cell"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_parameters_are_checked_first(path):
    nb = nbformat.read(path, as_version=4)
    codes = [cell for cell in nb.cells if cell.cell_type == "code"]
    index = next(i for i, cell in enumerate(codes) if "parameters" in cell.metadata.get("tags", []))
    assert "check_parameters(globals())" in codes[index + 1].source, \
        f"{path.name}: the first code cell after the parameters must call fg_analysis.publish.book.check_parameters"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_pages_are_thin_for_the_reader(path):
    """Besides the parameters, at most one code cell is shown (the call into the package, a few lines); every
    other code cell is hidden in the HTML. No private names of the package, no typed-in file paths."""
    nb = nbformat.read(path, as_version=4)
    shown = [cell for cell in nb.cells if cell.cell_type == "code"
             and not HIDDEN & set(cell.metadata.get("tags", [])) and "parameters" not in cell.metadata.get("tags", [])]
    assert len(shown) <= 1, f"{path.name}: {len(shown)} visible code cells; tag all but the one call 'remove-input'"
    for cell in shown:
        assert len(cell.source.strip().splitlines()) <= 4, f"{path.name}: the visible code cell is too long"
    for cell in nb.cells:
        assert "reference/paper.md" not in cell.source, f"{path.name} cites a file that is not in the repository"
        if cell.cell_type == "code":
            assert "._" not in cell.source.replace("__", ""), f"{path.name} calls a private function"
