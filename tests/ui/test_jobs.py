"""The job runner: one worker thread, jobs in submit order, events batched, one outcome
per job (done, error with its traceback, cancelled), results on the GUI thread, and
garbage collected on the GUI thread only (a worker that frees Qt objects crashes the
app)."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from PySide6.QtCore import QObject

from workbench.ui.jobs import Job, JobRunner


class _Cyclic(QObject):
    """A Qt object in a reference cycle: only the cyclic collector frees it."""

    freed_in: ClassVar[list[str]] = []

    def __init__(self) -> None:
        super().__init__()
        self.me = self

    def __del__(self) -> None:
        _Cyclic.freed_in.append(threading.current_thread().name)


def test_garbage_is_collected_on_the_gui_thread_while_a_runner_lives(qtbot) -> None:
    gc.collect()
    assert gc.isenabled()
    runner = JobRunner(batch_interval_s=0.01)
    try:
        assert not gc.isenabled()
        _Cyclic.freed_in.clear()
        _Cyclic()  # unreachable at once, but held by its cycle

        def allocate(cancel: threading.Event) -> int:
            # enough allocation to trigger automatic collection, were it on
            junk = [[i] for i in range(200_000)]
            return len(junk)

        with qtbot.waitSignal(runner._bridge.done, timeout=10_000):
            runner.run("allocate", allocate)
        assert _Cyclic.freed_in == []  # the worker never collected it
        qtbot.waitUntil(lambda: _Cyclic.freed_in != [], timeout=3 * runner.GC_INTERVAL_MS)
        assert _Cyclic.freed_in == ["MainThread"]
    finally:
        assert runner.shutdown()
    assert gc.isenabled()
    assert runner.shutdown()  # a second shutdown changes nothing
    assert gc.isenabled()


class _Recorder:
    """Every callback of the jobs it is given, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def job(self, runner: JobRunner, name: str, function: Any, **kwargs: Any) -> Job:
        return runner.run(
            name,
            function,
            on_events=lambda events: self.calls.append((f"{name} events", list(events))),
            on_done=lambda result: self.calls.append((f"{name} done", result)),
            on_error=(
                None
                if kwargs.get("no_error")
                else lambda exc, trace: self.calls.append((f"{name} error", (exc, trace)))
            ),
            on_cancelled=lambda: self.calls.append((f"{name} cancelled", None)),
        )


@pytest.fixture
def runner(qtbot):
    runner = JobRunner(batch_interval_s=0.05)
    yield runner
    assert runner.shutdown()


def _finished(job: Job):
    return lambda: job.finished


def test_events_are_batched_by_the_interval(qtbot, runner: JobRunner) -> None:
    release = threading.Event()

    def produce(cancel: threading.Event) -> Iterator[int]:
        yield from range(5)  # within one interval: one batch
        release.wait(5)
        time.sleep(runner.batch_interval_s * 1.5)  # past the deadline: the next batch
        yield from range(5, 10)

    record = _Recorder()
    job = record.job(runner, "count", produce)
    release.set()
    qtbot.waitUntil(_finished(job), timeout=5000)
    batches = [events for name, events in record.calls if name == "count events"]
    assert [e for batch in batches for e in batch] == list(range(10))
    assert 2 <= len(batches) < 10  # batched, not one signal per event
    assert record.calls[-1] == ("count done", 9)  # the result is the last event
    assert job.outcome == "done"


def test_jobs_run_in_the_order_they_were_submitted(qtbot, runner: JobRunner) -> None:
    order: list[int] = []
    gate = threading.Event()

    def step(n: int) -> Any:
        def work(cancel: threading.Event) -> int:
            if n == 0:
                gate.wait(5)  # the first job holds the worker while the rest queue
            order.append(n)
            return n

        return work

    record = _Recorder()
    jobs = [record.job(runner, f"job{n}", step(n)) for n in range(5)]
    assert runner.busy
    gate.set()
    qtbot.waitUntil(_finished(jobs[-1]), timeout=5000)
    assert order == [0, 1, 2, 3, 4]
    assert [name for name, _ in record.calls] == [f"job{n} done" for n in range(5)]
    qtbot.waitUntil(lambda: not runner.busy, timeout=1000)


