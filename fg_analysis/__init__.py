"""fg_analysis: multi-tangent forward gradients, their theory, and a live reproduction of
Flügel et al., "Beyond Backpropagation: Optimization with Multi-Tangent Forward Gradients" (arXiv 2410.17764).

One module per idea: :mod:`~fg_analysis.tangents` (tangent laws), :mod:`~fg_analysis.jvp` (directional
derivatives), :mod:`~fg_analysis.aggregate` (sum, mean, projection), :mod:`~fg_analysis.estimator`
(the one composition: :class:`~fg_analysis.estimator.ForwardGradient` and :func:`forward_gradient`),
:mod:`~fg_analysis.theory` (closed forms), :mod:`~fg_analysis.problems` and
:mod:`~fg_analysis.optimize` (test functions and gradient descent), :mod:`~fg_analysis.lrs` (the paper's
learning rates), :mod:`~fg_analysis.runs.cache` (results cache) and :mod:`~fg_analysis.runs.env` (devices, versions).
"""

from fg_analysis.aggregate import AGGREGATORS
from fg_analysis.estimator import ForwardGradient, forward_gradient
from fg_analysis.tangents import TANGENT_LAWS, tangent_law

__version__ = "0.1.0"
__all__ = ["AGGREGATORS", "TANGENT_LAWS", "ForwardGradient", "forward_gradient", "tangent_law", "__version__"]
