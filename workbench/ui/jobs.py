"""The one place that owns threads: runs core generators and calls off the GUI thread.

A `JobRunner` has a worker thread and a queue for model jobs, so they run one at a
time (two model jobs oversubscribe a small CPU, and llama.cpp crashes when two threads
call one model), and a second, `light` lane for short work that never touches a model
(rendering the editor's preview), so typing never waits behind a training run. A job is
a callable returning an iterator of events
(a core generator) or a plain value. What it yields is batched on the worker and
handed to the GUI thread through queued Qt signals at most every `batch_interval_s`;
the GUI thread never waits on the worker. Stop sets the job's `threading.Event`
with a plain call — the core generator checks it at its own granularity.

Garbage collection: Python's cyclic collector runs in whichever thread happens to
allocate, so the worker could free Qt objects (dialogs, widgets in reference cycles)
that belong to the GUI thread, and Qt crashes when that happens (seen as a segfault in
the worker, in the middle of unrelated Python code). While a runner lives, automatic
collection is off and the runner collects on the GUI thread from a timer: the young
generation every second, and every ten seconds the middle one while a job runs or
everything when the worker is idle (as Anki does).

Outcomes: a job ends in exactly one of three ways, each with its own callback on the GUI
thread — `on_done(result)` (the function returned, or its generator ended: the result is
the last event, None when it yielded nothing), `on_error(exc, traceback_text)` (it
raised; the traceback is logged too), or `on_cancelled()` (stopped before it started:
it never ran). An error in a job without `on_error` is not swallowed: the runner emits
`job_failed`, which the main window shows as an error dialog.
"""

from __future__ import annotations

import gc
import itertools
import logging
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from workbench.core.fsutil import Cancelled

JobFunction = Callable[[threading.Event], Any]
Lane = Literal["model", "light"]
"""`model`: the one worker that runs everything touching a model, one job at a time.
`light`: a second worker for short CPU work that never touches a model (rendering the
editor's preview), so it never waits behind a training run."""

log = logging.getLogger(__name__)


@dataclass
class Job:
    """A unit of background work; callbacks run on the GUI thread."""

    name: str
    function: JobFunction
    on_events: Callable[[list[Any]], None] | None = None
    on_done: Callable[[Any], None] | None = None
    on_error: Callable[[BaseException, str], None] | None = None
    on_cancelled: Callable[[], None] | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    id: int = 0
    started: bool = False
    finished: bool = False
    outcome: str | None = None  # "done", "error" or "cancelled" once finished
    lane: Lane = "model"

    def stop(self) -> None:
        """Ask the job to stop; it ends at its next check (token, step, row)."""
        self.cancel.set()


class _Bridge(QObject):
    """Lives in the GUI thread; the worker emits, Qt queues the calls to the GUI thread."""

    events = Signal(int, list)
    done = Signal(int, object)
    failed = Signal(int, object, str)
    cancelled = Signal(int)
    state = Signal(int, bool)


