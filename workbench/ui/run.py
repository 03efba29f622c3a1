"""The Run panel: the session's model picker, sampling parameters, Run/Stop, live output
with per-token probabilities, run statistics, and the prompt's run history with a
side-by-side comparison of two runs (the views are in `run_views`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QListView,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from workbench.core.backends.base import Backend, BackendError, BackendSettings, TokenEvent
from workbench.core.backends.registry import ModelCatalog
from workbench.core.flows.preflight import empty_user_turn, parameter_warnings
from workbench.core.flows.report import format_stats
from workbench.core.library import Library
from workbench.core.models import GenerationParams, LoraAdapter, ModelSpec, Prompt, RunRecord
from workbench.core.running import RunFinished, StepFinished, StepStarted, run_prompt
from workbench.core.templates import TemplateError
from workbench.ui.jobs import Job, JobRunner
from workbench.ui.models import RunListModel
from workbench.ui.run_views import (
    TOKEN_PROPERTY,
    CompareDialog,
    OutputView,
    ServerDialog,
    probability_colour,
)
from workbench.ui.session import ModelSession, PromptSelection
from workbench.ui.widgets import (
    ElidedComboBox,
    MessageLine,
    named,
    sentence,
    show_message,
    titled_column,
    wrapping_list,
)

log = logging.getLogger(__name__)

__all__ = [
    "TOKEN_PROPERTY",
    "CompareDialog",
    "OutputView",
    "RunPanel",
    "ServerDialog",
    "describe_error",
    "probability_colour",
]


def _decimal(name: str, low: float, high: float, step: float) -> QDoubleSpinBox:
    box = named(QDoubleSpinBox(), name)
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setDecimals(2)
    return box


def _whole(name: str, low: int, high: int) -> QSpinBox:
    box = named(QSpinBox(), name)
    box.setRange(low, high)
    return box


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, BackendError | TemplateError | ValueError | OSError):
        return str(exc)
    from workbench.core.lora_io import LoraAdapterError

    if isinstance(exc, LoraAdapterError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _with_adapter(
    library: Library, adapter: LoraAdapter, backend: Backend, events: Iterator[Any]
) -> Iterator[Any]:
    """A run's events with the LoRA adapter applied to the loaded model (PEFT's LoRA
    layers on transformers, set as a GGUF LoRA on llama.cpp; checked to be made for it first) and
    taken out again when the run ends, however it ends; the run record names the
    adapter. Runs on the worker."""
    from workbench.core.lora_io import apply_adapter

    applied = apply_adapter(library, adapter, backend)
    try:
        for event in events:
            if isinstance(event, RunFinished):
                event = RunFinished(event.record.model_copy(update={"adapter_id": adapter.id}))
            yield event
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()  # a run left half-way lets go of the model's locks first
        applied.remove()


class RunPanel(QWidget):
    """Runs the working prompt on the session's model; keeps every run as a RunRecord."""

    run_saved = Signal(object)
    model_ready = Signal(object)  # the loaded Backend, or None while loading/after failure

    def __init__(
        self,
        library: Library,
        jobs: JobRunner,
        session: ModelSession,
        selection: PromptSelection,
        params_changed: Callable[[GenerationParams], None],
    ) -> None:
        super().__init__()
        self.library = library
        self.jobs = jobs
        self.session = session
        self.selection = selection
        self.params_changed = params_changed
        self._run_job: Job | None = None
        self._loading_params = False
        self._message_about_model = False  # the message line speaks of the model

        self.model_picker = named(ElidedComboBox(min_chars=14), "modelPicker")
        self.model_picker.set_help("The model and backend prompts run on")
        # a push button sizes itself for its text and the menu arrow (a tool button
        # with a menu drew its arrow over "Add…")
        self.add_model = named(QPushButton("Add…"), "addModel")
        self.add_model.setToolTip("Add a model: a GGUF file, a Hugging Face folder or a server")
        self.add_model.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        menu = QMenu(self.add_model)
        menu.addAction("GGUF file…", self._add_gguf)
        menu.addAction("Hugging Face folder…", self._add_folder)
        menu.addAction("OpenAI-compatible server…", self._add_server)
        self.add_model.setMenu(menu)
        self.model_status = named(MessageLine(), "modelStatus")
        self._show_status(session.status)

        self.temperature = _decimal("temperature", 0.0, 5.0, 0.1)
        self.top_p = _decimal("topP", 0.01, 1.0, 0.05)
        self.top_k = _whole("topK", 0, 1000)
        self.top_k.setSpecialValueText("off")
        self.max_tokens = _whole("maxTokens", 1, 32768)
        self.repetition = _decimal("repetitionPenalty", 0.1, 5.0, 0.05)
        self.threads = _whole("threads", 1, 256)
        self.threads.setValue(session.settings.threads)
        self.threads.setToolTip(
            "CPU threads for the model (default: physical cores; more oversubscribes the "
            "CPU). Applies when a model is loaded; saved for next time."
        )
        self.threads.valueChanged.connect(self._threads_changed)
        self.seed = _whole("seed", -1, 2**31 - 1)
        self.seed.setSpecialValueText("random")
        self.soft_prompt = named(ElidedComboBox(min_chars=8), "softPromptPicker")
        self.soft_prompt.set_help(
            "Run with what was trained for this prompt (in the Graduate tab): a soft prompt "
            "(virtual tokens) or a LoRA adapter (transformers, or llama.cpp with a GGUF "
            "model). A newly trained one is listed, never picked for you."
        )
        self.tuned = self.soft_prompt  # the "Tuned" picker: soft prompts and LoRA adapters
        self.stops = named(QPlainTextEdit(), "stopStrings")
        self.stops.setPlaceholderText("one per line")
        self.stops.setToolTip(
            "Stop strings, one per line: the output ends before the first one. "
            "Write \\n for a newline."
        )
        self.stops.setTabChangesFocus(True)
        # two lines of text and the frame: a narrow dock neither clips nor wastes height
        lines = self.stops.fontMetrics().lineSpacing() * 2
        self.stops.setFixedHeight(lines + 2 * self.stops.frameWidth() + 10)
        params = QFormLayout()
        # in a narrow dock a field goes under its label instead of being squeezed
        params.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        params.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        params.addRow("Temperature", self.temperature)
        params.addRow("Top p", self.top_p)
        params.addRow("Top k", self.top_k)
        params.addRow("Max new tokens", self.max_tokens)
        params.addRow("Repetition penalty", self.repetition)
        params.addRow("Seed", self.seed)
        params.addRow("Stop strings", self.stops)
        params.addRow("Tuned", self.soft_prompt)
        params.addRow("CPU threads", self.threads)
        for decimal in (self.temperature, self.top_p, self.repetition):
            decimal.valueChanged.connect(self._params_edited)
        for whole in (self.top_k, self.max_tokens, self.seed):
            whole.valueChanged.connect(self._params_edited)
        self.stops.textChanged.connect(self._params_edited)
        self.soft_prompt.currentIndexChanged.connect(lambda _: self._update_warnings())
        self.threads.setMinimumWidth(self.threads.minimumSizeHint().width())

        self.run_button = named(QPushButton("Run"), "runButton")
        self.run_button.setToolTip("Run the prompt (Ctrl+Enter)")
        self.stop_button = named(QPushButton("Stop"), "stopButton")
        self.stop_button.setEnabled(False)
        self.stop_button.setToolTip("Stop generation (Esc)")
        self.probabilities = named(QCheckBox("Colour tokens by probability"), "probToggle")
        self.run_button.clicked.connect(self.run)
        self.stop_button.clicked.connect(self.stop)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        # what stops a run or may waste it, beside Run; errors of the last run
        self.run_warnings = named(MessageLine(), "runWarnings")
        self.run_message = named(MessageLine(), "runMessage")

        self.output = OutputView()
        self.stats = named(MessageLine(), "runStats")

        self.history_model = RunListModel(self)
        self.history = named(wrapping_list(QListView()), "runHistory")
        self.history.setModel(self.history_model)
        self.history.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.history.doubleClicked.connect(lambda index: self.show_run(index.row()))
        self.compare_button = named(QPushButton("Compare selected"), "compareRuns")
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
        top_layout.addWidget(self.run_warnings)
        top_layout.addWidget(self.run_message)
        top_layout.addWidget(self.probabilities)
        out = titled_column("Output", (self.output, 1), self.stats)
        hist = titled_column("Runs of this prompt", (self.history, 1), self.compare_button)
        splitter = named(QSplitter(Qt.Orientation.Vertical), "runSplitter")
        splitter.addWidget(top)
        splitter.addWidget(out)
        splitter.addWidget(hist)
        splitter.setChildrenCollapsible(False)  # never squeezed to nothing (or half a line)
        # the output first: the spare height goes to it, the run list keeps a few rows
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 3)
        splitter.setStretchFactor(2, 1)
        splitter.setSizes([top.sizeHint().height(), 600, 160])
        self.splitter = splitter
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

        self.refresh_models()
        self.model_picker.currentIndexChanged.connect(self._picked)
        session.models_changed.connect(self.refresh_models)
        session.selection_changed.connect(lambda _spec, _backend: self._show_selected())
        session.status_changed.connect(self._show_status)
        session.backend_changed.connect(self._backend_changed)
        session.selection_changed.connect(lambda _spec, _backend: self._update_warnings())
        selection.selected.connect(self.set_prompt)
        selection.edited.connect(lambda _prompt: self._update_warnings())
        self.set_prompt(selection.prompt)

    # -- what the session holds (kept for callers and tests) ---------------------

    @property
    def backend(self) -> Backend | None:
        return self.session.backend

    @property
    def catalog(self) -> ModelCatalog:
        return self.session.catalog

    @property
    def settings(self) -> BackendSettings:
        return self.session.settings

    def current_prompt(self) -> Prompt | None:
        return self.selection.prompt

    def selected_model(self) -> tuple[ModelSpec, str]:
        return self.session.selected_model()

    def load_selected_model(self) -> None:
        """Load the picked model on the worker thread (the GUI stays responsive)."""
        self.session.load_selected()

    # -- models -------------------------------------------------------------------

    def refresh_models(self) -> None:
        """The session's catalogue in the picker, its selected model current."""
        self.model_picker.blockSignals(True)
        self.model_picker.clear()
        for label, key in self.session.choices():
            self.model_picker.addItem(label, key)
        self.model_picker.blockSignals(False)
        self._show_selected()

    def _show_selected(self) -> None:
        """Make the session's selected model the picker's current item (no reload)."""
        selected = tuple(self.session.selected_key)
        # findData cannot match a Python tuple (it compares QVariants): look by hand
        for index in range(self.model_picker.count()):
            if tuple(self.model_picker.itemData(index)) == selected:
                self.model_picker.blockSignals(True)
                self.model_picker.setCurrentIndex(index)
                self.model_picker.blockSignals(False)
                return

    def _picked(self, index: int) -> None:
        data = self.model_picker.itemData(index)
        if data is not None:
            model_id, backend = data
            self.session.select(model_id, backend)

    def _show_status(self, text: str) -> None:
        show_message(self.model_status, text, error=self.session.failed)

    def _backend_changed(self, backend: Backend | None) -> None:
        self.run_button.setEnabled(backend is not None and not self.running)
        # a new load started, or the model is ready: what was said about the old one
        # ("still loading", a model error of the last run) is no longer true
        if self._message_about_model:
            self._say("")
        self.model_ready.emit(backend)

    def _add(self, location: str, **kwargs: Any) -> None:
        try:
            self.session.add_model(location, **kwargs)
        except (BackendError, ValueError) as exc:
            log.info("could not add model %s: %s", location, exc)
            text = f"Could not add the model: {describe_error(exc)}"
            show_message(self.model_status, text, error=True)

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
        try:
            self.session.set_threads(value)  # reloads the model with the new count
        except OSError as exc:
            log.warning("could not save the thread count: %s", exc)
            show_message(self.model_status, f"Could not save the setting: {exc}", error=True)

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
        if self.history_model.rowCount():  # the prompt's last output, as it was left
            self.show_run(0)
        self._say("")
        self._update_warnings()

    def refresh_soft_prompts(self, prompt: Prompt | None = None, select: str | None = None) -> None:
        """List the prompt's soft prompts and LoRA adapters; keep the current choice
        unless `select` names another one (a choice the user made, never one made for
        them)."""
        prompt = prompt or self.current_prompt()
        keep = select or self.soft_prompt.currentData()
        self.soft_prompt.blockSignals(True)
        self.soft_prompt.clear()
        self.soft_prompt.addItem("none", None)
        for soft in self.library.soft_prompts_for(prompt.id) if prompt else []:
            self.soft_prompt.addItem(f"{soft.name} (soft prompt)", soft.id)
            self.soft_prompt.setItemData(
                self.soft_prompt.count() - 1,
                f"Soft prompt: {soft.num_virtual_tokens} virtual tokens for {soft.base_model}",
                Qt.ItemDataRole.ToolTipRole,
            )
        for adapter in self.library.lora_adapters_for(prompt.id) if prompt else []:
            from workbench.core.lora import adapter_backends  # not at start-up: it is big

            self.soft_prompt.addItem(f"{adapter.name} (LoRA adapter)", adapter.id)
            base = self._catalog_spec(adapter.base_model)
            runs_on = " or ".join(adapter_backends(base)) if base else "its base model"
            self.soft_prompt.setItemData(
                self.soft_prompt.count() - 1,
                f"LoRA adapter of rank {adapter.lora.rank} for {adapter.base_model}: runs on "
                f"{runs_on} (applied to the model for the run, taken out after it)",
                Qt.ItemDataRole.ToolTipRole,
            )
        index = self.soft_prompt.findData(keep) if keep else 0
        self.soft_prompt.blockSignals(False)
        self.soft_prompt.setCurrentIndex(max(index, 0))
        self._update_warnings()

    def soft_prompt_added(self, soft: Any) -> None:
        """A soft prompt or LoRA adapter was trained or imported: offer it in the list,
        but leave the choice as it was; the next run uses what the user picked, not the
        newest."""
        self.refresh_soft_prompts()
        log.info("%s listed, not selected", getattr(soft, "name", soft))

    def picked_adapter(self) -> LoraAdapter | None:
        """The LoRA adapter picked in the Tuned list (None: none, or a soft prompt)."""
        picked = self.soft_prompt.currentData()
        return self.library.lora_adapters.get(picked) if picked else None

    def _adapter_problem(self) -> str | None:
        """Why the picked LoRA adapter cannot run on the picked model and backend (None:
        it can, as far as the names tell; the run checks the weights too)."""
        adapter = self.picked_adapter()
        if adapter is None:
            return None
        try:
            spec, backend = self.session.selected_model()
        except Exception:  # nothing picked, or a model removed from the catalogue
            return None
        from workbench.core.lora import adapter_backends

        backends = adapter_backends(spec)
        if backend in backends:
            return None
        if not backends:
            return (
                f"LoRA adapter “{adapter.name}” needs a local model: {spec.name} is served "
                f"over HTTP and runs its own weights. Pick {adapter.base_model} in the model "
                "list."
            )
        runs_on = " or ".join(backends)
        return (
            f"LoRA adapter “{adapter.name}” runs on {runs_on}; {spec.name} is picked on "
            f"{backend}. Pick “{spec.name} — {backends[0]}” in the model list."
        )

    def _catalog_spec(self, model_id: str) -> ModelSpec | None:
        return next((s for s in self.session.catalog.all() if s.id == model_id), None)

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
        self._update_warnings()

    def _update_warnings(self) -> None:
        """Settings that would waste the next run, said beside Run before it starts."""
        warnings = parameter_warnings(self.current_prompt(), self.params())
        problem = self._adapter_problem()
        if problem:
            warnings = [*warnings, problem]
        show_message(self.run_warnings, "\n".join(warnings), error=True)

    def _say(self, text: str, *, error: bool = False, about_model: bool = False) -> None:
        """The message line under Run: why a run did not start or failed ("" hides it)."""
        self._message_about_model = about_model and bool(text)
        show_message(self.run_message, text, error=error)

    # -- running -----------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._run_job is not None

    def run(self) -> None:
        prompt = self.current_prompt()
        backend = self.session.backend
        if prompt is None or self.running:
            return
        # the prompt's own problem first: it is the same whichever model is loaded
        empty = empty_user_turn(prompt, prompt.sample_values)
        if empty:
            self._say(empty, error=True)
            return
        problem = self._adapter_problem()
        if problem:  # refused as `workbench generate --adapter` refuses it: nothing runs
            self._say(problem, error=True)
            return
        if backend is None:
            self._say("The model is still loading.", about_model=True)
            return
        self._say("")
        params = self.params()
        with_probs = self.probabilities.isChecked()
        if with_probs:
            params = params.model_copy(update={"logprobs": True, "top_logprobs": 5})
        values = dict(prompt.sample_values)
        picked = self.soft_prompt.currentData()
        adapter = self.picked_adapter()
        soft_id = None if adapter is not None else picked
        library = self.library
        self.output.clear()
        self.stats.setText("Running…")
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        spec_id = backend.spec.id

        def work(cancel: Any) -> Any:
            tokens = None
            if soft_id is not None:
                from workbench.core.flows.lookup import load_virtual_tokens
                from workbench.core.softprompt import check_compatible

                meta = library.soft_prompts[soft_id]
                tokens = load_virtual_tokens(library, meta)  # in the soft prompt's placement
                check_compatible(meta, backend, tokens.embeddings)  # refuses another model
            events = run_prompt(
                backend,
                prompt,
                values,
                params,
                cancel,
                model_id=spec_id,
                soft_prompt=tokens,
                soft_prompt_id=soft_id,
            )
            if adapter is None:
                return events
            return _with_adapter(library, adapter, backend, events)

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
            self.stats.clear()
            about_model = not isinstance(exc, TemplateError)
            text = f"Run failed: {sentence(describe_error(exc))}"
            self._say(text, error=True, about_model=about_model)

        def cancelled() -> None:
            self._end_run()
            self.stats.clear()
            self._say("Stopped before it started.")

        self._run_job = self.jobs.run("run prompt", work, on_events, done, failed, cancelled)

    def stop(self) -> None:
        if self._run_job is not None:
            self._run_job.stop()
            self.stats.setText("Stopping…")

    def _end_run(self) -> None:
        self._run_job = None
        self.run_button.setEnabled(self.session.backend is not None)
        self.stop_button.setEnabled(False)

    def _show_stats(self, stats: Any) -> None:
        self.stats.setText(format_stats(stats))

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
        left, right = runs
        assert left is not None and right is not None
        dialog = CompareDialog(right, left, self)  # older on the left
        dialog.show()
        return dialog
