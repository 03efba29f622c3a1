"""The Evaluate panel: run prompt variants over a test set and compare them.

`variants` (the variants table), `options` (test set, split, mode, limit, metrics),
`results` (the results grid and the summary), `history` (stored runs and their exports)
and `panel` (the panel that wires them to one evaluation job).
"""

from workbench.ui.evaluate.history import EvalRunListModel
from workbench.ui.evaluate.options import EvalOptions
from workbench.ui.evaluate.panel import EvaluatePanel
from workbench.ui.evaluate.results import (
    FAIL_COLOUR,
    PASS_COLOUR,
    ResultsGridModel,
    SummaryModel,
    case_tooltip,
)
from workbench.ui.evaluate.variants import VariantDelegate, VariantsModel

__all__ = [
    "FAIL_COLOUR",
    "PASS_COLOUR",
    "EvalOptions",
    "EvalRunListModel",
    "EvaluatePanel",
    "ResultsGridModel",
    "SummaryModel",
    "VariantDelegate",
    "VariantsModel",
    "case_tooltip",
]
