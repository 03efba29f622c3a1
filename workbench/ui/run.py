"""The run panel: model picker, sampling parameters, Run/Stop, live output with
per-token probabilities, run statistics, and the prompt's run history with a
side-by-side comparison of two runs."""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, QPoint, Qt, Signal
from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTextEdit,
    QToolButton,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from workbench.core.backends.base import (
    Backend,
    BackendError,
    BackendSettings,
    TokenEvent,
    load_settings,
    save_settings,
)
from workbench.core.backends.registry import ModelCatalog, backends_for, spec_for
from workbench.core.library import Library
from workbench.core.models import GenerationParams, ModelSpec, Prompt, RunRecord
from workbench.core.running import RunFinished, StepFinished, StepStarted, run_prompt
from workbench.core.templates import TemplateError
from workbench.ui.editor import monospace
from workbench.ui.jobs import Job, JobRunner
from workbench.ui.models import RunListModel
from workbench.ui.widgets import titled_column

TOKEN_PROPERTY = QTextCharFormat.Property.UserProperty + 1


def probability_colour(logprob: float) -> QColor:
    """Green for confident tokens through yellow to red for unlikely ones."""
    p = math.exp(max(logprob, -30.0))
    hue = int(120 * p)  # 0 = red, 120 = green
    return QColor.fromHsv(hue, 90, 255)


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, BackendError | TemplateError | ValueError | OSError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class OutputView(QTextEdit):
    """Read-only output; when probabilities are on, hovering a token shows its alternatives."""

    def __init__(self) -> None:
        super().__init__(objectName="outputText", readOnly=True)
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


