"""Stored evaluations: the prompt's history list, and writing a run out as CSV or JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from PySide6.QtWidgets import QFileDialog, QWidget

from workbench.core.evaluation import export_csv as run_to_csv
from workbench.core.evaluation import export_json as run_to_json
from workbench.core.evaluation import primary_metric
from workbench.core.flows.report import METRIC_LABELS, count, format_score
from workbench.core.fsutil import atomic_write_text
from workbench.core.models import EvalRun, TestSet
from workbench.ui.models import NewestFirstModel

ExportKind = Literal["csv", "json"]


class EvalRunListModel(NewestFirstModel):
    """A prompt's stored evaluations, newest first."""

    def _text(self, run: EvalRun) -> str:
        when = run.created.astimezone().strftime("%d %b %H:%M:%S")
        primary = primary_metric(run)
        scores = " / ".join(format_score(primary, s.metrics.get(primary)) for s in run.summaries)
        stopped = " (stopped)" if not run.complete else ""
        label = METRIC_LABELS.get(primary, primary)
        return (
            f"{when} · {run.test_set_name or 'test set'} · {count(len(run.variants), 'variant')}"
            f" · {label} {scores}{stopped}"
        )

    def _tooltip(self, run: EvalRun) -> str:
        return f"{self._text(run)}\nvariants: {', '.join(v.name for v in run.variants)}"


def write_run_csv(path: str | Path, run: EvalRun, test_set: TestSet | None) -> None:
    """The run as CSV (one line per case and variant), written atomically; a deleted test
    set exports blank variables rather than failing."""
    atomic_write_text(Path(path), run_to_csv(run, test_set or TestSet(name=run.test_set_name)))


def write_run_json(path: str | Path, run: EvalRun) -> None:
    """The run as JSON, written atomically."""
    atomic_write_text(Path(path), run_to_json(run))


def ask_export_path(parent: QWidget, run: EvalRun, kind: ExportKind) -> str | None:
    """Where to export `run` (a save dialog named after its test set); None = cancelled."""
    name = f"{run.test_set_name or 'evaluation'}-{run.id}.{kind}"
    pattern = "CSV files (*.csv)" if kind == "csv" else "JSON files (*.json)"
    path, _ = QFileDialog.getSaveFileName(parent, f"Export as {kind.upper()}", name, pattern)
    return path or None
