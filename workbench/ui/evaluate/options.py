"""The evaluation's options: which test set of the prompt, which split, the scoring mode,
a limit on the cases, and the metrics generated answers are scored with."""

from __future__ import annotations

from typing import get_args

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.core.evaluation import DEFAULT_METRICS, TEXT_METRICS
from workbench.core.flows.evaluate import default_split
from workbench.core.flows.report import METRIC_LABELS
from workbench.core.library import Library
from workbench.core.models import EvalMode, Split, TestSet
from workbench.core.testsets_io import rows_in_split
from workbench.ui.widgets import named

SPLITS: tuple[tuple[str, Split | None], ...] = (
    ("all", None),
    *((split, split) for split in get_args(Split)),
)
MODES: tuple[EvalMode, ...] = get_args(EvalMode)


class EvalOptions(QWidget):
    """Two rows of options (test set, split, mode, limit; then the metrics)."""

    test_set_picked = Signal()  # another test set (or none) is picked

    def __init__(self, library: Library, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self._prompt_id: str | None = None
        self.test_set_combo = named(QComboBox(), "evalTestSet")
        self.test_set_combo.setToolTip("The prompt's test sets (edit them in the Test sets panel)")
        self.split_combo = named(QComboBox(), "evalSplit")
        for label, value in SPLITS:
            self.split_combo.addItem(label, value)
        self.mode_combo = named(QComboBox(), "evalMode")
        for mode in MODES:
            self.mode_combo.addItem(mode, mode)
        self.mode_combo.setToolTip(
            "auto: score the labels by likelihood when the test set has a label set, "
            "else generate\ngenerate: sample an answer and compare it with the metrics\n"
            "likelihood: pick the most likely label (needs a label set)"
        )
        self.limit = named(QSpinBox(), "evalLimit")
        self.limit.setRange(0, 1_000_000)
        self.limit.setSpecialValueText("all")
        self.limit.setToolTip("Only the first N cases of the split (0 = all)")
        self.metric_boxes: dict[str, QCheckBox] = {}
        metrics_row = QHBoxLayout()
        metrics_row.addWidget(QLabel("Metrics:"))
        for name in TEXT_METRICS:
            box = named(QCheckBox(METRIC_LABELS.get(name, name)), f"evalMetric_{name}")
            box.setChecked(name in DEFAULT_METRICS)
            self.metric_boxes[name] = box
            metrics_row.addWidget(box)
        metrics_row.addStretch(1)
        options_row = QHBoxLayout()
        for label, widget, stretch in (
            ("Test set:", self.test_set_combo, 2),
            ("Split:", self.split_combo, 0),
            ("Mode:", self.mode_combo, 0),
            ("Limit:", self.limit, 0),
        ):
            options_row.addWidget(QLabel(label))
            options_row.addWidget(widget, stretch)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(options_row)
        layout.addLayout(metrics_row)
        self.test_set_combo.currentIndexChanged.connect(self._test_set_picked)

    def set_prompt_id(self, prompt_id: str | None) -> None:
        """Whose test sets to list (or none) from the next `refresh_test_sets`."""
        self._prompt_id = prompt_id

    def refresh_test_sets(self) -> None:
        """Re-list the prompt's test sets, keeping the current pick when it still exists."""
        current = self.test_set_combo.currentData()
        sets = self.library.test_sets_for(self._prompt_id) if self._prompt_id else []
        self.test_set_combo.blockSignals(True)
        self.test_set_combo.clear()
        for test_set in sets:
            self.test_set_combo.addItem(f"{test_set.name} ({len(test_set.rows)} rows)", test_set.id)
        index = self.test_set_combo.findData(current) if current is not None else -1
        self.test_set_combo.setCurrentIndex(index if index >= 0 else (0 if sets else -1))
        self.test_set_combo.blockSignals(False)
        if self.test_set_combo.currentData() != current:
            self._test_set_picked()
        else:
            self._update_split_counts()

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
        return [name for name, box in self.metric_boxes.items() if box.isChecked()]

    def selected_limit(self) -> int | None:
        """At most this many cases of the split (None = all)."""
        return self.limit.value() or None

    def set_editable(self, editable: bool) -> None:
        for widget in (
            self.test_set_combo,
            self.split_combo,
            self.mode_combo,
            self.limit,
            *self.metric_boxes.values(),
        ):
            widget.setEnabled(editable)

    def _test_set_picked(self) -> None:
        test_set = self.selected_test_set()
        # rows carrying splits: the held-out test split is the honest default
        split = default_split(test_set) if test_set is not None else None
        self.split_combo.setCurrentIndex(self.split_combo.findData(split))
        self._update_split_counts()
        self.test_set_picked.emit()

    def _update_split_counts(self) -> None:
        test_set = self.selected_test_set()
        for i, (label, value) in enumerate(SPLITS):
            count = len(rows_in_split(test_set, value)) if test_set else 0
            self.split_combo.setItemText(i, f"{label} ({count})" if test_set else label)
