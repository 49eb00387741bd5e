"""The source notebooks follow the book's rules (see the docstring of fg_analysis.book).

nbval itself (configured in pyproject.toml) executes every notebook in notebooks/; these are the cheap checks
that a notebook can be run by the book runner and is stored the way nbval expects.
"""

from __future__ import annotations

import ast

import nbformat
import pytest

from fg_analysis import book

NOTEBOOKS = sorted((book.REPO / "notebooks").glob("*.ipynb"))


def test_every_notebook_is_in_the_toc():
    assert book.notebook_pages(book.REPO)  # raises for a notebook the toc does not list


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
