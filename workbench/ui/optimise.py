"""Optimise… (from the Few-shot tab): search the prompt's few-shot examples, their number,
order and style, and optionally its instruction, on the test set's validation split; then
compare the winner with the prompt as written on the held-out split. Nothing changes
until Apply, which saves the winner as the prompt's next version
(`core/flows/optimise.py` is the flow; `workbench optimise` runs the same one)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.core.analysis import analyse
from workbench.core.evaluation import EvalFinished
from workbench.core.flows.optimise import (
    DEFAULT_BUDGET,
    DEFAULT_MAX_EXAMPLES,
    OPTIMISED,
    InstructionsProposed,
    OptimisePlan,
    apply_winner,
    compare_held_out,
    plan_optimisation,
    run_optimisation,
)
from workbench.core.flows.report import count, format_percent, format_progress
from workbench.core.library import Library
from workbench.core.models import EvalRun, Prompt
from workbench.core.optimise import CandidateScored, OptimiseError, SearchFinished, SearchResult
from workbench.ui.jobs import Job, JobRunner
from workbench.ui.session import ModelSession, describe_error

log = logging.getLogger(__name__)

SEPARATOR = "---"  # a line of its own between alternative instructions


class CandidatePlot(QWidget):
    """The candidates' validation scores, sorted, with the prompt as written marked: how
    fragile the prompt is, at a glance."""

    def __init__(self, parent: QWidget | None = None) -> None:
        import pyqtgraph as pg  # type: ignore[import-untyped]  # not needed at start-up

        super().__init__(parent)
        self.plot = pg.PlotWidget()
        self.plot.setObjectName("optimiseCandidates")
        self.plot.setBackground(None)
        self.plot.setLabel("left", "validation score (%)")
        self.plot.setLabel("bottom", "candidates, best first")
        self.plot.setYRange(0, 100)
        self.plot.setMinimumHeight(180)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush=pg.mkBrush("#7a8ca6"))
        self.marked = pg.BarGraphItem(x=[], height=[], width=0.8, brush=pg.mkBrush("#e0821f"))
        self.plot.addItem(self.bars)
        self.plot.addItem(self.marked)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self.scores: list[float] = []
        self.current_at: int | None = None

    def show_scores(self, scores: list[tuple[bool, float]]) -> None:
        """(is the prompt as written, score) per candidate, in any order."""
        ranked = sorted(scores, key=lambda s: -s[1])
        self.scores = [s for _, s in ranked]
        self.current_at = next((i for i, (cur, _) in enumerate(ranked) if cur), None)
        xs = list(range(len(ranked)))
        heights = [s * 100 for s in self.scores]
        others = [(x, h) for x, h in zip(xs, heights, strict=True) if x != self.current_at]
        self.bars.setOpts(x=[x for x, _ in others], height=[h for _, h in others])
        if self.current_at is None:
            self.marked.setOpts(x=[], height=[])
        else:
            self.marked.setOpts(x=[self.current_at], height=[heights[self.current_at]])
        self.plot.setXRange(-0.5, max(len(xs), 1) - 0.5)


class OptimiseDialog(QDialog):
    """One search at a time; `applied` carries the saved new version."""

    applied = Signal(object)  # Prompt

    def __init__(
        self,
        library: Library,
        session: ModelSession,
        jobs: JobRunner,
        prompt: Prompt,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("optimiseDialog")
        self.setWindowTitle(f"Optimise the few-shot prompt — {prompt.name}")
        self.library, self.session, self.jobs, self.prompt = library, session, jobs, prompt
        self.job: Job | None = None
        self.outcome: SearchResult | None = None
        self.comparison: EvalRun | None = None
        self._scores: list[tuple[bool, float]] = []

        intro = QLabel(
            "Tries other choices of few-shot examples (this prompt's and the test set's "
            "train rows), how many, their order and style, and any alternative "
            "instructions you list, scoring each on the validation split. The winner is "
            "then compared with the prompt as written on the held-out test split, which "
            "the search never sees. Nothing changes until you press Apply."
        )
        intro.setWordWrap(True)

        self.test_set = QComboBox()
        self.test_set.setObjectName("optimiseTestSet")
        for test_set in library.test_sets_for(prompt.id):
            self.test_set.addItem(f"{test_set.name} ({len(test_set.rows)} rows)", test_set.id)
        self.budget = QSpinBox()
        self.budget.setObjectName("optimiseBudget")
        self.budget.setRange(1, 2000)
        self.budget.setValue(DEFAULT_BUDGET)
        self.max_examples = QSpinBox()
        self.max_examples.setObjectName("optimiseMaxExamples")
        self.max_examples.setRange(0, 32)
        self.max_examples.setValue(DEFAULT_MAX_EXAMPLES)
        self.seed = QSpinBox()
        self.seed.setRange(0, 1_000_000)
        self.instructions = QPlainTextEdit()
        self.instructions.setObjectName("optimiseInstructions")
        self.instructions.setPlaceholderText(
            f"Optional: alternative system messages to try, separated by a line {SEPARATOR}"
        )
        self.instructions.setMaximumHeight(90)
        self.propose = QSpinBox()
        self.propose.setObjectName("optimisePropose")
        self.propose.setRange(0, 20)
        self.propose.setSpecialValueText("none")
        self.propose.setToolTip(
            "Before the search, ask the loaded model for this many rewrites of the "
            "instruction; each is tried like your own alternatives (a small model's "
            "proposals are often poor; the validation score decides)"
        )
        form = QFormLayout()
        form.addRow("Test set", self.test_set)
        form.addRow("Candidates to try", self.budget)
        form.addRow("Most examples shown", self.max_examples)
        form.addRow("Seed", self.seed)
        form.addRow("Other instructions", self.instructions)
        form.addRow("Instructions the model proposes", self.propose)

        self.cost = QLabel()
        self.cost.setObjectName("optimiseCost")
        self.cost.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.hide()
        self.status = QLabel()
        self.status.setObjectName("optimiseStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.plot = CandidatePlot()

        self.start = QPushButton("Start")
        self.start.setObjectName("optimiseStart")
        self.stop = QPushButton("Stop")
        self.stop.setObjectName("optimiseStop")
        self.stop.setEnabled(False)
        self.apply = QPushButton("Apply as a new version")
        self.apply.setObjectName("optimiseApply")
        self.apply.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start)
        buttons.addWidget(self.stop)
        buttons.addStretch(1)
        buttons.addWidget(self.apply)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.cost)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.plot, 1)
        layout.addWidget(close)
        self.resize(760, 680)

        self.start.clicked.connect(self.run)
        self.stop.clicked.connect(self._stop)
        self.apply.clicked.connect(self._apply)
        for box in (self.budget, self.max_examples, self.seed, self.propose):
            box.valueChanged.connect(self._update_cost)
        self.test_set.currentIndexChanged.connect(self._update_cost)
        self._update_cost()

    # -- planning --------------------------------------------------------------------

    def _alternatives(self) -> list[str]:
        text = self.instructions.toPlainText()
        parts: list[str] = []
        current: list[str] = []
        for line in text.splitlines():
            if line.strip() == SEPARATOR:
                parts.append("\n".join(current).strip())
                current = []
            else:
                current.append(line)
        parts.append("\n".join(current).strip())
        return [p for p in parts if p]

    def _plan(self, save_split: bool) -> OptimisePlan:
        test_id = self.test_set.currentData()
        if test_id is None:
            raise OptimiseError(
                "This prompt has no test set: create one in the Test sets tab first."
            )
        return plan_optimisation(
            self.library if save_split else None,
            self.prompt,
            self.library.test_sets[test_id],
            self.budget.value(),
            self.seed.value(),
            self.max_examples.value(),
            self._alternatives(),
            propose=self.propose.value(),
        )

    def _update_cost(self) -> None:
        try:
            plan = self._plan(save_split=False)  # a preview never writes the split
        except (OptimiseError, ValueError) as exc:
            self.cost.setText(str(exc))
            self.start.setEnabled(False)
            return
        self.cost.setText(f"Will score {plan.describe()}.")
        self.start.setEnabled(self.job is None)

    # -- running ---------------------------------------------------------------------

    def run(self) -> None:
        if self.job is not None:
            return
        try:
            plan = self._plan(save_split=True)
            pool = self.session.pool()
        except (OptimiseError, ValueError) as exc:
            self.status.setText(describe_error(exc))
            return
        self.outcome, self.comparison, self._scores = None, None, []
        self.proposed: list[str] = []
        self.plot.show_scores([])
        self.progress.setRange(0, plan.budget)
        self.progress.setValue(0)
        self.progress.show()
        self.status.setText("Searching…")
        self.apply.setEnabled(False)

        def work(cancel: Any) -> Iterator[Any]:
            try:
                result = None
                for event in run_optimisation(plan, pool, cancel):
                    if isinstance(event, SearchFinished):
                        result = event.result
                    yield event
                if result is not None and result.complete and not cancel.is_set():
                    yield from compare_held_out(plan, result, pool, cancel)
            finally:
                pool.close()

        self.job = self.jobs.run(
            "optimise",
            work,
            on_events=lambda events: self._on_events(plan, events),
            on_done=lambda _last: self._finished(),
            on_error=self._failed,
            on_cancelled=self._finished,
        )
        self._set_running(True)

    def _set_running(self, running: bool) -> None:
        self.start.setEnabled(not running)
        self.stop.setEnabled(running)
        boxes = (self.budget, self.max_examples, self.seed, self.test_set, self.instructions)
        for box in (*boxes, self.propose):
            box.setEnabled(not running)

    def _stop(self) -> None:
        if self.job is not None:
            self.job.stop()
            self.status.setText("Stopping after this candidate…")

    def _on_events(self, plan: OptimisePlan, events: list[Any]) -> None:
        for event in events:
            if isinstance(event, CandidateScored):
                self.progress.setRange(0, event.total)
                self.progress.setValue(event.index)
                if event.rung == 0:
                    is_current = len(self._scores) == 0  # the prompt as written goes first
                    self._scores.append((is_current, event.score))
                    self.plot.show_scores(self._scores)
                self.status.setText(
                    f"{format_progress(event.index, event.total, event.eta_s)} · best so "
                    f"far {event.best_score * 100:.1f} %"
                )
            elif isinstance(event, InstructionsProposed):
                self.proposed = event.texts
                self.status.setText(
                    f"The model proposed {count(len(event.texts), 'instruction')}; searching…"
                )
            elif isinstance(event, SearchFinished):
                self.outcome = event.result
                self.status.setText(
                    self._search_text(event.result) + "\nComparing on held-out rows…"
                )
            elif isinstance(event, EvalFinished):
                self.comparison = event.run
                self.library.save_eval_run(event.run)

    def _search_text(self, result: SearchResult) -> str:
        best, score = result.best
        before = f"{result.current_score * 100:.1f} %" if result.current_score is not None else "–"
        state = "" if result.complete else " (stopped early)"
        return (
            f"{len(result.sample_scores)} candidates{state}. Validation: the winner scores "
            f"{score * 100:.1f} % ({best.describe(result.space)}), the prompt as written "
            f"{before}. Spread of the candidates: {result.spread * 100:.1f} points."
        )

    def _finished(self) -> None:
        self.job = None
        self._set_running(False)
        self.progress.hide()
        if self.outcome is None:
            self.status.setText("Stopped before any candidate was scored.")
            return
        lines = [self._search_text(self.outcome)]
        if self.comparison is not None:
            analysis = analyse(self.comparison, self.comparison_test_set())
            written, winner = analysis.variant("few-shot"), analysis.variant(OPTIMISED)
            lines.append(
                f"Held out ({written.primary.cases} rows): as written "
                f"{format_percent(written.primary.value, written.primary.interval)}, "
                f"optimised {format_percent(winner.primary.value, winner.primary.interval)} "
                f"— {analysis.pairs[0].verdict}."
            )
        self.status.setText("\n".join(lines))
        self.apply.setEnabled(self.outcome.complete)

    def comparison_test_set(self) -> Any:
        assert self.comparison is not None and self.comparison.test_set_id is not None
        return self.library.test_sets[self.comparison.test_set_id]

    def _failed(self, exc: BaseException, trace: str) -> None:
        log.error("optimising %r failed:\n%s", self.prompt.name, trace)
        self.job = None
        self._set_running(False)
        self.progress.hide()
        self.status.setText(f"Optimise failed: {describe_error(exc)}")

    def _apply(self) -> None:
        if self.outcome is None:
            return
        saved = apply_winner(self.library, self.prompt, self.outcome)
        self.prompt = saved
        self.apply.setEnabled(False)
        self.status.setText(
            self.status.text()
            + f"\nSaved as version {saved.version}; the earlier one is in History."
        )
        self.applied.emit(saved)

    def reject(self) -> None:
        if self.job is not None:
            self.job.stop()  # its outcome still arrives; the dialog only hides
        super().reject()
