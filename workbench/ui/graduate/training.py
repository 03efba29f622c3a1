"""One graduation on the job runner: `graduation.graduate()` (a soft prompt) or
`lora.graduate_lora()` (a LoRA adapter) as a single job (train, save, compare), its
events turned into signals for the panel, Pause and Stop, and the sentence that says how
it ended."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal

from workbench.core import graduation
from workbench.core.backends.base import BackendSettings
from workbench.core.evaluation import CaseDone, EvalFinished, Progress
from workbench.core.flows.report import format_duration, format_step
from workbench.core.fsutil import Cancelled
from workbench.core.library import Library
from workbench.core.lora import LoraAdapterSaved, LoraFinished, LoraResult, graduate_lora
from workbench.core.models import (
    EvalRun,
    LoraAdapter,
    LoraSettings,
    ModelSpec,
    Prompt,
    SoftPrompt,
    TestSet,
    TrainConfig,
)
from workbench.core.tuning import StepEvent, TuningFinished, TuningResult, ValidationEvent
from workbench.ui.graduate.comparison import comparison_sentence
from workbench.ui.jobs import Job, JobRunner

log = logging.getLogger(__name__)

NOT_STARTED = "Stopped before training started; nothing was saved."


@dataclass
class Live:
    """The graduation in progress and what it reported so far."""

    job: Job | None
    pause: threading.Event
    prompt_id: str
    test_set_id: str | None = None
    started_comparison: bool = False
    result: TuningResult | LoraResult | None = None
    saved: SoftPrompt | LoraAdapter | None = None
    comparison: EvalRun | None = None
    last_step: StepEvent | None = None
    comparison_text: str = ""
    soft_ids_before: frozenset[str] = frozenset()
    lora: bool = False  # a LoRA adapter, not a soft prompt

    @property
    def noun(self) -> str:
        return "LoRA adapter" if self.lora else "soft prompt"

    def stopping(self) -> bool:
        return self.job is not None and self.job.cancel.is_set()


def done_message(live: Live) -> str:
    """How a run that returned ended: the engine's words, what was saved, the comparison."""
    result = live.result
    if result is None:  # the flow yielded no result (it always does once it trains)
        return NOT_STARTED
    notes = [result.message[:1].upper() + result.message[1:] + "."]
    if live.saved is None:
        notes.append("No step finished, so nothing was saved.")
    if live.comparison is not None:
        notes.append(comparison_sentence(live.comparison))
    elif live.saved is not None and live.test_set_id is None:
        notes.append("No test set, so no comparison.")
    elif live.saved is not None and not live.started_comparison:
        notes.append("No comparison (stopped, or no held-out rows).")
    return " ".join(notes)


