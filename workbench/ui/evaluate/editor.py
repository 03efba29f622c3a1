"""The variants box: the variants table with its combo-box cells, and the buttons that
add, remove and preset variants."""

from __future__ import annotations

from PySide6.QtCore import QSize, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from workbench.core.models import CoTMode, VariantSpec
from workbench.ui.evaluate.variants import VariantDelegate, VariantsModel
from workbench.ui.widgets import named

VISIBLE_ROWS = 3  # the table's height at rest: the settings stay compact


class _CompactTable(QTableView):
    """A table whose wanted height is its header and a few rows (it grows when the
    settings are given more room)."""

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()
        rows = self.verticalHeader().defaultSectionSize() * VISIBLE_ROWS
        height = self.horizontalHeader().sizeHint().height() + rows + 2 * self.frameWidth()
        return QSize(hint.width(), height)

    def minimumSizeHint(self) -> QSize:
        return QSize(super().minimumSizeHint().width(), self.sizeHint().height())


class VariantsEditor(QGroupBox):
    """Edits a `VariantsModel`; `changed` after the buttons add or remove variants."""

    changed = Signal()

    def __init__(self, model: VariantsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # the title shares its line with the buttons (a group box title would take a
        # line of its own above them: height the results need at 1366×768)
        self.setProperty("untitled", True)
        title = named(QLabel("Variants"), "groupTitle")
        self.model = model
        self.view = named(_CompactTable(), "evalVariants")
        self.view.setModel(model)
        self.view.setItemDelegate(VariantDelegate(self.view))
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # the columns of names share what the short choices leave (eliding a long name,
        # whole on hover), so every column stays in view at 1366 px
        for column in (VariantsModel.NAME, VariantsModel.MODEL, VariantsModel.TUNED):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch)
        # in a narrow tab the stretching columns keep room for their titles (the table
        # scrolls sideways rather than squeezing them to a sliver)
        header.setMinimumSectionSize(self.fontMetrics().horizontalAdvance("model") + 40)
        self.view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.view.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 10)
        self.view.setWordWrap(False)
        self.view.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.SelectedClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.add_button = named(QPushButton("Add variant"), "addVariant")
        self.remove_button = named(QPushButton("Remove"), "removeVariant")
        self.preset_button = named(QPushButton("Zero-shot / few-shot / CoT"), "presetZeroFewCot")
        self.preset_button.setToolTip(
            "Three variants: zero-shot (no examples, no CoT), few-shot (as the prompt), "
            "and zero-shot chain of thought"
        )
        # the title and buttons in a row above the table: it has the box's whole width
        buttons = QHBoxLayout()
        buttons.addWidget(title)
        buttons.addSpacing(8)
        for button in (self.add_button, self.remove_button, self.preset_button):
            button.setProperty("compact", True)  # a tool row: lower than a form's buttons
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 2)
        layout.setSpacing(4)
        layout.addLayout(buttons)
        layout.addWidget(self.view, 1)
        self.add_button.clicked.connect(self.add_variant)
        self.remove_button.clicked.connect(self.remove_selected)
        self.preset_button.clicked.connect(self.preset_zero_few_cot)

    def add_variant(self) -> None:
        row = self.model.add_variant(VariantSpec(name=self.model.unique_name()))
        self.view.setCurrentIndex(self.model.index(row, 0))
        self.changed.emit()

    def remove_selected(self) -> None:
        rows = sorted(
            {i.row() for i in self.view.selectionModel().selectedIndexes()}
            or ({self.view.currentIndex().row()} - {-1}),
            reverse=True,
        )
        for row in rows:
            self.model.removeRows(row, 1)
        self.changed.emit()

    def preset_zero_few_cot(self) -> None:
        """Zero-shot vs few-shot vs chain of thought, the classic three-way comparison."""
        self.model.set_variants(
            [
                VariantSpec(name="zero-shot", few_shot_count=0, cot_mode=CoTMode.OFF),
                VariantSpec(name="few-shot"),
                VariantSpec(name="chain-of-thought", cot_mode=CoTMode.ZERO_SHOT),
            ]
        )
        self.changed.emit()

    def set_editable(self, editable: bool) -> None:
        for widget in (self.add_button, self.remove_button, self.preset_button, self.view):
            widget.setEnabled(editable)
