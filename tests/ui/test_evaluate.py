"""The Evaluate panel driven with pytest-qt (offscreen).

Most tests run the real panel, job runner and `evaluate()` against a fake backend
(loaded through the patched `load_backend`), so the whole flow — job, live grid,
summary, saving, history, stop, export — is checked in a second. The tests marked
`integration` do the same on the embedded SmolLM2 model through the run panel's
loaded backend.
"""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QLabel, QListView, QPushButton, QTableView

from workbench.core.backends.base import Backend, Finished
from workbench.core.backends.registry import EMBEDDED_ID
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
from workbench.ui import evaluate as evaluate_module
from workbench.ui.app import MainWindow
from workbench.ui.evaluate import (
    FAIL_COLOUR,
    PASS_COLOUR,
    EvalRunListModel,
    EvaluatePanel,
    ResultsGridModel,
    SummaryModel,
    VariantsModel,
)

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


def open_panel(
    qtbot, library_dir: Path, load_model: bool = False
) -> tuple[MainWindow, EvaluatePanel]:
    """A main window for its run panel and job runner, and the panel under test."""
    window = MainWindow(Library(library_dir), load_model=load_model)
    qtbot.addWidget(window)
    if load_model:
        qtbot.waitUntil(lambda: window.run_panel.backend is not None, timeout=MODEL_TIMEOUT_MS)
    panel = EvaluatePanel(window.library, window.jobs, window.run_panel)
    qtbot.addWidget(panel)
    panel.resize(1200, 800)
    panel.show()
    return window, panel


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


# ---------------------------------------------------------------------------
# A fake backend: scores labels by keywords, counts words as tokens, and records
# which threads call it and whether it was closed.


