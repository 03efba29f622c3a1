"""The Graduate panel: wires the settings form (a soft prompt or a LoRA adapter), the
live plot, the comparison and the list of what was trained to one graduation job on the
job runner."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from workbench.core import graduation
from workbench.core.library import Library
from workbench.core.models import (
    EvalRun,
    LoraAdapter,
    LoraSettings,
    ModelSpec,
    Prompt,
    SchemaError,
    SoftPrompt,
    TestSet,
    TrainConfig,
)
from workbench.ui.graduate.comparison import ComparisonModel
from workbench.ui.graduate.plot import LossPlot
from workbench.ui.graduate.settings import TrainingSettings, selected_spec
from workbench.ui.graduate.soft_prompts import SoftPrompts
from workbench.ui.graduate.training import GraduationRun, Live
from workbench.ui.jobs import Job, JobRunner
from workbench.ui.session import ModelSession, PromptSelection
from workbench.ui.widgets import MessageLine, named, titled_column

log = logging.getLogger(__name__)


@dataclass
class _Shown:
    """What the panel showed for a prompt when another one was selected."""

    comparison: EvalRun | None = None
    progress: str = ""
    message: str = ""
    saved: str = ""
    status: str = ""
    plot: tuple[tuple[Any, Any], ...] | None = None


class GraduatePanel(QWidget):
    """Train a soft prompt (or a LoRA adapter) from the working prompt, watch it learn,
    compare it with the hard prompt. Start runs `graduation.graduate()` (or
    `lora.graduate_lora()`) as ONE job: training, saving, comparing zero-shot / few-shot /
    the trained method on the held-out rows. Pause toggles an event the training loop
    checks between steps; Stop sets the job's cancel event, and the engine still saves
    the best one so far. The model is the session's selected one; the prompt is the
    selection's working copy."""

    soft_prompt_saved = Signal(object)
    """A `SoftPrompt` was stored: saved by a run (as soon as it is) or imported."""
    adapter_saved = Signal(object)
    """A `LoraAdapter` was stored: saved by a run (as soon as it is) or imported."""
    run_finished = Signal(object)
    """The run ended (done, stopped or failed): its `TuningResult`, or None."""
    adapter_exported = Signal(object)
    """The folder a PEFT adapter was written to (a `Path`)."""
    adapter_imported = Signal(object)
    """What an imported PEFT adapter became (a `SoftPrompt`, or a `LoraAdapter`)."""

    def __init__(
        self,
        library: Library,
        jobs: JobRunner,
        session: ModelSession,
        selection: PromptSelection,
    ) -> None:
        super().__init__()
        self.library = library
        self.jobs = jobs
        self.session = session
        self.selection = selection
        self._prompt: Prompt | None = None
        self.prepared: graduation.Prepared | None = None
        self._shown: dict[str, _Shown] = {}  # per prompt id, while the app runs

        self.form = TrainingSettings(jobs)
        self.loss_plot = LossPlot()
        self.comparison_model = ComparisonModel(self)
        self.soft_prompts = SoftPrompts(library, jobs, session)
        self.nearest_model = self.soft_prompts.nearest_model
        self.training = GraduationRun(library, jobs, self)
        self._build()

        # an edit of the working copy is counted again a little later, not per keystroke
        self._summary_timer = QTimer(self, singleShot=True, interval=250)
        self._summary_timer.timeout.connect(self._update_data_summary)
        self._summary_timer.timeout.connect(self._update_costs)
        self._costs_pending = self._costs_dirty = False
        self.form.data_changed.connect(self._update_data_summary)
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.stop)
        self.training.status.connect(self.status.setText)
        self.training.message.connect(self._show_message)
        self.training.progress.connect(self.progress_label.setText)
        self.training.step.connect(self.loss_plot.add_step)
        self.training.validation.connect(self.loss_plot.add_validation)
        self.training.trained.connect(lambda _result: self.pause_button.setEnabled(False))
        self.training.saved.connect(self._saved)
        self.training.compared.connect(self.comparison_model.set_run)
        self.training.ended.connect(self._ended)
        self.soft_prompts.shown.connect(self._soft_shown)
        self.soft_prompts.message.connect(self._show_message)
        self.soft_prompts.exported.connect(self.adapter_exported)
        self.soft_prompts.imported.connect(self._imported)
        selection.selected.connect(self.set_prompt)
        selection.edited.connect(self.set_prompt)
        session.selection_changed.connect(lambda _spec, _backend: self._update_model_label())
        session.models_changed.connect(self._update_model_label)
        session.backend_changed.connect(lambda _backend: self._update_model_label())
        session.backend_changed.connect(lambda _backend: self._update_costs())
        self.form.costs_stale.connect(self._update_costs)
        self.form.method_changed.connect(lambda _method: self._update_target_layers())
        session.backend_changed.connect(lambda _backend: self._update_target_layers())
        self._layers_for: str | None = None  # the model the target layers' tip is for

        self._update_model_label()
        self.set_prompt(selection.prompt)

    def _build(self) -> None:
        self.start_button = named(QPushButton("Start"), "gradStart")
        self.start_button.setToolTip("Train, save and compare (one background job)")
        self.pause_button = named(QPushButton("Pause"), "gradPause")
        self.pause_button.setEnabled(False)
        self.stop_button = named(QPushButton("Stop"), "gradStop")
        self.stop_button.setEnabled(False)
        self.stop_button.setToolTip(
            "Stop; the best soft prompt (LoRA adapter) so far is kept and saved"
        )
        self.status = named(MessageLine(), "gradStatus")
        self.message = named(MessageLine(), "gradMessage")
        self.saved_label = named(MessageLine(), "gradSaved")
        buttons = QHBoxLayout()
        for button in (self.start_button, self.pause_button, self.stop_button):
            buttons.addWidget(button)
        buttons.addStretch(1)

        # the settings scroll; Start/Pause/Stop and what the run says stay in view
        # under them, however tall the settings grow (a device line, an init text)
        left_scroll = QScrollArea()
        left_scroll.setWidgetResizable(True)
        left_scroll.setWidget(self.form)
        # the settings scroll up and down, never sideways: the splitter may not squeeze
        # them below the width their form needs (it did, down to the labels alone)
        left_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._left_scroll = left_scroll
        self._fit_settings_width()
        self.form.installEventFilter(self)  # its minimum width grows as it fills in
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(left_scroll, 1)
        left_layout.addLayout(buttons)
        for label in (self.status, self.message, self.saved_label):
            left_layout.addWidget(label)

        self.progress_label = named(MessageLine(), "gradProgress")
        self.comparison_view = named(QTableView(), "gradComparison")
        self.comparison_view.setModel(self.comparison_model)
        self.comparison_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.comparison_view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        # every row in view: the comparison is the result (three or four rows)
        self.comparison_view.verticalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents
        )
        self._fit_comparison_height()
        self.comparison_model.modelReset.connect(self._fit_comparison_height)
        comparison_box = titled_column(
            "Held-out comparison", self.progress_label, self.comparison_view
        )
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.loss_plot)
        right.addWidget(comparison_box)
        right.addWidget(self.soft_prompts)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(2, 2)
        right.setSizes([420, 160, 300])
        main = QSplitter(Qt.Orientation.Horizontal)
        main.addWidget(left)
        main.addWidget(right)
        main.setCollapsible(0, False)
        main.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(main)

    def _fit_settings_width(self) -> None:
        """The settings column is never narrower than its form (it would clip it)."""
        scroll = self._left_scroll
        scrollbar = scroll.verticalScrollBar().sizeHint().width()
        needed = self.form.minimumSizeHint().width() + scrollbar + 2 * scroll.frameWidth()
        if needed != scroll.minimumWidth():
            scroll.setMinimumWidth(needed)

    def _fit_comparison_height(self) -> None:
        view = self.comparison_view
        rows = max(view.model().rowCount(), 3)
        height = view.horizontalHeader().sizeHint().height() + 2 * view.frameWidth()
        height += rows * view.verticalHeader().defaultSectionSize()
        view.setMinimumHeight(height)
        view.setMaximumHeight(height + 8)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.form and event.type() == QEvent.Type.LayoutRequest:
            self._fit_settings_width()
        return super().eventFilter(watched, event)

    # -- prompt, test sets, model --------------------------------------------------

    def set_prompt(self, prompt: Prompt | None) -> None:
        """Show the working copy of the selected prompt; call again after each edit."""
        previous = self._prompt
        same = prompt is not None and previous is not None and prompt.id == previous.id
        self._prompt = prompt
        self.form.follow_prompt(prompt, same)
        if same:
            self._summary_timer.start()  # per keystroke: re-count a little later
            return
        self.refresh_test_sets(keep=False)
        self._update_costs()
        self.soft_prompts.set_prompt(prompt)
        if self.training.live is None:
            # what the last graduation of each prompt showed comes back with the prompt
            if previous is not None:
                self._shown[previous.id] = self._capture()
            shown = self._shown.get(prompt.id) if prompt is not None else None
            self._show(shown or _Shown())
        self._update_buttons()

    def _capture(self) -> _Shown:
        return _Shown(
            comparison=self.comparison_model.run,
            progress=self.progress_label.text(),
            message=self.message.text(),
            saved=self.saved_label.text(),
            status=self.status.text(),
            plot=self.loss_plot.snapshot(),
        )

    def _show(self, shown: _Shown) -> None:
        self.comparison_model.set_run(shown.comparison)
        self.progress_label.setText(shown.progress)
        if shown.plot is None:
            self.loss_plot.clear()
        else:
            self.loss_plot.restore(shown.plot)
        self.message.setText(shown.message)
        self.saved_label.setText(shown.saved)
        self.status.setText(shown.status)

    def refresh_test_sets(self, keep: bool = True) -> None:
        """Re-list the prompt's test sets. `keep`: keep the current pick when it still
        exists (else the first test set is picked: most prompts train on theirs)."""
        sets = self.library.test_sets_for(self._prompt.id) if self._prompt else []
        self.form.set_test_sets(sets, keep)
        self._update_data_summary()

    def selected_test_set(self) -> TestSet | None:
        test_set_id = self.form.test_set_id()
        return self.library.test_sets.get(test_set_id) if test_set_id else None

    def select_test_set(self, test_set_id: str | None) -> None:
        """Pick a test set by id (None: train on the few-shot examples only)."""
        self.form.select_test_set(test_set_id)

    def _update_data_summary(self) -> None:
        prompt = self._prompt
        if prompt is None:
            self.prepared = None
            self.form.data_label.setText("No prompt selected.")
            self._update_buttons()
            return
        try:
            seed = self.form.seed.value()
            prepared = graduation.prepare(None, prompt, self.selected_test_set(), seed)
        except Exception as exc:  # a broken template: say so, training would fail the same way
            self.prepared = None
            self.form.data_label.setText(f"Cannot prepare the training data: {exc}")
            self._update_buttons()
            return
        self.prepared = prepared
        text = graduation.describe_prepared(prepared, len(prompt.few_shot.examples))
        if prepared.train_examples == 0:
            text += "\nNo training data: add few-shot examples or pick a test set."
        self.form.data_label.setText(text)
        self.form.show_length(prepared.train_examples)
        self._update_buttons()

    def _update_costs(self) -> None:
        """Count what a call costs in each placement, in a job (it tokenizes with the
        loaded model); one count at a time, the latest prompt last."""
        backend, prompt = self.session.backend, self._prompt
        if self.jobs.closed:  # the window is closing: nothing more to count
            return
        if backend is None or prompt is None:
            self.form.show_costs({})
            return
        if self._costs_pending:
            self._costs_dirty = True
            return
        self._costs_pending, self._costs_dirty = True, False
        tokens = self.form.tokens.value()

        def done(costs: Any) -> None:
            self._costs_pending = False
            self.form.show_costs(costs or {})
            if self._costs_dirty:
                self._update_costs()

        def failed(exc: BaseException, trace: str) -> None:
            log.warning("counting tokens per call failed: %s\n%s", exc, trace)
            done({})

        self.jobs.run(
            "count tokens per call",
            lambda cancel: graduation.per_call_tokens(backend, prompt, tokens),
            on_done=done,
            on_error=failed,
            on_cancelled=lambda: done({}),
        )

    def _update_model_label(self) -> None:
        self.form.show_model(selected_spec(self.session))
        self._update_target_layers()
        self._update_buttons()

    def _update_target_layers(self) -> None:
        """The target layers' tooltip says which layers the picked model has, when LoRA
        is picked and finding out is cheap (`lora.describe_target_layers`, in a job)."""
        spec = selected_spec(self.session)
        if self.form.method() != "lora" or spec is None or self.jobs.closed:
            return
        backend = self.session.backend
        key = f"{spec.id}:{getattr(backend, 'name', '')}"
        if key == self._layers_for:
            return
        self._layers_for = key

        def work(cancel: Any) -> str:
            from workbench.core.lora import describe_target_layers

            return describe_target_layers(spec, backend)

        def failed(exc: BaseException, trace: str) -> None:
            log.info("finding the layers of %s failed: %s\n%s", spec.name, exc, trace)

        self.jobs.run(
            f"find the layers of {spec.name}",
            work,
            on_done=lambda text: self.form.show_target_layers(str(text or "")),
            on_error=failed,
        )

    def showEvent(self, event: QShowEvent) -> None:
        self.form.show_device_info()  # torch is asked on the worker, once shown
        self._update_model_label()
        if self._prompt is not None and self.training.live is None:
            self.refresh_test_sets()  # test sets are edited in another panel
        super().showEvent(event)

    # -- settings and the plot, for callers and tests ----------------------------------

    def config(self) -> TrainConfig:
        """The form as a TrainConfig (`SchemaError` names a bad setting)."""
        return self.form.config()

    def set_config(self, config: TrainConfig) -> None:
        """Fill the form from a TrainConfig (e.g. to repeat an earlier run)."""
        self.form.set_config(config)

    def lora_settings(self) -> LoraSettings:
        """The LoRA rows as LoraSettings (`SchemaError` names a bad setting)."""
        return self.form.lora()

    def plotted_points(self) -> int:
        return self.loss_plot.plotted_points()

    @property
    def loss_curve(self) -> Any:
        return self.loss_plot.loss_curve

    @property
    def val_loss_curve(self) -> Any:
        return self.loss_plot.val_loss_curve

    @property
    def accuracy_curve(self) -> Any:
        return self.loss_plot.accuracy_curve

    # -- running -----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.training.live is not None

    @property
    def paused(self) -> bool:
        return self.training.paused

    def _start_problem(self, spec: ModelSpec | None) -> str | None:
        """Why Start cannot train now (None: it can)."""
        if spec is None:
            return "Pick a model in the Run panel first."
        if spec.source == "openai":
            return (
                f"Model {spec.name!r} is served over HTTP and cannot be trained; "
                "pick a local model (GGUF file or Hugging Face folder) in the Run panel."
            )
        self._update_data_summary()
        if self.prepared is None:
            return str(self.form.data_label.text())
        if self.prepared.train_examples == 0:
            return (
                "No training examples: add few-shot examples to the prompt or pick a test set "
                "(its train split trains)."
            )
        return None

    def start(self) -> None:
        """Train, save and compare as one background job (nothing runs on this thread)."""
        if self.training.live is not None or self._prompt is None:
            return
        prompt = self._prompt
        spec = selected_spec(self.session)
        problem = self._start_problem(spec)
        if problem is not None or spec is None:
            self._show_message(problem or "")
            return
        lora: LoraSettings | None = None
        try:
            config = self.config()
            if self.form.method() == "lora":
                lora = self.form.lora()
        except SchemaError as exc:
            where, what = exc.problems[0]
            self._show_message(f"Invalid setting {where}: {what}")
            return
        self.loss_plot.clear()
        self.comparison_model.set_run(None)
        self.progress_label.clear()
        self.saved_label.clear()
        self._show_message("")
        self.status.setText(f"Starting: loading {spec.name} for training…")
        self.pause_button.setText("Pause")
        self.loss_plot.start_live()
        test_set = self.selected_test_set()
        self.training.start(prompt, test_set, spec, config, self.session.settings, lora)
        self._update_buttons()

    def toggle_pause(self) -> None:
        """Pause between steps (the worker idles), or resume."""
        if self.training.live is None:
            return
        self.training.toggle_pause()
        self.pause_button.setText("Resume" if self.training.paused else "Pause")

    def stop(self) -> None:
        """Stop; the engine keeps the best soft prompt (adapter) so far and saves it."""
        if self.training.live is None:
            return
        self.training.stop()
        self.stop_button.setEnabled(False)
        self.pause_button.setEnabled(False)

    def _saved(self, soft: SoftPrompt | LoraAdapter) -> None:
        self.saved_label.setText(f"Saved as “{soft.name}”")
        self._announce(soft)
        self.soft_prompts.add(soft)
        if isinstance(soft, SoftPrompt):
            self.compute_nearest(soft)  # queued: runs after the comparison

    def _announce(self, item: SoftPrompt | LoraAdapter) -> None:
        """Tell the app that a soft prompt or an adapter was stored (it lists them)."""
        if isinstance(item, LoraAdapter):
            self.adapter_saved.emit(item)
        else:
            self.soft_prompt_saved.emit(item)

    def _ended(self, live: Live) -> None:
        self.loss_plot.stop_live()
        self.pause_button.setText("Pause")
        if self._prompt is not None and self._prompt.id == live.prompt_id:
            self.refresh_test_sets()  # the test set may have been split and saved
        self._update_buttons()
        self.run_finished.emit(live.result)

    # -- soft prompts ------------------------------------------------------------------

    def selected_soft_prompt(self) -> SoftPrompt | LoraAdapter | None:
        """The soft prompt (or LoRA adapter) picked in the list of what was trained."""
        return self.soft_prompts.selected()

    def show_soft_prompt_row(self, row: int) -> None:
        self.soft_prompts.show_row(row)

    def _soft_shown(self, soft: SoftPrompt | LoraAdapter) -> None:
        if self.training.live is None:
            self.loss_plot.show_curves(soft.curves)
        if isinstance(soft, SoftPrompt) and self.soft_prompts.nearest.get(soft.id) is None:
            self.compute_nearest(soft)
        self._update_buttons()

    def compute_nearest(self, soft: SoftPrompt) -> Job | None:
        """Find each virtual token's nearest vocabulary tokens, in a job."""
        return self.soft_prompts.find_nearest(soft)

    def export_peft(self, folder: Path, soft: SoftPrompt | LoraAdapter | None = None) -> Job | None:
        """Write the selected soft prompt as a PEFT prompt-tuning adapter folder (a LoRA
        adapter as its PEFT LoRA folder; a job)."""
        return self.soft_prompts.export_peft(folder, soft)

    def import_peft(self, folder: Path) -> Job | None:
        """Add a PEFT prompt-tuning adapter as a soft prompt of this prompt, for the
        session's selected model (a job: hashing a big model file takes a while)."""
        return self.soft_prompts.import_peft(folder)

    def _imported(self, soft: SoftPrompt | LoraAdapter) -> None:
        self._announce(soft)  # the app lists it wherever soft prompts (adapters) are
        self.adapter_imported.emit(soft)

    # -- state -----------------------------------------------------------------------------

    def _show_message(self, text: str) -> None:
        self.message.setText(text)

    def _update_buttons(self) -> None:
        live = self.training.live
        idle = live is None
        spec = selected_spec(self.session)
        can_start = (
            idle
            and self._prompt is not None
            and spec is not None
            and spec.source != "openai"
            and self.prepared is not None
        )
        self.start_button.setEnabled(bool(can_start))
        self.pause_button.setEnabled(live is not None and live.result is None)
        self.stop_button.setEnabled(live is not None and not live.stopping())
        self.form.set_editable(idle and self._prompt is not None)
        self.soft_prompts.update_buttons(idle)
