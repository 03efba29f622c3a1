"""The evaluation's options: which test set of the prompt, which split, the scoring mode,
a limit on the cases, and the metrics generated answers are scored with.

The split follows the test set: its held-out `test` split once it has one, also when the
rows are split while the panel is open (`refresh_test_sets` after each change in the
Test sets panel). The limit starts at `DEFAULT_LIMIT`, so a first click never starts
hours of work. `show_settings` puts back the options an earlier run was made with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import get_args

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from workbench.core.evaluation import DEFAULT_METRICS, TEXT_METRICS, EvaluationError, choose_mode
from workbench.core.flows.estimate import DEFAULT_LIMIT, WorkEstimate, estimate_evaluation
from workbench.core.flows.evaluate import default_split, select_rows
from workbench.core.flows.report import METRIC_LABELS, count, display_name
from workbench.core.library import Library
from workbench.core.models import EvalMode, EvalRun, Split, TestSet, VariantSpec
from workbench.core.testsets_io import rows_in_split
from workbench.ui.widgets import named

SPLITS: tuple[tuple[str, Split | None], ...] = (
    ("all", None),
    *((split, split) for split in get_args(Split)),
)
MODES: tuple[EvalMode, ...] = get_args(EvalMode)

_UNSET = object()  # no default split applied yet


class EvalOptions(QWidget):
    """Two rows of options: test set and split; then mode, limit and metrics."""

    test_set_picked = Signal()  # another test set (or none) is picked
    changed = Signal()  # any option changed (the panel's estimate follows)

    def __init__(self, library: Library, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self._prompt_id: str | None = None
        self._applied_default: object = _UNSET  # the split default last put in the combo
        self.test_set_combo = named(QComboBox(), "evalTestSet")
        self.test_set_combo.setToolTip("The prompt's test sets (edit them in the Test sets panel)")
        self.test_set_combo.setMinimumContentsLength(12)
        self.test_set_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.split_combo = named(QComboBox(), "evalSplit")
        for label, value in SPLITS:
            self.split_combo.addItem(label, value)
        self.split_combo.setToolTip(
            "Which rows to run; a split test set starts on its held-out test rows"
        )
        self.mode_combo = named(QComboBox(), "evalMode")
        for mode in MODES:
            self.mode_combo.addItem(display_name(mode), mode)
        self.mode_combo.setToolTip(
            "automatic: label likelihood when the test set has a label set, else generate\n"
            "generate and compare: sample an answer and score it with the metrics\n"
            "label likelihood: pick the most likely label (needs a label set)"
        )
        self.limit = named(QSpinBox(), "evalLimit")
        self.limit.setRange(0, 1_000_000)
        self.limit.setSpecialValueText("all")
        self.limit.setValue(DEFAULT_LIMIT)
        self.limit.setToolTip(
            f"Only the first N cases of the split (all = every case). It starts at "
            f"{DEFAULT_LIMIT} for a quick first look; raise it for a result you can trust."
        )
        self.metrics_button = named(QToolButton(), "evalMetrics")
        self.metrics_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.metrics_button)
        self.metric_actions: dict[str, QAction] = {}
        for name in TEXT_METRICS:
            action = menu.addAction(METRIC_LABELS.get(name, name))
            action.setObjectName(f"evalMetric_{name}")
            action.setCheckable(True)
            action.setChecked(name in DEFAULT_METRICS)
            action.toggled.connect(self._metrics_changed)
            self.metric_actions[name] = action
        self.metrics_button.setMenu(menu)
        self._metrics_changed()

        first = QHBoxLayout()
        first.addWidget(QLabel("Test set:"))
        first.addWidget(self.test_set_combo, 1)
        first.addWidget(QLabel("Split:"))
        first.addWidget(self.split_combo)
        second = QHBoxLayout()
        for label, widget in (("Mode:", self.mode_combo), ("Limit:", self.limit)):
            second.addWidget(QLabel(label))
            second.addWidget(widget)
        second.addWidget(self.metrics_button)
        second.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(first)
        layout.addLayout(second)
        self.test_set_combo.currentIndexChanged.connect(self._test_set_picked)
        for signal in (
            self.split_combo.currentIndexChanged,
            self.mode_combo.currentIndexChanged,
            self.limit.valueChanged,
        ):
            signal.connect(lambda *_: self.changed.emit())

    def set_prompt_id(self, prompt_id: str | None) -> None:
        """Whose test sets to list (or none) from the next `refresh_test_sets`."""
        self._prompt_id = prompt_id

    def refresh_test_sets(self) -> None:
        """Re-list the prompt's test sets, keeping the current pick when it still exists;
        the split moves to the test split when the picked set has just been split."""
        current = self.test_set_combo.currentData()
        sets = self.library.test_sets_for(self._prompt_id) if self._prompt_id else []
        self.test_set_combo.blockSignals(True)
        self.test_set_combo.clear()
        for listed in sets:
            rows = count(len(listed.rows), "row")
            self.test_set_combo.addItem(f"{listed.name} ({rows})", listed.id)
        index = self.test_set_combo.findData(current) if current is not None else -1
        self.test_set_combo.setCurrentIndex(index if index >= 0 else (0 if sets else -1))
        self.test_set_combo.blockSignals(False)
        if self.test_set_combo.currentData() != current:
            self._test_set_picked()
            return
        test_set = self.selected_test_set()
        if test_set is not None and default_split(test_set) != self._applied_default:
            self._apply_default_split(test_set)  # split (or unsplit) since the last look
        self._update_split_counts()
        self.changed.emit()  # its rows may have changed

    def has_test_sets(self) -> bool:
        return self.test_set_combo.count() > 0

    def selected_test_set(self) -> TestSet | None:
        test_set_id = self.test_set_combo.currentData()
        return self.library.test_sets.get(test_set_id) if test_set_id else None

    def selected_split(self) -> Split | None:
        value: Split | None = self.split_combo.currentData()
        return value

    def selected_mode(self) -> EvalMode:
        mode: EvalMode = self.mode_combo.currentData()
        return mode

    def selected_metrics(self) -> list[str]:
        return [name for name, action in self.metric_actions.items() if action.isChecked()]

    def selected_limit(self) -> int | None:
        """At most this many cases of the split (None = all)."""
        return self.limit.value() or None

    def estimate(
        self,
        variants: Sequence[VariantSpec],
        history: Sequence[EvalRun],
        default_model: str | None,
    ) -> WorkEstimate | None:
        """The work these options describe for `variants`, timed by `history` (None
        while they describe none: no test set, no variant, a mode the set cannot take)."""
        test_set = self.selected_test_set()
        if test_set is None or not variants:
            return None
        try:
            mode = choose_mode(test_set, self.selected_mode())
        except EvaluationError:
            return None
        split = self.selected_split()
        return estimate_evaluation(
            len(select_rows(test_set, split, self.selected_limit())),
            variants,
            mode,
            history,
            default_model=default_model,
            available=len(rows_in_split(test_set, split)),
        )

    def set_editable(self, editable: bool) -> None:
        for widget in (
            self.test_set_combo,
            self.split_combo,
            self.mode_combo,
            self.limit,
            self.metrics_button,
        ):
            widget.setEnabled(editable)

    def show_settings(self, run: EvalRun) -> None:
        """Put back the options `run` was made with: its test set (while it exists), split,
        mode and metrics, and the limit its cases show (a complete run only: a stopped
        one does not say where it would have ended)."""
        index = self.test_set_combo.findData(run.test_set_id) if run.test_set_id else -1
        if index >= 0:
            self.test_set_combo.setCurrentIndex(index)
        self.split_combo.setCurrentIndex(max(0, self.split_combo.findData(run.split)))
        self.mode_combo.setCurrentIndex(max(0, self.mode_combo.findData(run.mode)))
        text_metrics = [m for m in run.metrics if m in self.metric_actions]
        if text_metrics or run.mode == "generate":
            for name, action in self.metric_actions.items():
                action.setChecked(name in text_metrics)
        test_set = self.selected_test_set() if index >= 0 else None
        if run.complete and test_set is not None:
            cases = len({r.row for results in run.results for r in results})
            available = len(rows_in_split(test_set, run.split))
            self.limit.setValue(0 if cases >= available else cases)
        self.changed.emit()

    def _metrics_changed(self) -> None:
        chosen = self.selected_metrics()
        self.metrics_button.setText(count(len(chosen), "metric"))
        labels = ", ".join(METRIC_LABELS.get(m, m) for m in chosen) or "none"
        self.metrics_button.setToolTip(
            f"What generated answers are scored with: {labels}\n"
            "(label likelihood always measures label accuracy)"
        )
        self.changed.emit()

    def _test_set_picked(self) -> None:
        test_set = self.selected_test_set()
        self._apply_default_split(test_set)
        self._update_split_counts()
        self.test_set_picked.emit()
        self.changed.emit()

    def _apply_default_split(self, test_set: TestSet | None) -> None:
        # rows carrying splits: the held-out test split is the honest default
        split = default_split(test_set) if test_set is not None else None
        self.split_combo.setCurrentIndex(self.split_combo.findData(split))
        self._applied_default = split if test_set is not None else _UNSET

    def _update_split_counts(self) -> None:
        test_set = self.selected_test_set()
        for i, (label, value) in enumerate(SPLITS):
            count_ = len(rows_in_split(test_set, value)) if test_set else 0
            self.split_combo.setItemText(i, f"{label} ({count_:,})" if test_set else label)
