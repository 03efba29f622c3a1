"""The Run panel's views: the output with per-token probabilities on hover, the
side-by-side comparison of two runs, and the dialog that adds an OpenAI-compatible
server."""

from __future__ import annotations

import html
import json
import math
from typing import Any

from PySide6.QtCore import QEvent, QObject, QPoint, Qt
from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from workbench.core.backends.base import TokenEvent
from workbench.core.flows.report import display_name, format_stats
from workbench.core.models import RunRecord
from workbench.ui.editor import monospace
from workbench.ui.widgets import named

TOKEN_PROPERTY = QTextCharFormat.Property.UserProperty + 1


def probability_colour(logprob: float) -> QColor:
    """Green for confident tokens through yellow to red for unlikely ones."""
    p = math.exp(max(logprob, -30.0))
    hue = int(120 * p)  # 0 = red, 120 = green
    return QColor.fromHsv(hue, 90, 255)


class OutputView(QTextEdit):
    """Read-only output; when probabilities are on, hovering a token shows its alternatives."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("outputText")
        self.setReadOnly(True)
        self.setFont(monospace())
        self.viewport().installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.viewport() and event.type() == QEvent.Type.ToolTip:
            text = self.token_tooltip(event.pos())  # type: ignore[attr-defined]
            if text:
                QToolTip.showText(event.globalPos(), text, self)  # type: ignore[attr-defined]
            else:
                QToolTip.hideText()
            return True
        return super().eventFilter(watched, event)

    def token_tooltip(self, pos: QPoint) -> str:
        cursor = self.cursorForPosition(pos)
        if not cursor.atBlockEnd():
            cursor.movePosition(QTextCursor.MoveOperation.Right)
        info = cursor.charFormat().property(TOKEN_PROPERTY)
        return str(info) if info else ""

    def append_token(self, event: TokenEvent, with_probability: bool) -> None:
        cursor = self.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        fmt = QTextCharFormat()
        if with_probability and event.logprob is not None:
            fmt.setBackground(probability_colour(event.logprob))
            lines = [f"<b>{html.escape(repr(event.text))}</b>  p = {math.exp(event.logprob):.3f}"]
            for text, logprob in event.top or ():
                lines.append(f"{html.escape(repr(text))}  {math.exp(logprob):.3f}")
            fmt.setProperty(TOKEN_PROPERTY, "<br>".join(lines))
        cursor.insertText(event.text, fmt)

    def append_plain(self, text: str, bold: bool = False) -> None:
        cursor = self.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        fmt = QTextCharFormat()
        if bold:
            fmt.setFontWeight(700)
            fmt.setForeground(QColor("#555"))
        cursor.insertText(text, fmt)


def _readable(value: Any) -> str:
    """One stored value as a person reads it: numbers plainly, lists and tables as JSON
    (quoted, so a stop string of a newline shows as "\\n"), long text cut short."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    text = str(value)
    if not text.strip():
        return json.dumps(text)  # "" or "\\n" rather than nothing
    first = text.strip().splitlines()[0]
    if len(first) > 80 or first != text.strip():
        first = first[:80].rstrip() + "…"
    return first


def describe_run_settings(run: RunRecord) -> str:
    """The model, the parameters that differ from the defaults and the variables, one
    "name: value" line each."""
    lines = [f"{run.model} ({run.backend})"]
    params = run.params.model_dump(exclude_defaults=True)
    if params:
        lines.append("Parameters:")
        lines += [f"  {display_name(k)}: {_readable(v)}" for k, v in params.items()]
    else:
        lines.append("Default parameters")
    if run.variables:
        lines.append("Variables:")
        lines += [f"  {name}: {_readable(value)}" for name, value in run.variables.items()]
    else:
        lines.append("No variables")
    return "\n".join(lines)


class CompareDialog(QDialog):
    """Two runs side by side: output, model and parameters. Close or Esc closes it."""

    def __init__(self, left: RunRecord, right: RunRecord, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("compareDialog")
        self.setWindowTitle("Compare runs")
        outer = QVBoxLayout(self)
        layout = QHBoxLayout()
        outer.addLayout(layout, 1)
        self.panes = []
        self.settings_labels: list[QLabel] = []
        for run in (left, right):
            box = QGroupBox(run.created.astimezone().strftime("%d %b %H:%M:%S"))
            inner = QVBoxLayout(box)
            settings = QLabel(describe_run_settings(run))
            settings.setObjectName("compareSettings")
            settings.setWordWrap(True)
            settings.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            inner.addWidget(settings)
            self.settings_labels.append(settings)
            text = QPlainTextEdit(readOnly=True)
            text.setFont(monospace())
            text.setPlainText(run.output)
            inner.addWidget(text)
            inner.addWidget(QLabel(format_stats(run.stats)))
            layout.addWidget(box)
            self.panes.append(text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        self.close_button = buttons.button(QDialogButtonBox.StandardButton.Close)
        self.close_button.setObjectName("compareClose")
        outer.addWidget(buttons)
        self.resize(900, 500)


class ServerDialog(QDialog):
    """An OpenAI-compatible server: its base URL, and optionally which of its models to
    use and the environment variable that holds its API key (the key itself is never
    stored)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add a server")
        form = QFormLayout(self)
        self.url = named(QLineEdit("http://127.0.0.1:8000/v1"), "serverUrl")
        self.remote_model = named(QLineEdit(), "serverModel")
        self.remote_model.setPlaceholderText("empty = the first model the server lists")
        self.api_key_env = named(QLineEdit(), "serverKeyEnv")
        self.api_key_env.setPlaceholderText("e.g. OPENAI_API_KEY; empty = no key")
        form.addRow("Base URL", self.url)
        form.addRow("Model on the server", self.remote_model)
        form.addRow("API key variable", self.api_key_env)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def values(self) -> tuple[str, dict[str, str]]:
        options = {
            "remote_model": self.remote_model.text().strip(),
            "api_key_env": self.api_key_env.text().strip(),
        }
        return self.url.text().strip(), {k: v for k, v in options.items() if v}
