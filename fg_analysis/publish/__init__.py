"""Publishing the book: the runner that executes the notebooks and builds it (:mod:`~fg_analysis.publish.book`),
the pages' computed sentences and tables (:mod:`~fg_analysis.publish.pages`), their figures
(:mod:`~fg_analysis.publish.figures`) and the plotting helpers (:mod:`~fg_analysis.publish.plots`).

Layer 5, the top: it may import every other layer; nothing imports it but the command line.
"""