class FakeBackend(Backend):
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

    def _score_soft(self, text: str, continuations: list[str], soft_prompt: object) -> list[float]:
        self.soft_scored.append(getattr(soft_prompt, "shape", None))
        return self._score(text, continuations)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_models(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Patch the panel's model loader; `gate` (when set) paces the fake's cases."""
    FakeBackend.created = []
    control: dict[str, object] = {"gate": None, "loads": []}

    def load(spec: ModelSpec, backend: str | None = None, settings: object = None) -> Backend:
        control["loads"].append((spec.id, backend))  # type: ignore[union-attr]
        return FakeBackend(spec, control["gate"])  # type: ignore[arg-type]

    monkeypatch.setattr(evaluate_module, "load_backend", load)
    return control


# ---------------------------------------------------------------------------
# Models


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


def test_item_models_pass_the_model_tester(qtmodeltester, library: Library) -> None:
    prompt = sentiment_prompt(library)
    test_set = sentiment_set(library, prompt)
    run = stored_run(test_set, prompt)

    variants = VariantsModel()
    variants.set_choices([1, 2], [EMBEDDED_ID])
    variants.set_variants([VariantSpec(name="a"), VariantSpec(name="b", few_shot_count=2)])
    qtmodeltester.check(variants)
    assert variants.setData(variants.index(0, VariantsModel.COT), "zero_shot")
    variants.add_variant(VariantSpec(name="c", prompt_version=1, model=EMBEDDED_ID))
    variants.removeRows(0, 1)
    qtmodeltester.check(variants)

    grid = ResultsGridModel()
    qtmodeltester.check(grid)  # empty
    grid.set_run(run, test_set)
    qtmodeltester.check(grid)
    grid.set_run(run, None)  # the test set is gone
    qtmodeltester.check(grid)

    summary = SummaryModel()
    summary.set_run(run)
    qtmodeltester.check(summary)

    history = EvalRunListModel()
    history.set_items([run])
    history.add(run.model_copy(update={"complete": False}))
    qtmodeltester.check(history)
    assert "(stopped)" in history.data(history.index(0))


def test_variant_cells_are_edited_as_text_and_validated(qtbot, library_dir: Path) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    library.save_prompt(prompt.model_copy(update={"description": "v2"}))
    _, panel = open_panel(qtbot, library_dir)
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    model = panel.variants_model
    assert [v.name for v in model.variants()] == ["Review sentiment"]  # named after the prompt
    row = [model.data(model.index(0, c)) for c in range(model.columnCount())]
    assert row == [
        "Review sentiment",
        "this prompt",
        "current",
        "default",
        "as prompt",
        "as prompt",
        "none",
    ]

    assert model.setData(model.index(0, VariantsModel.FEW_SHOT), "3")
    assert model.setData(model.index(0, VariantsModel.VERSION), "v1")
    assert model.setData(model.index(0, VariantsModel.COT), "scaffold")
    assert model.setData(model.index(0, VariantsModel.MODEL), EMBEDDED_ID)
    spec = model.variants()[0]
    assert (spec.few_shot_count, spec.prompt_version, spec.cot_mode, spec.model) == (
        3,
        1,
        CoTMode.SCAFFOLD,
        EMBEDDED_ID,
    )
    assert model.setData(model.index(0, VariantsModel.FEW_SHOT), "0 = zero-shot")
    assert model.variants()[0].few_shot_count == 0

    assert not model.setData(model.index(0, VariantsModel.FEW_SHOT), "-1")
    assert "few-shot" in message(panel) and "greater than or equal to 0" in message(panel)
    assert not model.setData(model.index(0, VariantsModel.COT), "telepathy")
    assert not model.setData(model.index(0, VariantsModel.VERSION), "v9")
    assert "no stored version 9" in message(panel)
    assert not model.setData(model.index(0, VariantsModel.MODEL), "nonexistent")
    assert not model.setData(model.index(0, VariantsModel.NAME), "  ")
    assert model.variants()[0].few_shot_count == 0  # rejected edits change nothing

    # the choice columns edit through a combo box offering the choices
    view = panel.findChild(QTableView, "evalVariants")
    index = model.index(0, VariantsModel.COT)
    view.edit(index)
    editor = view.indexWidget(index) or view.findChild(QComboBox)
    assert isinstance(editor, QComboBox)
    assert [editor.itemText(i) for i in range(editor.count())] == [
        "as prompt",
        "off",
        "zero_shot",
        "scaffold",
        "chain",
    ]


def test_preset_add_and_remove_variants(qtbot, library_dir: Path) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    _, panel = open_panel(qtbot, library_dir)
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    click(qtbot, panel, "presetZeroFewCot")
    specs = panel.variants_model.variants()
    assert [s.name for s in specs] == ["zero-shot", "few-shot", "chain-of-thought"]
    assert (specs[0].few_shot_count, specs[0].cot_mode) == (0, CoTMode.OFF)
    assert (specs[1].few_shot_count, specs[1].cot_mode) == (None, None)
    assert specs[2].cot_mode is CoTMode.ZERO_SHOT

    click(qtbot, panel, "addVariant")
    assert panel.variants_model.rowCount() == 4
    assert panel.variants_model.variants()[3].name == "variant 4"
    view = panel.findChild(QTableView, "evalVariants")
    view.selectRow(1)
    click(qtbot, panel, "removeVariant")
    assert [s.name for s in panel.variants_model.variants()] == [
        "zero-shot",
        "chain-of-thought",
        "variant 4",
    ]
    # editing the working copy keeps the variants; another prompt starts afresh
    panel.set_prompt(panel.library.get_prompt(prompt.id).model_copy(update={"system": "x"}))
    assert panel.variants_model.rowCount() == 3
    other = panel.library.new_prompt("Other")
    panel.set_prompt(other)
    assert [s.name for s in panel.variants_model.variants()] == ["Other"]


def test_options_follow_the_prompt_and_its_test_sets(qtbot, library_dir: Path) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt, count=4, name="plain")
    sentiment_set(library, prompt, count=6, splits=True, name="with splits")
    _, panel = open_panel(qtbot, library_dir)
    assert not button(panel, "evalRun").isEnabled()  # no prompt yet
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    sets = panel.findChild(QComboBox, "evalTestSet")
    split = panel.findChild(QComboBox, "evalSplit")
    assert [sets.itemText(i) for i in range(sets.count())] == [
        "plain (4 rows)",
        "with splits (6 rows)",
    ]
    assert split.currentData() is None  # "all": the rows carry no splits
    sets.setCurrentIndex(1)
    assert split.currentData() == "test" and split.currentText() == "test (3)"
    mode = panel.findChild(QComboBox, "evalMode")
    assert [mode.itemText(i) for i in range(mode.count())] == ["auto", "generate", "likelihood"]
    assert panel.selected_metrics() == ["exact", "normalised", "f1"]
    assert button(panel, "evalRun").isEnabled()
    assert not button(panel, "evalStop").isEnabled()


def test_run_problems_show_as_a_message(qtbot, library_dir: Path) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    _, panel = open_panel(qtbot, library_dir)
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    panel.run()
    assert "no test set" in message(panel) and not panel.running

    test_set = sentiment_set(panel.library, prompt)
    panel.refresh()
    panel.split_combo.setCurrentIndex(panel.split_combo.findData("validation"))
    panel.run()
    assert "no rows in the validation split" in message(panel)
    panel.split_combo.setCurrentIndex(0)
    panel.library.save_test_set(test_set.model_copy(update={"labels": None}))
    panel.mode_combo.setCurrentIndex(panel.mode_combo.findData("likelihood"))
    panel.run()
    assert "no label set" in message(panel) and not panel.running


def test_a_comparison_runs_as_one_job_off_the_gui_thread(
    qtbot, library_dir: Path, fake_models
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt)
    _, panel = open_panel(qtbot, library_dir)
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    panel.variants_model.set_variants(
        [
            VariantSpec(name="zero-shot", few_shot_count=0),
            VariantSpec(name="few-shot"),
            VariantSpec(name="same model", model=EMBEDDED_ID),  # shares the first one's
            VariantSpec(name="other backend", model=EMBEDDED_ID, backend="transformers"),
        ]
    )
    with qtbot.waitSignal(panel.evaluation_finished, timeout=10_000) as finished:
        click(qtbot, panel, "evalRun")
        assert panel.running and not button(panel, "evalRun").isEnabled()
    qtbot.waitUntil(lambda: not panel.running)
    run = finished.args[0]
    assert run.complete and run.mode == "likelihood" and run.metrics[0] == "label"

    # one load per distinct model/backend, on the worker; both closed after the job
    assert sorted(fake_models["loads"]) == [
        (EMBEDDED_ID, "llama.cpp"),
        (EMBEDDED_ID, "transformers"),
    ]
    assert all(b.closed for b in FakeBackend.created)
    assert {t for b in FakeBackend.created for t in b.threads} == {"workbench-jobs"}

    grid = panel.grid_model
    assert grid.rowCount() == 4 and grid.columnCount() == 2 + 4  # review, expected, variants
    assert grid.headerData(0, Qt.Orientation.Horizontal) == "review"
    assert grid.headerData(2, Qt.Orientation.Horizontal) == "zero-shot"
    for row in range(4):
        for column in grid.variant_columns():
            result = grid.data(grid.index(row, column), ResultsGridModel.ResultRole)
            passed = result.scores["label"] == 1.0
            colour = grid.data(grid.index(row, column), Qt.ItemDataRole.BackgroundRole)
            assert colour == (PASS_COLOUR if passed else FAIL_COLOUR)
    tooltip = grid.data(grid.index(0, 2), Qt.ItemDataRole.ToolTipRole)
    assert "positive" in tooltip and "latency" in tooltip and "Label log-likelihoods" in tooltip

    summary = panel.summary_model
    label_row = summary.row_of("label")
    assert summary.headerData(label_row, Qt.Orientation.Vertical) == "label accuracy"
    assert summary.data(summary.index(label_row, 0)) == "1.000"  # the fake is always right
    assert summary.row_of("latency_s") > 0 and summary.row_of("context_tokens") > 0
    assert summary.row_of("label", "a") > 0 and summary.row_of("label", "b") > 0

    stored = Library(library_dir).eval_runs_for(prompt.id)
    assert [r.id for r in stored] == [run.id]
    assert panel.findChild(QListView, "evalHistory").model().rowCount() == 1
    assert "Finished: 16 case(s)" in message(panel)
    assert panel.findChild(QLabel, "evalEta").text() == ""
    assert panel.progress.value() == panel.progress.maximum() == 16


def test_stop_keeps_a_partial_run(qtbot, library_dir: Path, fake_models) -> None:
    gate = threading.Semaphore(0)
    fake_models["gate"] = gate
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt, count=12)
    _, panel = open_panel(qtbot, library_dir)
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    click(qtbot, panel, "presetZeroFewCot")
    click(qtbot, panel, "evalRun")

    def first_case_shown() -> bool:
        gate.release()  # one more case per poll: the worker never runs far ahead
        return panel.grid_model.rowCount() >= 1

    qtbot.waitUntil(first_case_shown)
    assert "about" in panel.findChild(QLabel, "evalEta").text()  # an ETA once a case is done
    click(qtbot, panel, "evalStop")
    assert not button(panel, "evalStop").isEnabled()
    gate.release(100)
    qtbot.waitUntil(lambda: not panel.running)
    stored = Library(library_dir).eval_runs_for(prompt.id)
    assert len(stored) == 1 and not stored[0].complete
    done = sum(len(r) for r in stored[0].results)
    assert 1 <= done < 36
    assert "Stopped" in message(panel)
    assert "(stopped)" in panel.history_model.data(panel.history_model.index(0))


def test_history_shows_earlier_runs_and_exports_them(
    qtbot, library_dir: Path, tmp_path: Path
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    test_set = sentiment_set(library, prompt)
    library.save_eval_run(stored_run(test_set, prompt))
    _, panel = open_panel(qtbot, library_dir)
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    with pytest.raises(ValueError, match="no evaluation"):
        panel.export_csv(tmp_path / "nothing.csv")
    history = panel.findChild(QListView, "evalHistory")
    assert history.model().rowCount() == 1
    history.setCurrentIndex(history.model().index(0, 0))
    grid = panel.grid_model
    assert grid.rowCount() == 2 and grid.columnCount() == 4
    assert grid.data(grid.index(0, 0)).startswith("I love it!")
    assert grid.data(grid.index(1, 3)) == "⚠ error"
    assert "boom" in grid.data(grid.index(1, 3), Qt.ItemDataRole.ToolTipRole)
    assert button(panel, "evalExportCsv").isEnabled()

    panel.export_csv(tmp_path / "run.csv")
    panel.export_json(tmp_path / "run.json")
    with (tmp_path / "run.csv").open(newline="", encoding="utf-8") as handle:
        lines = list(csv.DictReader(handle))
    assert [(r["variant"], r["row"], r["label"]) for r in lines] == [
        ("zero-shot", "0", "1.0"),
        ("zero-shot", "1", "0.0"),
        ("few-shot", "0", "1.0"),
        ("few-shot", "1", "0.0"),
    ]
    assert lines[0]["review"].startswith("I love it!")
    again = EvalRun.model_validate(json.loads((tmp_path / "run.json").read_text("utf-8")))
    assert again.id == panel.shown_run().id

    # the test set is deleted: the run still shows, its variables unknown
    panel.library.delete_test_set(test_set.id)
    panel.set_prompt(panel.library.new_prompt("Elsewhere"))
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    history.setCurrentIndex(history.model().index(0, 0))
    assert grid.headerData(0, Qt.Orientation.Horizontal) == "variables"
    assert grid.data(grid.index(0, 0)) == "unknown"
    assert "no longer in the library" in message(panel)
    panel.export_csv(tmp_path / "orphan.csv")
    assert (tmp_path / "orphan.csv").read_text("utf-8").count("\n") == 5


# ---------------------------------------------------------------------------
# On the embedded model


@pytest.mark.integration
def test_zero_shot_against_few_shot_on_the_embedded_model(
    qtbot, library_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt, count=4)
    window, panel = open_panel(qtbot, library_dir, load_model=True)

    def no_second_copy(*args: object, **kwargs: object) -> Backend:
        raise AssertionError("the run panel's loaded model should have been reused")

    monkeypatch.setattr(evaluate_module, "load_backend", no_second_copy)
    panel.set_prompt(window.library.get_prompt(prompt.id))
    click(qtbot, panel, "presetZeroFewCot")
    panel.findChild(QTableView, "evalVariants").selectRow(2)
    click(qtbot, panel, "removeVariant")  # zero-shot vs few-shot
    with qtbot.waitSignal(panel.evaluation_finished, timeout=MODEL_TIMEOUT_MS) as finished:
        click(qtbot, panel, "evalRun")
    qtbot.waitUntil(lambda: not panel.running, timeout=MODEL_TIMEOUT_MS)
    run: EvalRun = finished.args[0]
    assert run.complete and run.mode == "likelihood", message(panel)
    assert [v.name for v in run.variants] == ["zero-shot", "few-shot"]

    grid = panel.grid_model
    assert grid.rowCount() == 4
    assert [grid.headerData(c, Qt.Orientation.Horizontal) for c in grid.variant_columns()] == [
        "zero-shot",
        "few-shot",
    ]
    for column in grid.variant_columns():
        for row in range(4):
            answer = grid.data(grid.index(row, column))
            assert answer in ("positive", "negative")

    summary = panel.summary_model
    label_row = summary.row_of("label")
    for variant in range(2):
        accuracy = summary.value("label", variant)
        assert accuracy is not None and 0.0 <= accuracy <= 1.0
        assert summary.data(summary.index(label_row, variant)) == f"{accuracy:.3f}"
    assert summary.value("context_tokens", 1) > summary.value("context_tokens", 0)  # examples

    stored = Library(library_dir).eval_runs_for(prompt.id)
    assert [r.id for r in stored] == [run.id]
    assert panel.history_model.rowCount() == 1
    assert window.run_panel.backend is not None  # still loaded for the run panel

    panel.export_csv(tmp_path / "out.csv")
    panel.export_json(tmp_path / "out.json")
    with (tmp_path / "out.csv").open(newline="", encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 8
    assert json.loads((tmp_path / "out.json").read_text("utf-8"))["id"] == run.id


@pytest.mark.integration
def test_stop_mid_run_on_the_embedded_model(qtbot, library_dir: Path) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt, count=12)
    window, panel = open_panel(qtbot, library_dir, load_model=True)
    panel.set_prompt(window.library.get_prompt(prompt.id))
    click(qtbot, panel, "presetZeroFewCot")  # 3 variants × 12 cases
    click(qtbot, panel, "evalRun")
    qtbot.waitUntil(lambda: panel.grid_model.rowCount() >= 1, timeout=MODEL_TIMEOUT_MS)
    click(qtbot, panel, "evalStop")
    qtbot.waitUntil(lambda: not panel.running, timeout=MODEL_TIMEOUT_MS)
    stored = Library(library_dir).eval_runs_for(prompt.id)
    assert len(stored) == 1
    partial = stored[0]
    assert not partial.complete
    assert 1 <= sum(len(r) for r in partial.results) < 36
    assert "Stopped" in message(panel)


def test_a_failing_job_reports_in_the_message_and_closes_its_models(
    qtbot, library_dir: Path, fake_models
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt)
    _, panel = open_panel(qtbot, library_dir)
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    # a chain makes several calls: it cannot be scored by likelihood (found on the worker)
    panel.variants_model.set_variants([VariantSpec(name="chain", cot_mode=CoTMode.CHAIN)])
    click(qtbot, panel, "evalRun")
    qtbot.waitUntil(lambda: not panel.running)
    assert "The evaluation failed" in message(panel) and "chain" in message(panel)
    assert FakeBackend.created and all(b.closed for b in FakeBackend.created)
    assert Library(library_dir).eval_runs_for(prompt.id) == []
    assert button(panel, "evalRun").isEnabled()


def test_variants_can_be_another_prompt_or_a_soft_prompt(
    qtbot, library_dir: Path, fake_models
) -> None:
    from tests.core.exchange_helpers import add_soft_prompt

    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt)
    other = library.new_prompt(
        "Terse sentiment", system="One word.", user_template="Review: {{ review }}"
    )
    soft = add_soft_prompt(library, "tuned", prompt.id, tokens=3, hidden=8)
    _, panel = open_panel(qtbot, library_dir)
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    model = panel.variants_model
    assert model.choices(VariantsModel.PROMPT) == ["this prompt", "Terse sentiment"]
    assert model.choices(VariantsModel.SOFT) == ["none", "tuned"]

    model.add_variant(VariantSpec(name="other prompt"))
    model.add_variant(VariantSpec(name="soft"))
    assert model.setData(model.index(1, VariantsModel.PROMPT), "Terse sentiment")
    assert model.variants()[1].prompt_id == other.id
    assert model.data(model.index(1, VariantsModel.PROMPT)) == "Terse sentiment"
    assert not model.setData(model.index(1, VariantsModel.VERSION), "v1")
    assert "set the prompt to 'this prompt' first" in message(panel)
    assert not model.setData(model.index(1, VariantsModel.PROMPT), "Nope")
    assert "No prompt named 'Nope'" in message(panel)
    assert model.setData(model.index(2, VariantsModel.SOFT), "tuned")
    assert model.variants()[2].soft_prompt_id == soft.id

    with qtbot.waitSignal(panel.evaluation_finished, timeout=10_000) as finished:
        click(qtbot, panel, "evalRun")
    run = finished.args[0]
    assert [s.name for s in run.summaries] == ["Review sentiment", "other prompt", "soft"]
    # the soft variant scored after its 3 virtual tokens; the others without any
    (backend,) = FakeBackend.created
    assert backend.soft_scored == [(3, 8)] * len(run.results[2])
    contexts = [run.results[v][0].context_tokens for v in range(3)]
    assert contexts[2] == contexts[0] + 3
    assert contexts[1] < contexts[0]  # the other prompt's shorter system message
