"""The Evaluate panel: the options, the variants and the results wired to one evaluation job.

`EvaluatePanel` plans with the core's `plan_evaluation` (every mistake shows before a
model loads) and runs `run_evaluation` as ONE background job on the window's
`JobRunner`, on a backend pool from the model session: the session's loaded model is
lent, any other model is loaded one at a time. The job's events arrive in batches and
fill the results grid and the summary live. The finished (or stopped) `EvalRun` is
stored in the library under the evaluated prompt and listed in the panel's history,
from where any earlier run can be shown again (with its analysis: intervals, paired
tests, per-label metrics, groups), rated output by output, and exported as CSV, JSON or
a report with pictures.

Before it starts, the panel estimates the work (cases × variants, and a time from what
earlier evaluations of this prompt measured on this machine: `core/flows/estimate.py`),
shows it live as the settings change, and asks above `CONFIRM_ABOVE_S`. The settings sit
above the results in a splitter and can be hidden; the variants are remembered per
prompt for the session, and showing an earlier run puts its settings back.

The GUI thread never calls a model: backends are loaded, used and closed inside the job.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from workbench.core.backends.base import BackendError
from workbench.core.backends.pool import BackendPool
from workbench.core.evaluation import (
    EvalEvent,
    EvaluationError,
)
from workbench.core.flows.estimate import WorkEstimate
from workbench.core.flows.evaluate import (
    EvalPlan,
    check_runnable,
    plan_evaluation,
    run_evaluation,
)
from workbench.core.library import Library, LibraryError
from workbench.core.models import EvalRun, Prompt, TestSet, VariantSpec
from workbench.ui.evaluate.browser import ResultsBrowser
from workbench.ui.evaluate.controls import RunControls, confirm_long_work
from workbench.ui.evaluate.editor import VariantsEditor
from workbench.ui.evaluate.live import LiveRun, ended_text
from workbench.ui.evaluate.options import EvalOptions
from workbench.ui.evaluate.variants import VariantsModel
from workbench.ui.jobs import JobRunner
from workbench.ui.session import ModelSession, PromptSelection, describe_error
from workbench.ui.widgets import named

log = logging.getLogger(__name__)

# what a plan or a pool raises for the user's mistakes, shown as the panel's message
_PLAN_ERRORS = (EvaluationError, LibraryError, BackendError, LookupError, ValueError)


class EvaluatePanel(QWidget):
    """Compare prompt variants over a test set; see the module docstring."""

    evaluation_finished = Signal(object)
    """The stored `EvalRun` (complete, or partial after Stop)."""

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
        self._live: LiveRun | None = None
        self._history: list[EvalRun] = []  # the prompt's stored runs: what speed they measured
        self._variants_of: dict[str, list[VariantSpec]] = {}  # per prompt, for the session
        self._shown_of: dict[str, str] = {}  # per prompt: the run it showed, for the session
        self._clear_on_change = False  # the message is about settings since changed

        self.options = EvalOptions(library)
        self.split_combo = self.options.split_combo
        self.mode_combo = self.options.mode_combo
        self.test_set_combo = self.options.test_set_combo

        # -- variants
        self.variants_model = VariantsModel(self)
        self.variants = VariantsEditor(self.variants_model)

        # -- run controls
        self.controls = RunControls()
        self.run_button = self.controls.run_button
        self.stop_button = self.controls.stop_button
        self.progress = self.controls.progress
        self.eta = self.controls.eta
        self.estimate = self.controls.estimate
        self.message = self.controls.message
        self.settings_toggle = self.controls.settings_toggle

        # -- results
        self.browser = ResultsBrowser(save=library.save_eval_run)  # ratings are saved at once
        self.grid_model = self.browser.grid_model
        self.summary_model = self.browser.summary_model
        self.history_model = self.browser.history_model

        self.settings = QWidget()
        settings_layout = QVBoxLayout(self.settings)
        settings_layout.setContentsMargins(0, 0, 0, 0)
        settings_layout.setSpacing(4)
        settings_layout.addWidget(self.options)
        settings_layout.addWidget(self.variants, 1)
        results = QWidget()
        results_layout = QVBoxLayout(results)
        results_layout.setContentsMargins(0, 0, 0, 0)
        results_layout.setSpacing(4)
        results_layout.addWidget(self.controls)
        results_layout.addWidget(self.browser, 1)
        self.splitter = named(QSplitter(Qt.Orientation.Vertical), "evalSplitter")
        self.splitter.addWidget(self.settings)
        self.splitter.addWidget(results)
        self.splitter.setStretchFactor(0, 0)  # the settings keep their compact height
        self.splitter.setStretchFactor(1, 1)  # the results take the rest
        self.splitter.setCollapsible(1, False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.splitter)
        self._settings_toggled(True)

        # -- wiring
        self.options.test_set_picked.connect(self._update_buttons)
        self.options.changed.connect(self._settings_changed)
        self.variants.changed.connect(self._update_buttons)
        for signal in (
            self.variants_model.dataChanged,
            self.variants_model.rowsInserted,
            self.variants_model.rowsRemoved,
            self.variants_model.modelReset,
        ):
            signal.connect(self._settings_changed)
        self.settings_toggle.toggled.connect(self._settings_toggled)
        self.variants.preset_button.clicked.connect(self._preset_chosen)
        self.variants_model.edit_rejected.connect(self._show_message)
        self.run_button.clicked.connect(self.run)
        self.stop_button.clicked.connect(self.stop)
        self.browser.run_requested.connect(self.show_run)
        self.browser.message.connect(self._show_message)
        self.browser.run_saved.connect(self._run_saved)
        selection.selected.connect(self.set_prompt)
        selection.edited.connect(self.set_prompt)
        session.models_changed.connect(self.refresh)
        session.selection_changed.connect(lambda _spec, _backend: self._show_default_model())
        session.backend_changed.connect(self._model_changed)

        self._show_default_model()
        self.set_prompt(selection.prompt)

    # -- prompt, test sets, history ----------------------------------------------

    def set_prompt(self, prompt: Prompt | None) -> None:
        """Show the working copy of the selected prompt; call again after each edit."""
        previous = self._prompt
        same = prompt is not None and previous is not None and prompt.id == previous.id
        self._prompt = prompt
        if same:
            # an edit of the working copy (called per keystroke): re-read the stored
            # versions only after a save made a new one
            if prompt and previous and prompt.version != previous.version:
                self.refresh()
            return
        # another prompt: its variants (as left this session, else its own default), test
        # sets and history
        if previous is not None:
            self._variants_of[previous.id] = self.variants_model.variants()
            shown = self.shown_run()
            live = self._live is not None and self._live.shown
            if shown is not None and shown.prompt_id == previous.id and not live:
                self._shown_of[previous.id] = shown.id
        if prompt is not None:
            remembered = self._variants_of.get(prompt.id)
            self.variants_model.set_variants(remembered or [VariantSpec(name=prompt.name)])
        else:
            self.variants_model.set_variants([])
        self._history = self.library.eval_runs_for(prompt.id) if prompt else []
        self.browser.set_history(self._history)
        if self._live is not None:
            self._live.shown = False  # the run goes on (and is saved) out of sight
        # the evaluation it showed when left this session, if it is still stored
        back = self._shown_of.get(prompt.id) if prompt is not None else None
        again = next((r for r in self._history if r.id == back), None)
        test_set = self.library.test_sets.get(again.test_set_id or "") if again else None
        self._show(again, test_set)
        self._show_message("")
        self.options.set_prompt_id(prompt.id if prompt else None)
        self.refresh()

    def refresh(self) -> None:
        """Re-read the prompt's test sets, versions and the model list."""
        self.refresh_test_sets()
        versions: list[int] = []
        others: list[tuple[str, str]] = []
        soft: list[tuple[str, str]] = []
        adapters: list[tuple[str, str]] = []
        if self._prompt is not None:
            try:
                versions = [p.version for p in self.library.history(self._prompt.id)]
            except LibraryError:
                versions = []  # a prompt not (yet) in the library has no stored versions
            others = [(p.id, p.name) for p in self.library.search() if p.id != self._prompt.id]
            soft = [(sp.id, sp.name) for sp in self.library.soft_prompts_for(self._prompt.id)]
            adapters = [(a.id, a.name) for a in self.library.lora_adapters_for(self._prompt.id)]
        models = [spec.id for spec in self.session.catalog.all()]
        self.variants_model.set_choices(versions, models, others, soft, adapters)
        self._update_buttons()

    def refresh_test_sets(self) -> None:
        """Re-list the prompt's test sets (they are edited in the Test sets panel)."""
        self.options.refresh_test_sets()

    def selected_test_set(self) -> TestSet | None:
        return self.options.selected_test_set()

    def selected_metrics(self) -> list[str]:
        return self.options.selected_metrics()

    def _show_default_model(self) -> None:
        spec, backend = self.session.selected_model()
        self.variants_model.set_default_model(f"{spec.name} on {backend}")
        self._update_estimate()

    def _model_changed(self, backend: object) -> None:
        # a model ready: a complaint about it ("still loading", could not load) is over
        if backend is not None and self._live is None and self.controls.message_is_error():
            self._show_message("")

    def _settings_changed(self) -> None:
        if self._clear_on_change and self._live is None:
            self._show_message("")  # it was about the settings as they were
        self._update_estimate()
        self._update_buttons()

    def _settings_toggled(self, shown: bool) -> None:
        self.settings.setVisible(shown)
        self.controls.set_settings_shown(shown)

    # -- the estimate ----------------------------------------------------------------

    def current_estimate(self) -> WorkEstimate | None:
        """The work the settings describe now (None while they describe none)."""
        if self._prompt is None:
            return None
        default_model = self.session.selected_model()[0].id
        return self.options.estimate(self.variants_model.variants(), self._history, default_model)

    def _update_estimate(self) -> None:
        if self._live is None:  # while one runs, its progress says how far it is
            self.controls.show_estimate(self.current_estimate())

    def showEvent(self, event: QShowEvent) -> None:
        # test sets, versions, soft prompts and LoRA adapters change in other panels:
        # pick them up when this one is shown
        if self._prompt is not None and self._live is None:
            self.refresh()
        super().showEvent(event)

    # -- variants --------------------------------------------------------------------

    def _preset_chosen(self) -> None:
        if self._prompt is not None and not self._prompt.few_shot.examples:
            self._show_message(
                "This prompt has no few-shot examples, so its few-shot variant runs zero-shot."
            )

    # -- running ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._live is not None

    def run(self) -> None:
        """Start the evaluation as one background job (nothing runs on this thread)."""
        if self._live is not None:
            return
        try:
            plan = self._evaluation_plan()
            pool = self.session.pool()
            check_runnable(plan, pool)  # "still loading" shows before anything loads
            loading = pool.needs_loading(plan.specs)
        except _PLAN_ERRORS as exc:
            self._show_message(describe_error(exc), error=True)
            self._clear_on_change = True
            return
        estimate = self.current_estimate()
        if estimate is not None and not confirm_long_work(self, estimate):
            pool.close()  # nothing loaded: only tidies up
            self._show_message("Not started. Lower the Limit or the variants for less work.")
            self._clear_on_change = True
            return
        live = LiveRun(None, plan.new_run(), plan.test_set)
        self._live = live
        self._show(live.run, plan.test_set, live=True)
        self.browser.clear_history_pick()
        self.controls.start_progress(plan.total)
        self._show_message("Loading models…" if loading else "Running…")
        self._update_buttons()

        def work(cancel: Any) -> Iterator[EvalEvent]:
            # on the worker: the pool loads one model of its own at a time, and lets the
            # last one go when the run ends, however it ends
            try:
                yield from run_evaluation(plan, pool, cancel)
            finally:
                pool.close()

        live.job = self.jobs.run(
            "evaluate",
            work,
            on_events=lambda events: self._on_events(live, events),
            on_done=lambda _last: self._end(live),
            on_error=lambda exc, trace: self._on_error(live, exc, trace),
            on_cancelled=lambda: self._on_cancelled(live, pool),
        )

    def _evaluation_plan(self) -> EvalPlan:
        """Everything the job needs, checked here so mistakes show before anything loads."""
        if self._prompt is None:
            raise EvaluationError("Select a prompt to evaluate.")
        test_set = self.options.selected_test_set()
        if test_set is None:
            raise EvaluationError(
                "This prompt has no test set: create one in the Test sets panel first."
            )
        return plan_evaluation(
            self.library,
            self._prompt,
            test_set,
            self.variants_model.variants(),
            split=self.options.selected_split(),
            limit=self.options.selected_limit(),
            metrics=self.options.selected_metrics(),
            mode=self.options.selected_mode(),
        )

    def stop(self) -> None:
        """Ask the running evaluation to stop; what is done is saved as a partial run."""
        if self._live is not None and self._live.job is not None:
            self._live.job.stop()
            self.stop_button.setEnabled(False)
            self._show_message("Stopping…")

    def _on_events(self, live: LiveRun, events: list[Any]) -> None:
        new, progress, finished = live.apply(events)
        if new and live.shown:
            self.browser.add_results(live.run, new)
        if progress is not None:
            self.controls.set_progress(progress.done, progress.total, progress.eta_s)
            if not live.cancelled:
                self._show_message("Running…")  # replaces "Loading models…"
        if finished is not None:
            self._finished(live, finished)

    def _finished(self, live: LiveRun, run: EvalRun) -> None:
        done = sum(len(r) for r in run.results)
        if done == 0:  # stopped while loading: an empty run would only clutter the history
            self._show_message("Stopped before any case finished; nothing was saved.")
            return
        if live.shown:
            self._show(run, live.test_set)
        try:
            self.library.save_eval_run(run)
        except (LibraryError, OSError) as exc:
            log.warning("could not save evaluation %s: %s", run.id, exc)
            self._show_message(f"The evaluation finished but could not be saved: {exc}", True)
            return
        # filed under the evaluated prompt (the core's rule): listed while it is shown
        if self._prompt is not None and self._prompt.id == run.prompt_id:
            self.browser.add_to_history(run)
            self._history.insert(0, run)  # its speed counts for the next estimate
        elif run.prompt_id is not None:  # it ended out of sight: shown when it is back
            self._shown_of[run.prompt_id] = run.id
        self._show_message(ended_text(run, self.progress.maximum()))
        self.evaluation_finished.emit(run)

    def _on_cancelled(self, live: LiveRun, pool: BackendPool) -> None:
        pool.close()  # it never ran, so it loaded nothing: this only tidies up
        self._end(live)
        self._show_message("Stopped before it started; nothing was saved.")

    def _on_error(self, live: LiveRun, exc: BaseException, trace: str) -> None:
        log.error("the evaluation failed: %s\n%s", describe_error(exc), trace)
        self._end(live)
        self._show_message(f"The evaluation failed: {describe_error(exc)}", error=True)

    def _end(self, live: LiveRun) -> None:
        if self._live is live:
            self._live = None
        self.controls.end_progress()
        self._update_buttons()
        self._update_estimate()

    # -- showing and exporting results -----------------------------------------------

    def _show(self, run: EvalRun | None, test_set: TestSet | None, live: bool = False) -> None:
        prompt = self._prompt
        name = prompt.name if prompt is not None and run and run.prompt_id == prompt.id else None
        self.browser.display(run, test_set, live, prompt_name=name)
        self._update_buttons()

    def run_added(self, run: EvalRun) -> None:
        """An evaluation saved elsewhere (the Methods tab's comparison): listed among
        the earlier evaluations when it is of the prompt shown."""
        if self._prompt is not None and run.prompt_id == self._prompt.id:
            self._history = [run, *(r for r in self._history if r.id != run.id)]
            self.browser.add_to_history(run)

    def show_run(self, run: EvalRun) -> None:
        """Show a stored evaluation (its test set from the library; unknown when gone)."""
        if self._live is not None:
            self._live.shown = False
        test_set = self.library.test_sets.get(run.test_set_id) if run.test_set_id else None
        if self._live is None:  # its settings, ready to run again (not under a running one)
            self.options.show_settings(run)
            self.variants_model.set_variants(run.variants)
        self._show(run, test_set)
        if test_set is None:
            self._show_message(
                f"The test set {run.test_set_name!r} of this run is no longer in the library: "
                "its variables are unknown."
            )

    def _run_saved(self, run: EvalRun) -> None:
        """A shown run saved again (a rating): the prompt's runs hold the new copy."""
        self._history = [run if r.id == run.id else r for r in self._history]

    def shown_run(self) -> EvalRun | None:
        return self.browser.shown_run()

    def export_csv(self, path: str | Path) -> None:
        """Write the shown run as CSV (one line per case and variant), atomically."""
        self.browser.export_csv(path)

    def export_json(self, path: str | Path) -> None:
        """Write the shown run as JSON, atomically."""
        self.browser.export_json(path)

    # -- state --------------------------------------------------------------------------

    def _show_message(self, text: str, error: bool = False) -> None:
        self._clear_on_change = False
        self.controls.show_message(text, error)

    def _update_buttons(self) -> None:
        idle = self._live is None
        editable = idle and self._prompt is not None
        self.run_button.setEnabled(
            editable and self.options.has_test_sets() and self.variants_model.rowCount() > 0
        )
        self.stop_button.setEnabled(not idle and not self._live_cancelled())
        self.options.set_editable(editable)
        self.variants.set_editable(editable)
        self.browser.set_exportable(idle)

    def _live_cancelled(self) -> bool:
        return self._live is not None and self._live.cancelled