class RunPanel(QWidget):
    """Runs the working prompt on the selected model; keeps every run as a RunRecord."""

    run_saved = Signal(object)
    model_ready = Signal(object)  # the loaded Backend, or None while loading/after failure

    def __init__(
        self,
        library: Library,
        jobs: JobRunner,
        current_prompt: Callable[[], Prompt | None],
        params_changed: Callable[[GenerationParams], None],
        settings: BackendSettings | None = None,
    ) -> None:
        super().__init__()
        self.library = library
        self.jobs = jobs
        self.current_prompt = current_prompt
        self.params_changed = params_changed
        self.settings = settings or load_settings()
        self.catalog = ModelCatalog()
        self.backend: Backend | None = None
        self._backend_key: tuple[str, str] | None = None
        self._run_job: Job | None = None
        self._loading_params = False
        self._step_text = ""

        self.model_picker = QComboBox(objectName="modelPicker")
        self.add_model = QToolButton(objectName="addModel", text="Add…")
        self.add_model.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.add_model)
        menu.addAction("GGUF file…", self._add_gguf)
        menu.addAction("Hugging Face folder…", self._add_folder)
        menu.addAction("OpenAI-compatible server…", self._add_server)
        self.add_model.setMenu(menu)
        self.model_status = QLabel(objectName="modelStatus")
        self.model_status.setWordWrap(True)

        self.temperature = QDoubleSpinBox(
            objectName="temperature", minimum=0.0, maximum=5.0, singleStep=0.1, decimals=2
        )
        self.top_p = QDoubleSpinBox(
            objectName="topP", minimum=0.01, maximum=1.0, singleStep=0.05, decimals=2
        )
        self.top_k = QSpinBox(objectName="topK", minimum=0, maximum=1000)
        self.top_k.setSpecialValueText("off")
        self.max_tokens = QSpinBox(objectName="maxTokens", minimum=1, maximum=32768)
        self.repetition = QDoubleSpinBox(
            objectName="repetitionPenalty", minimum=0.1, maximum=5.0, singleStep=0.05, decimals=2
        )
        self.threads = QSpinBox(objectName="threads", minimum=1, maximum=256)
        self.threads.setValue(self.settings.threads)
        self.threads.setToolTip(
            "CPU threads for the model (default: physical cores; more oversubscribes the "
            "CPU). Applies when a model is loaded; saved for next time."
        )
        self.threads.valueChanged.connect(self._threads_changed)
        self.seed = QSpinBox(objectName="seed", minimum=-1, maximum=2**31 - 1)
        self.seed.setSpecialValueText("random")
        self.soft_prompt = QComboBox(objectName="softPromptPicker")
        self.soft_prompt.setToolTip(
            "Run with one of this prompt's soft prompts (graduated "
            "from it): virtual tokens before the prompt"
        )
        self.stops = QPlainTextEdit(objectName="stopStrings")
        self.stops.setPlaceholderText("one stop string per line (\\n for a newline)")
        self.stops.setFixedHeight(48)
        params = QFormLayout()
        params.addRow("Temperature", self.temperature)
        params.addRow("Top p", self.top_p)
        params.addRow("Top k", self.top_k)
        params.addRow("Max new tokens", self.max_tokens)
        params.addRow("Repetition penalty", self.repetition)
        params.addRow("Seed", self.seed)
        params.addRow("Stop strings", self.stops)
        params.addRow("Soft prompt", self.soft_prompt)
        params.addRow("CPU threads", self.threads)
        for spin in (self.temperature, self.top_p, self.repetition):
            spin.valueChanged.connect(self._params_edited)
        for spin in (self.top_k, self.max_tokens, self.seed):
            spin.valueChanged.connect(self._params_edited)
        self.stops.textChanged.connect(self._params_edited)

        self.run_button = QPushButton("Run", objectName="runButton")
        self.run_button.setToolTip("Run the prompt (Ctrl+Enter)")
        self.stop_button = QPushButton("Stop", objectName="stopButton", enabled=False)
        self.stop_button.setToolTip("Stop generation (Esc)")
        self.probabilities = QCheckBox("Colour tokens by probability", objectName="probToggle")
        self.run_button.clicked.connect(self.run)
        self.stop_button.clicked.connect(self.stop)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)

        self.output = OutputView()
        self.stats = QLabel(objectName="runStats")
        self.stats.setWordWrap(True)

        self.history_model = RunListModel(self)
        self.history = QListView(objectName="runHistory")
        self.history.setModel(self.history_model)
        self.history.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.history.doubleClicked.connect(lambda index: self.show_run(index.row()))
        self.compare_button = QPushButton("Compare selected", objectName="compareRuns")
        self.compare_button.clicked.connect(self.compare_selected)
        self.history.selectionModel().selectionChanged.connect(self._history_selection)
        self.compare_button.setEnabled(False)

        model_row = QHBoxLayout()
        model_row.addWidget(self.model_picker, 1)
        model_row.addWidget(self.add_model)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addLayout(model_row)
        top_layout.addWidget(self.model_status)
        top_layout.addLayout(params)
        top_layout.addLayout(buttons)
        top_layout.addWidget(self.probabilities)
        out = titled_column("Output", (self.output, 1), self.stats)
        hist = titled_column("Runs of this prompt", (self.history, 1), self.compare_button)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        splitter.addWidget(out)
        splitter.addWidget(hist)
        splitter.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

        self.refresh_models()
        self.model_picker.currentIndexChanged.connect(self.load_selected_model)

    # -- models ---------------------------------------------------------------

    def refresh_models(self, select: tuple[str, str] | None = None) -> None:
        self.model_picker.blockSignals(True)
        self.model_picker.clear()
        for spec in self.catalog.all():
            for backend in backends_for(spec):
                self.model_picker.addItem(f"{spec.name} — {backend}", (spec.id, backend))
        if select is not None:
            # findData cannot match a Python tuple (it compares QVariants): look by hand
            for index in range(self.model_picker.count()):
                if tuple(self.model_picker.itemData(index)) == tuple(select):
                    self.model_picker.setCurrentIndex(index)
                    break
        self.model_picker.blockSignals(False)

    def selected_model(self) -> tuple[ModelSpec, str]:
        model_id, backend = self.model_picker.currentData()
        return self.catalog.get(model_id), backend

    def load_selected_model(self) -> None:
        """Load the picked model on the worker thread (the GUI stays responsive)."""
        spec, backend_name = self.selected_model()
        key = (spec.id, backend_name)
        if key == self._backend_key and self.backend is not None:
            return
        old, self.backend, self._backend_key = self.backend, None, key
        self.model_ready.emit(None)
        self.run_button.setEnabled(False)
        self.model_status.setText(f"Loading {spec.name} on {backend_name}…")
        settings = self.settings

        def load(cancel: Any) -> Backend:
            from workbench.core.backends.registry import load_backend

            if old is not None:
                old.close()
            return load_backend(spec, backend_name, settings)

        def done(backend: Backend) -> None:
            if self._backend_key != key:  # the user picked another model meanwhile
                self.jobs.run("close model", lambda cancel: backend.close())
                return
            self.backend = backend
            self.model_status.setText(f"Ready: {backend.description}")
            self.run_button.setEnabled(True)
            self.model_ready.emit(backend)

        def failed(exc: BaseException, trace: str) -> None:
            if self._backend_key == key:
                self._backend_key = None
                self.model_status.setText(f"Could not load the model: {describe_error(exc)}")

        self.jobs.run(f"load {spec.name}", load, on_done=done, on_error=failed)

    def _add(self, location: str, **kwargs: Any) -> None:
        try:
            spec = self.catalog.add(spec_for(location, **kwargs))
        except (BackendError, ValueError) as exc:
            self.model_status.setText(f"Could not add the model: {describe_error(exc)}")
            return
        self.refresh_models(select=(spec.id, spec.default_backend()))
        self.load_selected_model()

    def add_model_location(self, location: str, **kwargs: Any) -> None:
        """Add a GGUF file, HF folder or server URL (what the Add… menu calls)."""
        self._add(location, **kwargs)

    def _add_gguf(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Add a GGUF model", str(Path.home()), "GGUF models (*.gguf)"
        )
        if path:
            self._add(path)

    def _add_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Add a Hugging Face model folder")
        if path:
            self._add(path)

    def _add_server(self) -> None:
        dialog = ServerDialog(self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            url, options = dialog.values()
            self._add(url, **options)

    def _threads_changed(self, value: int) -> None:
        import dataclasses

        self.settings = dataclasses.replace(self.settings, threads=value)
        try:
            save_settings(self.settings)
        except OSError as exc:
            self.model_status.setText(f"Could not save the setting: {exc}")
            return
        self._backend_key = None  # reload with the new thread count
        self.load_selected_model()

    # -- parameters -------------------------------------------------------------

    def set_prompt(self, prompt: Prompt | None) -> None:
        self._loading_params = True
        try:
            params = prompt.params if prompt else GenerationParams()
            self.temperature.setValue(params.temperature)
            self.top_p.setValue(params.top_p)
            self.top_k.setValue(params.top_k)
            self.max_tokens.setValue(params.max_new_tokens)
            self.repetition.setValue(params.repetition_penalty)
            self.seed.setValue(params.seed if params.seed is not None else -1)
            stops = "\n".join(s.replace("\n", "\\n") for s in params.stop)
            if self.stops.toPlainText() != stops:
                self.stops.setPlainText(stops)
        finally:
            self._loading_params = False
        self.history_model.set_items(self.library.runs_for(prompt.id) if prompt else [])
        self.refresh_soft_prompts(prompt)
        self.output.clear()
        self.stats.clear()

    def refresh_soft_prompts(self, prompt: Prompt | None = None, select: str | None = None) -> None:
        prompt = prompt or self.current_prompt()
        keep = select or self.soft_prompt.currentData()
        self.soft_prompt.clear()
        self.soft_prompt.addItem("none", None)
        for soft in self.library.soft_prompts_for(prompt.id) if prompt else []:
            self.soft_prompt.addItem(f"{soft.name}", soft.id)
        index = self.soft_prompt.findData(keep) if keep else 0
        self.soft_prompt.setCurrentIndex(max(index, 0))

    def params(self) -> GenerationParams:
        prompt = self.current_prompt()
        base = prompt.params if prompt else GenerationParams()
        stops = [s.replace("\\n", "\n") for s in self.stops.toPlainText().splitlines() if s]
        return base.model_copy(
            update={
                "temperature": self.temperature.value(),
                "top_p": self.top_p.value(),
                "top_k": self.top_k.value(),
                "max_new_tokens": self.max_tokens.value(),
                "repetition_penalty": self.repetition.value(),
                "seed": None if self.seed.value() < 0 else self.seed.value(),
                "stop": stops,
            }
        )

    def _params_edited(self) -> None:
        if not self._loading_params:
            self.params_changed(self.params())

    # -- running -----------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._run_job is not None

    def run(self) -> None:
        prompt = self.current_prompt()
        backend = self.backend
        if prompt is None or self.running:
            return
        if backend is None:
            self.stats.setText("The model is still loading.")
            return
        params = self.params()
        with_probs = self.probabilities.isChecked()
        if with_probs:
            params = params.model_copy(update={"logprobs": True, "top_logprobs": 5})
        values = dict(prompt.sample_values)
        soft_id = self.soft_prompt.currentData()
        library = self.library
        self.output.clear()
        self.stats.setText("Running…")
        self._step_text = ""
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        spec_id = self._backend_key[0] if self._backend_key else None

        def work(cancel: Any) -> Any:
            tensor = None
            if soft_id is not None:
                from workbench.core.softprompt import check_compatible, load_soft_prompt_tensor

                meta = library.soft_prompts[soft_id]
                tensor = load_soft_prompt_tensor(library.soft_prompt_tensor_path(meta))
                check_compatible(meta, backend, tensor)  # refuses another base model
            return run_prompt(
                backend,
                prompt,
                values,
                params,
                cancel,
                model_id=spec_id,
                soft_prompt=tensor,
                soft_prompt_id=soft_id,
            )

        def on_events(events: list[Any]) -> None:
            for event in events:
                if isinstance(event, StepStarted) and event.name:
                    if self.output.document().characterCount() > 1:
                        self.output.append_plain("\n\n")
                    self.output.append_plain(f"── step: {event.name} ──\n", bold=True)
                elif isinstance(event, TokenEvent):
                    self.output.append_token(event, with_probs)
                elif isinstance(event, StepFinished):
                    self._show_stats(event.result.stats)
                elif isinstance(event, RunFinished):
                    self._finished_run(event.record)

        def done(last: Any) -> None:
            self._end_run()

        def failed(exc: BaseException, trace: str) -> None:
            self._end_run()
            self.stats.setText(f"Run failed: {describe_error(exc)}")

        self._run_job = self.jobs.run("run prompt", work, on_events, done, failed)

    def stop(self) -> None:
        if self._run_job is not None:
            self._run_job.stop()
            self.stats.setText("Stopping…")

    def _end_run(self) -> None:
        self._run_job = None
        self.run_button.setEnabled(self.backend is not None)
        self.stop_button.setEnabled(False)

    def _show_stats(self, stats: Any) -> None:
        parts = []
        if stats.time_to_first_token_s is not None:
            parts.append(f"first token {stats.time_to_first_token_s * 1000:.0f} ms")
        if stats.tokens_per_s is not None:
            parts.append(f"{stats.tokens_per_s:.1f} tokens/s")
        parts.append(f"{stats.prompt_tokens or '?'} prompt + {stats.completion_tokens} generated")
        if stats.finish_reason == "cancelled":
            parts.append("stopped")
        self.stats.setText(" · ".join(parts))

    def _finished_run(self, record: RunRecord) -> None:
        self._show_stats(record.stats)
        self.library.save_run(record)
        self.history_model.add(record)
        self.run_saved.emit(record)

    # -- history -------------------------------------------------------------------

    def _history_selection(self) -> None:
        self.compare_button.setEnabled(len(self.history.selectionModel().selectedRows()) == 2)

    def show_run(self, row: int) -> None:
        run = self.history_model.at(row)
        if run is not None:
            self.output.clear()
            self.output.append_plain(run.output)
            self._show_stats(run.stats)

    def compare_selected(self) -> CompareDialog | None:
        rows = sorted(i.row() for i in self.history.selectionModel().selectedRows())
        runs = [self.history_model.at(r) for r in rows]
        if len(runs) != 2 or None in runs:
            return None
        dialog = CompareDialog(runs[1], runs[0], self)  # older on the left
        dialog.show()
        return dialog


class ServerDialog(QDialog):
    """An OpenAI-compatible server: its base URL, and optionally which of its models to
    use and the environment variable that holds its API key (the key itself is never
    stored)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add a server")
        form = QFormLayout(self)
        self.url = QLineEdit("http://127.0.0.1:8000/v1", objectName="serverUrl")
        self.remote_model = QLineEdit(objectName="serverModel")
        self.remote_model.setPlaceholderText("empty = the first model the server lists")
        self.api_key_env = QLineEdit(objectName="serverKeyEnv")
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
