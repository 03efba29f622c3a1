"""The prompt editor: system message, user template with highlighting and error
underlines, the variable form generated from the template, and a live preview of
exactly what the model will see, with its token count."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QRegularExpression, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from workbench.core.backends.base import BackendError
from workbench.core.models import CoTMode, Message, Prompt
from workbench.core.templates import (
    RenderedStep,
    TemplateError,
    prompt_variables,
    render_preview,
)
from workbench.ui.jobs import Job, JobRunner
from workbench.ui.widgets import ERROR_STYLE, named

log = logging.getLogger(__name__)

ChatTemplate = Callable[[list[Message]], str]
TokenCounter = Callable[[str], int]


def monospace() -> QFont:
    font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    font.setPointSize(max(font.pointSize(), 10))
    return font


class TemplateHighlighter(QSyntaxHighlighter):
    """Colours Jinja expressions, statements and comments in a template."""

    def __init__(self, document: QTextDocument) -> None:
        super().__init__(document)
        variable = QTextCharFormat()
        variable.setForeground(QColor("#1d5fbf"))
        variable.setFontWeight(QFont.Weight.Bold)
        variable.setBackground(QColor("#e8f0fc"))
        statement = QTextCharFormat()
        statement.setForeground(QColor("#8a3ea8"))
        comment = QTextCharFormat()
        comment.setForeground(QColor("#8a8a8a"))
        comment.setFontItalic(True)
        self.rules = [
            (QRegularExpression(r"\{\{.*?\}\}"), variable),
            (QRegularExpression(r"\{%.*?%\}"), statement),
            (QRegularExpression(r"\{#.*?#\}"), comment),
        ]

    def highlightBlock(self, text: str) -> None:
        for pattern, fmt in self.rules:
            matches = pattern.globalMatch(text)
            while matches.hasNext():
                match = matches.next()
                self.setFormat(match.capturedStart(), match.capturedLength(), fmt)


class TemplateEdit(QPlainTextEdit):
    """A template editor that can underline an error at a line and column."""

    def __init__(self, object_name: str, placeholder: str) -> None:
        super().__init__()
        self.setObjectName(object_name)
        self.setPlaceholderText(placeholder)
        self.setFont(monospace())
        self.setTabChangesFocus(True)
        self.highlighter = TemplateHighlighter(self.document())

    def show_error(self, line: int | None, column: int = 1) -> None:
        if line is None:
            self.setExtraSelections([])
            return
        block = self.document().findBlockByLineNumber(max(0, line - 1))
        cursor = QTextCursor(block)
        offset = min(max(0, column - 1), max(0, block.length() - 1))
        cursor.movePosition(QTextCursor.MoveOperation.Right, n=offset)
        cursor.movePosition(QTextCursor.MoveOperation.EndOfBlock, QTextCursor.MoveMode.KeepAnchor)
        if not cursor.hasSelection():
            cursor.movePosition(QTextCursor.MoveOperation.Left, QTextCursor.MoveMode.KeepAnchor)
        selection = QTextEdit.ExtraSelection()
        fmt = QTextCharFormat()
        fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
        fmt.setUnderlineColor(QColor("#d0302f"))
        selection.format = fmt  # type: ignore[attr-defined]
        selection.cursor = cursor  # type: ignore[attr-defined]
        self.setExtraSelections([selection])

    def has_error_underline(self) -> bool:
        return bool(self.extraSelections())


class PromptEditor(QWidget):
    """Edits the text parts of a prompt; the main window owns the working copy."""

    edited = Signal(dict)  # field updates for the working prompt
    graduate_requested = Signal()

    preview_shown = Signal()  # a render finished and is on screen (or its error is)

    def __init__(self, jobs: JobRunner | None = None) -> None:
        super().__init__()
        self.jobs = jobs  # renders run there (light lane); None: on this thread
        self._render_job: Job | None = None
        self._render_serial = 0
        self._loading = False
        self._prompt: Prompt | None = None
        self.chat_template: ChatTemplate | None = None
        self.count_tokens: TokenCounter | None = None
        self.model_label = ""

        self.graduate_button = named(QPushButton("Graduate to soft prompt…"), "graduateButton")
        self.graduate_button.setToolTip(
            "When a better prompt is not enough: train a soft prompt for this task on its "
            "examples and test set, and compare it with the hard prompt"
        )
        self.graduate_button.clicked.connect(self.graduate_requested)
        self.description = named(QLineEdit(), "descriptionEdit")
        self.description.setPlaceholderText("What this prompt is for")
        self.tags = named(QLineEdit(), "tagsEdit")
        self.tags.setPlaceholderText("tags, comma separated")
        self.system = TemplateEdit(
            "systemEdit", "System message (optional; may use {{ variables }})"
        )
        self.template = TemplateEdit(
            "templateEdit", "User message template, e.g.  Review: {{ review }}"
        )
        self.template_label = QLabel("User template")
        self.chain_hint = named(
            QLabel(
                "This prompt runs as a chain: the model is sent the chain steps (Chain of "
                "thought tab), not a user template. Set chain of thought to another mode "
                "to write one here."
            ),
            "chainTemplateHint",
        )
        self.chain_hint.setWordWrap(True)
        self.chain_hint.hide()
        self.error = named(QLabel(), "templateError")
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.setWordWrap(True)
        self.error.hide()

        self.form_box = QGroupBox("Variables")
        self.form_box.setObjectName("variablesBox")
        self.form = QFormLayout(self.form_box)
        self.var_fields: dict[str, QLineEdit] = {}
        self.no_vars = QLabel("The template has no {{ variables }}.")
        self.no_vars.setStyleSheet("color: #666;")
        self.form.addRow(self.no_vars)

        self.preview = named(QPlainTextEdit(readOnly=True), "previewText")
        self.preview.setFont(monospace())
        self.token_count = named(QLabel(), "tokenCount")
        preview_box = QGroupBox("What the model sees")
        preview_layout = QVBoxLayout(preview_box)
        preview_layout.addWidget(self.preview)
        preview_layout.addWidget(self.token_count)

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        meta = QFormLayout()
        meta.addRow("Description", self.description)
        meta.addRow("Tags", self.tags)
        top_layout.addLayout(meta)
        graduate_row = QHBoxLayout()
        graduate_row.addStretch(1)
        graduate_row.addWidget(self.graduate_button)
        top_layout.addLayout(graduate_row)
        top_layout.addWidget(QLabel("System message"))
        top_layout.addWidget(self.system, 1)
        top_layout.addWidget(self.template_label)
        top_layout.addWidget(self.template, 2)
        top_layout.addWidget(self.chain_hint)
        top_layout.addWidget(self.error)
        top_layout.addWidget(self.form_box)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        splitter.addWidget(preview_box)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

        self._preview_timer = QTimer(self, singleShot=True, interval=120)
        self._preview_timer.timeout.connect(self._refresh_preview)
        self.system.textChanged.connect(lambda: self._emit({"system": self.system.toPlainText()}))
        self.template.textChanged.connect(
            lambda: self._emit({"user_template": self.template.toPlainText()})
        )
        self.description.textEdited.connect(lambda text: self._emit({"description": text}))
        self.tags.textEdited.connect(
            lambda text: self._emit({"tags": [t.strip() for t in text.split(",") if t.strip()]})
        )
        self.setEnabled(False)

    # -- loading ---------------------------------------------------------------

    def set_prompt(self, prompt: Prompt | None) -> None:
        """Show a prompt (None: nothing selected) without emitting edits."""
        self._loading = True
        try:
            self._prompt = prompt
            self.setEnabled(prompt is not None)
            for line, text in (
                (self.description, prompt.description if prompt else ""),
                (self.tags, ", ".join(prompt.tags) if prompt else ""),
            ):
                line.setText(text)
                line.setCursorPosition(0)  # a long one shows its start, not its end
                line.setToolTip(text)
            if self.system.toPlainText() != (prompt.system if prompt else ""):
                self.system.setPlainText(prompt.system if prompt else "")
            if self.template.toPlainText() != (prompt.user_template if prompt else ""):
                self.template.setPlainText(prompt.user_template if prompt else "")
        finally:
            self._loading = False
        self.update_prompt(prompt)

    def update_prompt(self, prompt: Prompt | None) -> None:
        """The working copy changed (here or in another panel): refresh form and preview."""
        self._prompt = prompt
        self._show_template_or_chain_hint()
        self._rebuild_form()
        self._preview_timer.start()

    def _show_template_or_chain_hint(self) -> None:
        """A chain sends its steps, never the user template: the editor for it goes,
        and a hint says where the text the model gets is written."""
        chain = self._prompt is not None and self._prompt.cot.mode is CoTMode.CHAIN
        self.template_label.setVisible(not chain)
        self.template.setVisible(not chain)
        self.chain_hint.setVisible(chain)

    def _emit(self, update: dict[str, Any]) -> None:
        if not self._loading and self._prompt is not None:
            self.edited.emit(update)

    # -- variables form ---------------------------------------------------------

    def variable_names(self) -> list[str]:
        if self._prompt is None:
            return []
        try:
            return prompt_variables(self._prompt)
        except TemplateError:
            return list(self.var_fields)  # keep the form while the template is broken

    def _rebuild_form(self) -> None:
        names = self.variable_names()
        prompt = self._prompt
        if names != list(self.var_fields):
            for field in self.var_fields.values():
                self.form.removeRow(field)
            self.var_fields = {}
            for name in names:
                field = named(QLineEdit(), f"var_{name}")
                field.textEdited.connect(self._values_edited)
                self.form.addRow(name, field)
                self.var_fields[name] = field
        self.no_vars.setVisible(not names)
        if prompt is None:
            return
        for name, field in self.var_fields.items():
            value = prompt.sample_values.get(name, "")
            if field.text() != value:
                field.setText(value)
                field.setCursorPosition(0)
            declared = prompt.variable(name)
            hint = declared.default if declared and declared.default else f"value for {name}"
            field.setPlaceholderText(hint)
            if declared and declared.description:
                field.setToolTip(declared.description)

    def _values_edited(self) -> None:
        values = {name: field.text() for name, field in self.var_fields.items() if field.text()}
        self._emit({"sample_values": values})

    def values(self) -> dict[str, str]:
        return dict(self._prompt.sample_values) if self._prompt else {}

    # -- preview ---------------------------------------------------------------

    def set_model_hooks(
        self, chat_template: ChatTemplate | None, count_tokens: TokenCounter | None, label: str = ""
    ) -> None:
        self.chat_template = chat_template
        self.count_tokens = count_tokens
        self.model_label = label
        self._preview_timer.start()

    def _refresh_preview(self) -> None:
        """Render what the model sees. Templates may come from anywhere and, within the
        render budget, still take a while: with a job runner the render runs on its light
        lane and a newer edit supersedes an older render (its result is dropped)."""
        prompt = self._prompt
        self._render_serial += 1
        serial = self._render_serial
        if prompt is None:
            self._clear_errors()
            self.preview.clear()
            self.token_count.clear()
            self.preview_shown.emit()
            return
        values = {
            name: prompt.sample_values.get(name) or _default_or_placeholder(prompt, name)
            for name in self.variable_names()
        }
        if self.jobs is None:
            try:
                steps = render_preview(prompt, values)
            except TemplateError as exc:
                self._rendered(serial, exc)
                return
            self._rendered(serial, steps)
            return
        if self._render_job is not None:
            self._render_job.stop()  # not started yet: dropped; running: its result is

        def failed(exc: BaseException, trace: str) -> None:
            if not isinstance(exc, TemplateError):
                log.error("rendering the preview failed:\n%s", trace)
            self._rendered(serial, exc)

        self._render_job = self.jobs.run(
            "render preview",
            lambda cancel: render_preview(prompt, values),
            on_done=lambda steps: self._rendered(serial, steps),
            on_error=failed,
            lane="light",
        )

    def _clear_errors(self) -> None:
        self.system.show_error(None)
        self.template.show_error(None)
        self.error.hide()

    def _rendered(self, serial: int, outcome: Any) -> None:
        """Show a render's steps, or its error, unless a newer render was asked for."""
        if serial != self._render_serial:
            return
        self._render_job = None
        self._clear_errors()
        if isinstance(outcome, TemplateError):
            exc = outcome
            self.error.setText(f"{exc.field}, line {exc.line}, column {exc.column}: {exc.message}")
            self.error.show()
            if exc.field == "user_template":
                self.template.show_error(exc.line, exc.column)
            elif exc.field == "system":
                self.system.show_error(exc.line, exc.column)
            self.token_count.setText("")
        elif isinstance(outcome, BaseException):
            self.error.setText(f"Could not render the preview: {outcome}")
            self.error.show()
            self.token_count.setText("")
        else:
            self._show_steps(outcome)
        self.preview_shown.emit()

    def _show_steps(self, steps: list[RenderedStep]) -> None:
        chunks: list[str] = []
        tokens = 0
        unavailable = ""
        for step in steps:
            header = f"=== step: {step.name} ===\n" if step.name else ""
            text = "\n".join(f"[{m.role}]\n{m.content}\n" for m in step.messages)
            if self.chat_template is not None and not unavailable:
                try:  # a server may have no tokenizer endpoint, or be unreachable
                    templated = self.chat_template(step.messages)
                    if self.count_tokens is not None:
                        tokens += self.count_tokens(templated)
                    text = templated
                except BackendError as exc:
                    unavailable = str(exc)
            chunks.append(header + text)
        self.preview.setPlainText("\n".join(chunks))
        if unavailable:
            self.token_count.setText(f"token count unavailable: {unavailable}")
        elif self.count_tokens is not None and self.chat_template is not None:
            per = " (all steps, earlier outputs as placeholders)" if len(steps) > 1 else ""
            self.token_count.setText(
                f"{tokens} tokens with {self.model_label}'s chat template{per}"
            )
        else:
            self.token_count.setText("token count appears once a model is loaded")


def _default_or_placeholder(prompt: Prompt, name: str) -> str:
    declared = prompt.variable(name)
    if declared is not None and declared.default is not None:
        return declared.default
    return "{{ " + name + " }}"
