"""What the Evaluate panel tests share: a sentiment prompt and test set, a stored run, a
fake backend, and small ways to press the panel's buttons and read its message."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import ClassVar

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton

from workbench.core.backends.base import Backend, Finished
from workbench.core.evaluation import summarise
from workbench.core.library import Library
from workbench.core.models import (
    CaseResult,
    CoTMode,
    EvalRun,
    FewShot,
    FewShotExample,
    GenerationParams,
    Message,
    ModelSpec,
    Prompt,
    TestRow,
    TestSet,
    VariantSpec,
)
from workbench.ui.evaluate import EvaluatePanel

MODEL_TIMEOUT_MS = 120_000

REVIEWS = [
    ("I love it! Wonderful, perfect, the best purchase ever.", "positive", "a"),
    ("Terrible. It broke on day one, awful, I hate it.", "negative", "b"),
    ("Great value and it works beautifully, very happy.", "positive", "a"),
    ("Awful quality, a complete waste of money.", "negative", "b"),
]


def sentiment_prompt(library: Library) -> Prompt:
    return library.new_prompt(
        "Review sentiment",
        system="Classify the sentiment of the review as positive or negative. "
        "Answer with one word.",
        user_template="Review: {{ review }}",
        few_shot=FewShot(
            examples=[
                FewShotExample(
                    vars={"review": "Absolutely brilliant, I adore it."}, output="positive"
                ),
                FewShotExample(vars={"review": "Dreadful, it stopped working."}, output="negative"),
            ]
        ),
        params=GenerationParams(max_new_tokens=4),
    )


def sentiment_set(
    library: Library, prompt: Prompt, count: int = 4, splits: bool = False, name: str = "reviews"
) -> TestSet:
    rows = []
    for i in range(count):
        review, label, group = REVIEWS[i % len(REVIEWS)]
        split = ("test" if i % 2 else "train") if splits else None
        rows.append(
            TestRow(vars={"review": f"{review} ({i})"}, expected=label, group=group, split=split)
        )
    return library.save_test_set(
        TestSet(name=name, prompt_id=prompt.id, labels=["positive", "negative"], rows=rows)
    )


def stored_run(test_set: TestSet, prompt: Prompt) -> EvalRun:
    specs = [VariantSpec(name="zero-shot", few_shot_count=0), VariantSpec(name="few-shot")]
    results = [
        [
            CaseResult(row=0, output="positive", answer="positive", scores={"label": 1.0}),
            CaseResult(row=1, output="positive", answer="positive", scores={"label": 0.0}),
        ],
        [
            CaseResult(
                row=0,
                output="positive",
                answer="positive",
                scores={"label": 1.0},
                label_scores={"positive": -0.1, "negative": -3.0},
                latency_s=0.02,
                context_tokens=40,
            ),
            CaseResult(row=1, error="RuntimeError: boom", scores={"label": 0.0}),
        ],
    ]
    run = EvalRun(
        prompt_id=prompt.id,
        test_set_id=test_set.id,
        test_set_name=test_set.name,
        mode="likelihood",
        metrics=["label"],
        variants=specs,
        results=results,
    )
    run.summaries = [
        summarise(s.name, r, test_set, run.metrics) for s, r in zip(specs, results, strict=True)
    ]
    return run


def button(panel: EvaluatePanel, name: str) -> QPushButton:
    found = panel.findChild(QPushButton, name)
    assert found is not None, name
    return found


def click(qtbot, panel: EvaluatePanel, name: str) -> None:
    qtbot.mouseClick(button(panel, name), Qt.MouseButton.LeftButton)


def message(panel: EvaluatePanel) -> str:
    label = panel.findChild(QLabel, "evalMessage")
    assert label is not None
    return label.text()


class FakeBackend(Backend):
    """Scores labels by keywords, counts words as tokens, and records which threads call
    it and whether it was closed."""

    name = "fake"
    created: ClassVar[list[FakeBackend]] = []

    def __init__(self, spec: ModelSpec, gate: threading.Semaphore | None = None) -> None:
        super().__init__(spec)
        self.gate = gate
        self.closed = False
        self.threads: set[str] = set()
        self.soft_scored: list[object] = []
        FakeBackend.created.append(self)

    @property
    def context_length(self) -> int:
        return 4096

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def apply_chat_template(self, messages: Sequence[Message]) -> str:
        return "\n".join(m.content for m in messages)

    def _stream(self, text: str, params: GenerationParams, cancel: threading.Event) -> Iterator:
        yield Finished(text="positive", stats=None)  # type: ignore[arg-type]

    def _score(self, text: str, continuations: list[str]) -> list[float]:
        self.threads.add(threading.current_thread().name)
        if self.gate is not None:
            assert self.gate.acquire(timeout=30)
        review = text.rsplit("Review:", 1)[-1].lower()
        happy = any(w in review for w in ("love", "great", "brilliant"))
        return [-1.0, -2.0] if happy else [-2.0, -1.0]

    def _score_soft(
        self, head: str, tail: str, continuations: list[str], soft_prompt: object
    ) -> list[float]:
        self.soft_scored.append(getattr(soft_prompt, "shape", None))
        return self._score(head + tail, continuations)

    def close(self) -> None:
        self.closed = True


def long_run(test_set: TestSet, prompt: Prompt, cot_answer: str = "") -> EvalRun:
    """A finished likelihood run over every row of `test_set`: zero-shot right on all
    rows, few-shot wrong on the odd ones, and a chain-of-thought variant whose answer is
    `cot_answer` (a long one to see that it elides)."""
    specs = [
        VariantSpec(name="zero-shot", few_shot_count=0),
        VariantSpec(name="few-shot"),
        VariantSpec(name="chain-of-thought", cot_mode=CoTMode.ZERO_SHOT),
    ]
    results: list[list[CaseResult]] = [[], [], []]
    for i, row in enumerate(test_set.rows):
        wrong = "negative" if row.expected == "positive" else "positive"
        for variant, answer in enumerate(
            (row.expected, wrong if i % 2 else row.expected, cot_answer or row.expected)
        ):
            score = 1.0 if answer == row.expected or variant == 2 else 0.0
            results[variant].append(
                CaseResult(
                    row=i, output=answer, answer=answer, scores={"label": score}, latency_s=0.5
                )
            )
    run = EvalRun(
        prompt_id=prompt.id,
        test_set_id=test_set.id,
        test_set_name=test_set.name,
        mode="likelihood",
        metrics=["label"],
        variants=specs,
        results=results,
    )
    run.summaries = [
        summarise(s.name, r, test_set, run.metrics) for s, r in zip(specs, results, strict=True)
    ]
    return run
