"""Small widget helpers every panel uses: object names (what tests and the main window
look up), buttons with a tooltip, one error colour, a message line, and a combo box that
fits a narrow dock (its text elided, the whole text on hover)."""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QPaintEvent, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLayout,
    QListView,
    QPushButton,
    QSizePolicy,
    QStyle,
    QStyleOptionComboBox,
    QStylePainter,
    QVBoxLayout,
    QWidget,
)

ERROR_COLOR = "#c62828"
ERROR_STYLE = f"color: {ERROR_COLOR};"

_W = TypeVar("_W", bound=QWidget)

Part = QWidget | QLayout | tuple[QWidget, int]


def named(widget: _W, name: str) -> _W:
    """`widget` with its object name set."""
    widget.setObjectName(name)
    return widget


def wrapping_list(view: QListView) -> QListView:
    """A list whose long items wrap to the list's width instead of running out of it
    behind a sideways scroll bar (lists of earlier runs in narrow columns)."""
    view.setWordWrap(True)
    view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    view.setResizeMode(QListView.ResizeMode.Adjust)  # re-wrapped when the list resizes
    return view


def make_button(text: str, name: str, tip: str) -> QPushButton:
    """A push button with an object name and a tooltip."""
    result = named(QPushButton(text), name)
    result.setToolTip(tip)
    return result


def show_message(label: QLabel, text: str, *, error: bool = False) -> None:
    """Show `text` in a panel's message line (red for an error); hide it when empty."""
    label.setText(text)
    label.setProperty("error", error)
    label.setStyleSheet(ERROR_STYLE if error else "")
    label.setVisible(bool(text))


class MessageLine(QLabel):
    """A message line that wraps and always has the height its text needs: a long
    message takes more lines instead of being cut at the top and bottom (a splitter or
    a dock asks for the minimum size, which a wrapped QLabel underestimates). The text
    can be selected and copied; empty, it is hidden (it takes no room)."""

    def __init__(self, text: str = "") -> None:
        super().__init__(text)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)

    def setText(self, text: str) -> None:
        super().setText(text)
        self._show_if_text()
        self._fit()

    def clear(self) -> None:
        super().clear()
        self._show_if_text()
        self._fit()

    def _show_if_text(self) -> None:
        # without a parent, showing it would open it as a window: wait for the parent
        if self.parentWidget() is not None:
            self.setVisible(bool(self.text()))

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ParentChange:
            self._show_if_text()
        return super().event(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        needed = self.heightForWidth(max(self.width(), 1)) if self.text() else 0
        if needed != self.minimumHeight():
            self.setMinimumHeight(max(needed, 0))


class ElidedComboBox(QComboBox):
    """A combo box for a narrow column: it asks for room for `min_chars` characters, not
    for its longest item; the current text is cut with "…" where it does not fit and shown
    whole in the tooltip (above the combo's own help, `set_help`); the list that drops
    down is as wide as its longest item. The property "elides" tells layout checks that
    a text cut here is meant."""

    def __init__(self, min_chars: int = 12) -> None:
        super().__init__()
        self._help = ""
        self.setProperty("elides", True)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(min_chars)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.currentIndexChanged.connect(lambda _index: self._update_tip())

    def set_help(self, text: str) -> None:
        """What the combo is for, shown under the whole current text on hover."""
        self._help = text
        self._update_tip()

    def _update_tip(self) -> None:
        parts = [text for text in (self.currentText(), self._help) if text]
        self.setToolTip("\n\n".join(parts))

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QStylePainter(self)
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, option)
        field = self.style().subControlRect(
            QStyle.ComplexControl.CC_ComboBox,
            option,
            QStyle.SubControl.SC_ComboBoxEditField,
            self,
        )
        option.currentText = self.fontMetrics().elidedText(
            option.currentText, Qt.TextElideMode.ElideRight, field.width()
        )
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, option)

    def showPopup(self) -> None:
        metrics = self.view().fontMetrics()
        widest = max(
            (metrics.horizontalAdvance(self.itemText(i)) for i in range(self.count())),
            default=0,
        )
        self.view().setMinimumWidth(widest + 40)  # room for the check mark and a scroll bar
        super().showPopup()


def sentence(text: str) -> str:
    """`text` with a capital first letter (core messages start lower case, to follow a
    colon on the command line; the panels show them on their own)."""
    return text[:1].upper() + text[1:]


def selected_rows(view: QAbstractItemView) -> list[int]:
    """The rows of a view's selected cells, in order."""
    return sorted({index.row() for index in view.selectionModel().selectedIndexes()})


def delete_selected_rows(view: QAbstractItemView) -> None:
    """Remove the selected rows (the model has `remove_rows`: see ui/rows.py) and select
    the row that took the first one's place."""
    rows = selected_rows(view)
    model = view.model()
    if rows and model.remove_rows(rows):  # type: ignore[attr-defined]
        remaining = model.rowCount()
        if remaining:
            view.selectRow(min(rows[0], remaining - 1))  # type: ignore[attr-defined]


def titled_column(title: str, *parts: Part) -> QWidget:
    """A borderless column: a title line, then each part (a widget, a layout, or a
    (widget, stretch) pair for those that take the spare height)."""
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    heading = QLabel(title)
    heading.setWordWrap(True)  # a narrow column wraps its title rather than widening
    layout.addWidget(heading)
    for part in parts:
        if isinstance(part, tuple):
            layout.addWidget(*part)
        elif isinstance(part, QLayout):
            layout.addLayout(part)
        else:
            layout.addWidget(part)
    return box


def side_by_side(*widgets: QWidget) -> QHBoxLayout:
    """Widgets side by side."""
    row = QHBoxLayout()
    for widget in widgets:
        row.addWidget(widget)
    return row