class GraduationRun(QObject):
    """Runs one graduation at a time; the panel shows what the signals say."""

    status = Signal(str)  # the one-line status: step, loss, speed, ETA, memory
    message = Signal(str)  # the panel's message line
    progress = Signal(str)  # the comparison's progress
    step = Signal(object)  # a StepEvent, for the plot
    validation = Signal(object)  # a ValidationEvent, for the plot
    trained = Signal(object)  # the TuningResult (LoraResult), when training ended
    saved = Signal(object)  # the stored SoftPrompt (or LoraAdapter)
    compared = Signal(object)  # the comparison's EvalRun
    ended = Signal(object)  # the Live that ended (done, stopped, failed)

    def __init__(self, library: Library, jobs: JobRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self.jobs = jobs
        self.live: Live | None = None

    @property
    def paused(self) -> bool:
        return self.live is not None and self.live.pause.is_set()

    def start(
        self,
        prompt: Prompt,
        test_set: TestSet | None,
        spec: ModelSpec,
        config: TrainConfig,
        settings: BackendSettings,
        lora: LoraSettings | None = None,
    ) -> Live:
        """Train, save and compare as one job (nothing heavy runs on this thread): a
        soft prompt, or with `lora` a LoRA adapter of those settings."""
        library = self.library
        before = frozenset(s.id for s in library.soft_prompts_for(prompt.id)) | frozenset(
            a.id for a in library.lora_adapters_for(prompt.id)
        )
        live = Live(
            job=None,
            pause=threading.Event(),
            prompt_id=prompt.id,
            test_set_id=test_set.id if test_set else None,
            soft_ids_before=before,
            lora=lora is not None,
        )

        def work(cancel: threading.Event) -> Any:
            if lora is not None:
                return graduate_lora(
                    library,
                    prompt,
                    test_set,
                    spec,
                    config,
                    lora,
                    cancel,
                    live.pause,
                    backend_settings=settings,
                    compare=True,
                )
            return graduation.graduate(
                library, prompt, test_set, spec, config, cancel, live.pause, settings=settings
            )

        self.live = live
        live.job = self.jobs.run(
            f"graduate {prompt.name}",
            work,
            on_events=lambda events: self._on_events(live, events),
            on_done=lambda last: self._end(live, done_message(live)),
            on_error=lambda exc, trace: self._on_error(live, exc, trace),
            on_cancelled=lambda: self._end(live, NOT_STARTED),
        )
        return live

    def toggle_pause(self) -> None:
        """Pause between steps (the worker idles), or resume."""
        live = self.live
        if live is None:
            return
        if live.pause.is_set():
            live.pause.clear()
            self.status.emit(format_step(live.last_step) if live.last_step else "Resumed")
        else:
            live.pause.set()
            step = live.last_step.step if live.last_step is not None else 0
            self.status.emit(f"Paused after step {step} (finishing the current step)…")

    def stop(self) -> None:
        """Stop; the engine keeps the best prompt so far and still saves it."""
        live = self.live
        if live is None or live.job is None:
            return
        live.job.stop()
        self.status.emit(f"Stopping: the best {live.noun} so far will be kept…")

    # -- what the job reports ----------------------------------------------------------

    def _on_events(self, live: Live, events: list[Any]) -> None:
        step: StepEvent | None = None
        for event in events:
            if isinstance(event, StepEvent):
                self.step.emit(event)
                step = event
            elif isinstance(event, ValidationEvent):
                self.validation.emit(event)
            elif isinstance(event, TuningFinished | LoraFinished):
                live.result = event.result
                self.trained.emit(event.result)
                self.message.emit(event.result.message)
                self.status.emit(f"Training ended: {event.result.message}; saving…")
            elif isinstance(event, graduation.SoftPromptSaved):
                live.saved = event.soft_prompt
                self.saved.emit(event.soft_prompt)
            elif isinstance(event, LoraAdapterSaved):
                live.saved = event.adapter
                self.saved.emit(event.adapter)
            elif isinstance(event, graduation.ComparisonStarted):
                live.started_comparison = True
                total = len(event.variants) * event.rows
                live.comparison_text = (
                    f"Comparing {' / '.join(event.variants)} on {event.rows} held-out rows"
                )
                self.progress.emit(f"{live.comparison_text}: 0/{total}")
                self.status.emit("Comparing on the held-out rows…")
            elif isinstance(event, Progress):
                eta = f" · ETA {format_duration(event.eta_s)}" if event.eta_s else ""
                self.progress.emit(f"{live.comparison_text}: {event.done}/{event.total}{eta}")
            elif isinstance(event, graduation.ComparisonFinished):
                live.comparison = event.run
                self.compared.emit(event.run)
            elif isinstance(event, CaseDone | EvalFinished):
                pass  # the comparison table shows the summaries at the end
        if step is not None:
            live.last_step = step
            if live.result is None:
                self.status.emit(format_step(step, live.pause.is_set()))

    def _on_error(self, live: Live, exc: BaseException, trace: str) -> None:
        if isinstance(exc, Cancelled):  # Stop while the model was being prepared
            self._end(live, "Stopped before training started; nothing was saved.")
            return
        log.error("graduation failed: %s\n%s", exc, trace)
        method = "lora" if live.lora else "soft"
        text = f"Training failed: {graduation.describe_training_error(exc, method)}"
        if live.saved is None:
            # a soft prompt (adapter) saved just before the failure (e.g. in the
            # comparison) may not have reached the panel as an event: look in the library
            stored: list[SoftPrompt | LoraAdapter] = [
                *self.library.soft_prompts_for(live.prompt_id),
                *self.library.lora_adapters_for(live.prompt_id),
            ]
            new = [s for s in stored if s.id not in live.soft_ids_before]
            if new:
                live.saved = max(new, key=lambda s: s.created)
                self.saved.emit(live.saved)
        if live.saved is not None:
            text += f" (the {live.noun} “{live.saved.name}” was saved before the failure)"
        self._end(live, text)

    def _end(self, live: Live, message: str) -> None:
        if self.live is not live:
            return
        self.live = None
        self.message.emit(message)
        if live.last_step is not None:
            self.status.emit(format_step(live.last_step))
        elif live.result is None:
            self.status.emit("")
        self.ended.emit(live)
