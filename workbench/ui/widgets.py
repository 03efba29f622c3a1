"""Small widget helpers every panel uses: object names (what tests and the main window
look up), buttons with a tooltip, one error colour, and a message line."""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLayout,
    QPushButton,
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
    layout.addWidget(QLabel(title))
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
