"""The Run panel's views: the output with per-token probabilities on hover, the
side-by-side comparison of two runs, and the dialog that adds an OpenAI-compatible
server."""

from __future__ import annotations

import html
import math

from PySide6.QtCore import QEvent, QObject, QPoint
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


class CompareDialog(QDialog):
    """Two runs side by side: output, model and parameters."""

    def __init__(self, left: RunRecord, right: RunRecord, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("compareDialog")
        self.setWindowTitle("Compare runs")
        layout = QHBoxLayout(self)
        self.panes = []
        for run in (left, right):
            box = QGroupBox(run.created.astimezone().strftime("%d %b %H:%M:%S"))
            inner = QVBoxLayout(box)
            params = run.params.model_dump(exclude_defaults=True)
            inner.addWidget(
                QLabel(
                    f"{run.model} ({run.backend})\n{params or 'default parameters'}"
                    f"\nvariables: {run.variables}"
                )
            )
            text = QPlainTextEdit(readOnly=True)
            text.setFont(monospace())
            text.setPlainText(run.output)
            inner.addWidget(text)
            stats = run.stats
            inner.addWidget(
                QLabel(
                    f"{stats.completion_tokens} tokens · {(stats.tokens_per_s or 0):.1f} tokens/s"
                )
            )
            layout.addWidget(box)
            self.panes.append(text)
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
