"""The Graduate tab: train a soft prompt from the working prompt, watch it learn, and
compare it with the hard prompt.

- `settings`: the training settings form (TrainConfig <-> widgets, steps or epochs,
  the device label);
- `plot`: the live loss / validation plot over ring buffers;
- `comparison`: the held-out comparison table;
- `nearest`: the nearest vocabulary tokens of each virtual token;
- `soft_prompts`: the prompt's soft prompts, PEFT adapter export and import;
- `panel`: `GraduatePanel`, which wires them to one `graduation.graduate()` job.

What training will use, the `TrainConfig` and the error messages come from
`workbench.core.graduation`; nearest tokens from `workbench.core.flows.nearest`.
Nothing heavy (torch, transformers, peft) is imported on the GUI thread, and
pyqtgraph only when the plot is first shown.
"""

from __future__ import annotations

from workbench.core.flows.report import format_step
from workbench.core.graduation import describe_prepared, describe_training_error
from workbench.core.tuning import StepEvent
from workbench.ui.graduate.comparison import ComparisonModel
from workbench.ui.graduate.nearest import NearestTokensModel
from workbench.ui.graduate.panel import GraduatePanel
from workbench.ui.graduate.plot import REDRAW_MS, LossPlot, RingSeries
from workbench.ui.graduate.settings import DEVICES, INITS, PRECISIONS, TrainingSettings
from workbench.ui.graduate.soft_prompts import SoftPromptListModel, SoftPrompts


def step_status(event: StepEvent, paused: bool = False) -> str:
    """The status line of a training step (`flows.report.format_step`)."""
    return format_step(event, paused)


__all__ = [
    "DEVICES",
    "INITS",
    "PRECISIONS",
    "REDRAW_MS",
    "ComparisonModel",
    "GraduatePanel",
    "LossPlot",
    "NearestTokensModel",
    "RingSeries",
    "SoftPromptListModel",
    "SoftPrompts",
    "TrainingSettings",
    "describe_prepared",
    "describe_training_error",
    "step_status",
]