def test_a_job_stopped_before_it_starts_is_cancelled_not_done(qtbot, runner: JobRunner) -> None:
    gate = threading.Event()
    ran: list[str] = []
    record = _Recorder()
    first = record.job(runner, "first", lambda cancel: gate.wait(5))
    second = record.job(runner, "second", lambda cancel: ran.append("second"))
    second.stop()  # still queued behind the first
    gate.set()
    qtbot.waitUntil(_finished(second), timeout=5000)
    assert ran == []
    assert second.outcome == "cancelled" and not second.started
    assert ("second cancelled", None) in record.calls
    assert not any(name == "second done" for name, _ in record.calls)
    assert first.outcome == "done"


def test_a_stopped_generator_ends_done_with_what_it_yielded(qtbot, runner: JobRunner) -> None:
    started = threading.Event()

    def until_stopped(cancel: threading.Event) -> Iterator[str]:
        yield "one"
        started.set()
        cancel.wait(5)
        yield "stopped"

    record = _Recorder()
    job = record.job(runner, "long", until_stopped)
    assert started.wait(5)
    job.stop()
    qtbot.waitUntil(_finished(job), timeout=5000)
    assert job.outcome == "done" and record.calls[-1] == ("long done", "stopped")


def test_an_error_after_a_partial_batch_delivers_the_events_then_the_traceback(
    qtbot, runner: JobRunner, caplog: pytest.LogCaptureFixture
) -> None:
    def partial(cancel: threading.Event) -> Iterator[str]:
        yield "soft prompt saved"
        yield "step 1"
        raise ValueError("out of disk")

    record = _Recorder()
    with caplog.at_level(logging.ERROR, logger="workbench.ui.jobs"):
        job = record.job(runner, "train", partial)
        qtbot.waitUntil(_finished(job), timeout=5000)
    names = [name for name, _ in record.calls]
    assert names == ["train events", "train error"]
    assert record.calls[0][1] == ["soft prompt saved", "step 1"]
    exc, trace = record.calls[1][1]
    assert isinstance(exc, ValueError) and str(exc) == "out of disk"
    assert "Traceback" in trace and "ValueError: out of disk" in trace and "partial" in trace
    assert job.outcome == "error"
    assert "out of disk" in caplog.text  # logged with its traceback


def test_a_job_without_an_error_callback_reports_job_failed(qtbot, runner: JobRunner) -> None:
    def broken(cancel: threading.Event) -> None:
        raise RuntimeError("nobody listens")

    record = _Recorder()
    with qtbot.waitSignal(runner.job_failed, timeout=5000) as failed:
        job = record.job(runner, "orphan", broken, no_error=True)
    name, exc, trace = failed.args
    assert name == "orphan" and isinstance(exc, RuntimeError)
    assert "RuntimeError: nobody listens" in trace
    assert job.outcome == "error"
    assert record.calls == []

    # with an error callback, job_failed stays quiet
    with qtbot.assertNotEmitted(runner.job_failed, wait=100):
        other = record.job(runner, "handled", broken)
        qtbot.waitUntil(_finished(other), timeout=5000)
    assert [name for name, _ in record.calls] == ["handled error"]


def test_a_job_submitted_after_shutdown_ends_cancelled(qtbot) -> None:
    runner = JobRunner(batch_interval_s=0.01)
    assert runner.shutdown()
    ran: list[str] = []
    outcome: list[str] = []
    job = runner.run(
        "late",
        lambda cancel: ran.append("ran"),
        on_done=lambda result: outcome.append("done"),
        on_cancelled=lambda: outcome.append("cancelled"),
    )
    assert outcome == []  # never inside run(): the caller holds the job first
    qtbot.waitUntil(lambda: job.finished, timeout=2000)
    assert job.outcome == "cancelled" and outcome == ["cancelled"] and ran == []
