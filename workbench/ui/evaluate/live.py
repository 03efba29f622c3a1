"""The evaluation in progress, as its job's events fill it in, and what its end reads as."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workbench.core.evaluation import CaseDone, EvalFinished, Progress, summarise
from workbench.core.flows.report import count
from workbench.core.models import CaseResult, EvalRun, TestSet
from workbench.ui.jobs import Job


@dataclass
class LiveRun:
    """The evaluation in progress: the job, and the run as its events fill it in."""

    job: Job | None
    run: EvalRun
    test_set: TestSet
    shown: bool = True  # False once the user shows another run meanwhile

    def apply(
        self, events: Sequence[Any]
    ) -> tuple[list[tuple[int, CaseResult]], Progress | None, EvalRun | None]:
        """Take in a batch of events: the new (variant, result) pairs (the run's summaries
        brought up to date), the last progress, and the finished run if it ended."""
        new: list[tuple[int, CaseResult]] = []
        progress: Progress | None = None
        finished: EvalRun | None = None
        for event in events:
            if isinstance(event, CaseDone):
                self.run.results[event.variant].append(event.result)
                new.append((event.variant, event.result))
            elif isinstance(event, Progress):
                progress = event
            elif isinstance(event, EvalFinished):
                finished = event.run
        if new and self.shown:
            self.run.summaries = [
                summarise(spec.name, results, self.test_set, self.run.metrics)
                for spec, results in zip(self.run.variants, self.run.results, strict=True)
            ]
        return new, progress, finished

    @property
    def cancelled(self) -> bool:
        return self.job is not None and self.job.cancel.is_set()


def ended_text(run: EvalRun, total: int) -> str:
    """ "Finished: 4 cases × 3 variants." or how much of a stopped run was kept."""
    if run.complete:
        cases = len({r.row for results in run.results for r in results})
        return f"Finished: {count(cases, 'case')} × {count(len(run.variants), 'variant')}."
    done = sum(len(r) for r in run.results)
    return f"Stopped: {done:,} of {count(total, 'result')} were saved as a partial run."