class JobRunner(QObject):
    """Runs model jobs one at a time on one worker thread (and light jobs, which never
    touch a model, on a second one)."""

    busy_changed = Signal(bool)
    job_failed = Signal(str, object, str)  # job name, exception, traceback: no on_error

    _live = 0  # runners alive: automatic garbage collection is off while any is
    GC_INTERVAL_MS = 1000
    FULL_GC_EVERY = 10  # ticks between full collections while the worker is idle

    def __init__(self, parent: QObject | None = None, batch_interval_s: float = 0.03) -> None:
        super().__init__(parent)
        self.batch_interval_s = batch_interval_s
        self._queues: dict[str, queue.Queue[Job | None]] = {
            "model": queue.Queue(),
            "light": queue.Queue(),
        }
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._bridge = _Bridge()
        self._bridge.events.connect(self._deliver_events)
        self._bridge.done.connect(self._deliver_done)
        self._bridge.failed.connect(self._deliver_error)
        self._bridge.cancelled.connect(self._deliver_cancelled)
        self._bridge.state.connect(self._deliver_state)
        self._closed = False
        self._thread = threading.Thread(
            target=self._work, args=("model",), name="workbench-jobs", daemon=True
        )
        self._light_thread = threading.Thread(
            target=self._work, args=("light",), name="workbench-light", daemon=True
        )
        self._thread.start()
        self._light_thread.start()
        JobRunner._live += 1
        gc.disable()
        self._gc_ticks = 0
        self._gc_timer = QTimer(self)
        self._gc_timer.timeout.connect(self._collect_garbage)
        self._gc_timer.start(self.GC_INTERVAL_MS)

    def _collect_garbage(self) -> None:
        """On the GUI thread: young objects every tick, everything now and then when idle
        (a full collection of a big heap takes tens of milliseconds)."""
        self._gc_ticks += 1
        if self._gc_ticks < self.FULL_GC_EVERY:
            gc.collect(0)
            return
        self._gc_ticks = 0
        # everything when idle; the middle generation while a job runs (older garbage,
        # such as closed dialogs, must not pile up through a long training run)
        gc.collect(1 if self.busy else 2)

    # -- GUI-thread API ---------------------------------------------------------

    def submit(self, job: Job) -> Job:
        """Queue a job. After `shutdown` it never runs: it ends cancelled (a closed
        window's timer or late result may still ask for work; that is no error)."""
        job.id = next(self._ids)
        self._jobs[job.id] = job
        if self._closed:
            job.cancel.set()
            log.debug("job %r submitted after shutdown: cancelled", job.name)
            # delivered from the event loop, like every outcome: never inside submit
            QTimer.singleShot(0, self, lambda: self._deliver_cancelled(job.id))
            return job
        self._queues[job.lane].put(job)
        return job

    def run(
        self,
        name: str,
        function: JobFunction,
        on_events: Callable[[list[Any]], None] | None = None,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException, str], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
        lane: Lane = "model",
    ) -> Job:
        job = Job(name, function, on_events, on_done, on_error, on_cancelled, lane=lane)
        return self.submit(job)

    @property
    def closed(self) -> bool:
        """True once `shutdown` ran: no new jobs (results still queued arrive late)."""
        return self._closed

    @property
    def ended(self) -> bool:
        """True once shut down and the worker has finished (nothing runs any more)."""
        return self._closed and not (self._thread.is_alive() or self._light_thread.is_alive())

    @property
    def busy(self) -> bool:
        """A model job is queued or running (light jobs do not count)."""
        return any(not j.finished and j.lane == "model" for j in self._jobs.values())

    def stop_all(self) -> None:
        for job in list(self._jobs.values()):
            job.stop()

    def shutdown(self, timeout_s: float = 5.0) -> bool:
        """Stop every job and end the worker; True when it ended in time."""
        already = self._closed
        self._closed = True
        self.stop_all()
        for lane_queue in self._queues.values():
            lane_queue.put(None)
        deadline = time.monotonic() + timeout_s
        self._thread.join(timeout_s)
        self._light_thread.join(max(0.0, deadline - time.monotonic()))
        ended = not (self._thread.is_alive() or self._light_thread.is_alive())
        if not already:
            self._gc_timer.stop()
            JobRunner._live -= 1
            gc.collect()  # here, on the GUI thread
            if JobRunner._live == 0 and ended:
                gc.enable()
        return ended

    # -- worker thread ----------------------------------------------------------

    def _work(self, lane: str) -> None:
        while True:
            job = self._queues[lane].get()
            if job is None:
                return
            if job.cancel.is_set():
                self._bridge.cancelled.emit(job.id)
                continue
            self._bridge.state.emit(job.id, True)
            try:
                result = job.function(job.cancel)
                if isinstance(result, Iterator):
                    result = self._drain(job, result)
                self._bridge.done.emit(job.id, result)
            except BaseException as exc:  # reported to the GUI, never kills the worker
                trace = traceback.format_exc()
                if isinstance(exc, Cancelled):  # the user's Stop, not a failure
                    log.info("job %r stopped: %s", job.name, exc)
                else:
                    log.error("job %r failed:\n%s", job.name, trace)
                self._bridge.failed.emit(job.id, exc, trace)

    def _drain(self, job: Job, events: Iterator[Any]) -> Any:
        """Forward a generator's events in batches; returns the last event."""
        batch: list[Any] = []
        last: Any = None
        deadline = time.monotonic() + self.batch_interval_s
        try:
            for event in events:
                last = event
                batch.append(event)
                now = time.monotonic()
                if now >= deadline:
                    self._bridge.events.emit(job.id, batch)
                    batch = []
                    deadline = now + self.batch_interval_s
        finally:
            # deliver what was produced before an error too (e.g. "soft prompt saved")
            if batch:
                self._bridge.events.emit(job.id, batch)
        return last

    # -- delivery on the GUI thread -----------------------------------------------

    @Slot(int, bool)
    def _deliver_state(self, job_id: int, started: bool) -> None:
        job = self._jobs.get(job_id)
        if job is not None:
            job.started = started
        self.busy_changed.emit(self.busy)

    @Slot(int, list)
    def _deliver_events(self, job_id: int, events: list[Any]) -> None:
        job = self._jobs.get(job_id)
        if job is not None and job.on_events is not None:
            job.on_events(events)

    @Slot(int, object)
    def _deliver_done(self, job_id: int, result: Any) -> None:
        job = self._jobs.pop(job_id, None)
        if job is None:
            return
        job.finished = True
        job.outcome = "done"
        if job.on_done is not None:
            job.on_done(result)
        self.busy_changed.emit(self.busy)

    @Slot(int)
    def _deliver_cancelled(self, job_id: int) -> None:
        job = self._jobs.pop(job_id, None)
        if job is None:
            return
        job.finished = True
        job.outcome = "cancelled"
        if job.on_cancelled is not None:
            job.on_cancelled()
        self.busy_changed.emit(self.busy)

    @Slot(int, object, str)
    def _deliver_error(self, job_id: int, error: BaseException, trace: str) -> None:
        job = self._jobs.pop(job_id, None)
        if job is None:
            return
        job.finished = True
        job.outcome = "error"
        if job.on_error is not None:
            job.on_error(error, trace)
        else:
            self.job_failed.emit(job.name, error, trace)
        self.busy_changed.emit(self.busy)
