"""Networks: data sets (:mod:`~fg_analysis.nets.data`), models (:mod:`~fg_analysis.nets.models`), the gradient
sources that train them by BP or forward gradients (:mod:`~fg_analysis.nets.gradients`, guided tangents in
:mod:`~fg_analysis.nets.guides`), the approaches' names (:mod:`~fg_analysis.nets.approaches`), the training loop
(:mod:`~fg_analysis.nets.training`) and many runs trained in one vmapped pass (:mod:`~fg_analysis.nets.batched`).

Layer 2: it imports the engine and :mod:`fg_analysis.runs` only.
"""
