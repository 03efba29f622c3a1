"""Safe defaults: the split follows the test set (its test split once it is split, also
right after splitting it in the Test sets tab), the limit is not "all", the work is
estimated before it starts and long work asks first; the variants are kept per prompt,
an earlier run shows its settings, and the messages do not go stale."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QLabel, QMessageBox

from tests.ui.evaluate.helpers import (
    FakeBackend,
    click,
    message,
    sentiment_prompt,
    sentiment_set,
    stored_run,
)
from workbench.core.evaluation import summarise
from workbench.core.flows.estimate import DEFAULT_LIMIT
from workbench.core.library import Library
from workbench.core.models import CaseResult, EvalRun, ModelSpec, VariantSpec
from workbench.ui.app import MainWindow
from workbench.ui.evaluate import controls as controls_module


def test_split_follows_the_test_set_once_the_test_sets_tab_splits_it(
    qtbot, library_dir: Path
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt, count=40)
    window = MainWindow(Library(library_dir), load_model=False)
    qtbot.addWidget(window)
    window.show()
    window.select_prompt(prompt.id)
    evaluate = window.evaluate
    assert evaluate.split_combo.currentData() is None  # no splits yet: every row
    assert evaluate.split_combo.currentText() == "all (40)"

    window.tabs.setCurrentWidget(window.test_sets)
    assert window.test_sets.split(0.5, 0.25, seed=3)
    window.tabs.setCurrentWidget(evaluate)
    assert evaluate.split_combo.currentData() == "test"
    test_rows = sum(1 for r in window.library.test_sets_for(prompt.id)[0].rows if r.split == "test")
    assert evaluate.split_combo.currentText() == f"test ({test_rows})"

    # a split picked by hand stays picked through later edits of the rows
    evaluate.split_combo.setCurrentIndex(evaluate.split_combo.findData("train"))
    window.tabs.setCurrentWidget(window.test_sets)
    assert window.test_sets.split(0.6, 0.2, seed=4)
    window.tabs.setCurrentWidget(evaluate)
    assert evaluate.split_combo.currentData() == "train"


def test_the_limit_is_not_all_and_the_estimate_follows_the_settings(
    qtbot, open_panel, library_dir: Path
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt, count=40)
    panel = open_panel()
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    assert panel.options.selected_limit() == DEFAULT_LIMIT
    estimate = panel.findChild(QLabel, "evalEstimate")
    assert estimate.text().startswith(f"{DEFAULT_LIMIT} of 40 cases × 1 variant, about ")
    click(qtbot, panel, "presetZeroFewCot")
    assert f"{DEFAULT_LIMIT} of 40 cases × 3 variants" in estimate.text()
    panel.options.limit.setValue(0)  # all
    assert estimate.text().startswith("40 cases × 3 variants, about ")
    # nothing measured on this prompt yet: a first guess, and it says so
    assert "first guess" in estimate.text()


def _answers(monkeypatch: pytest.MonkeyPatch, answer: QMessageBox.StandardButton) -> list[str]:
    asked: list[str] = []

    def question(parent: object, title: str, text: str, *args: object) -> object:
        asked.append(text)
        return answer

    monkeypatch.setattr(controls_module.QMessageBox, "question", question)
    return asked


def test_long_work_asks_before_it_starts(
    qtbot, open_panel, library_dir: Path, fake_models, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    test_set = sentiment_set(library, prompt, count=240)
    # an earlier evaluation here measured 1.2 s a case
    earlier = EvalRun(
        prompt_id=prompt.id,
        test_set_id=test_set.id,
        mode="likelihood",
        variants=[VariantSpec(name="once")],
        results=[[CaseResult(row=r, latency_s=1.2) for r in range(240)]],
    )
    library.save_eval_run(earlier)
    panel = open_panel()
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    click(qtbot, panel, "presetZeroFewCot")

    asked = _answers(monkeypatch, QMessageBox.StandardButton.No)
    with qtbot.waitSignal(panel.evaluation_finished, timeout=10_000):
        click(qtbot, panel, "evalRun")  # 25 × 3 at the default limit: no question
    qtbot.waitUntil(lambda: not panel.running)
    assert asked == []

    panel.options.limit.setValue(0)  # all 240 rows × 3 variants
    click(qtbot, panel, "evalRun")
    assert len(asked) == 1 and "240 cases × 3 variants, about " in asked[0]
    assert "about 14 min on this machine" in asked[0]  # 720 × 1.2 s, as measured here
    assert not panel.running and "Not started" in message(panel)
    assert fake_models["loads"] == [fake_models["loads"][0]]  # nothing loaded for it

    asked = _answers(monkeypatch, QMessageBox.StandardButton.Yes)
    click(qtbot, panel, "evalRun")
    assert len(asked) == 1 and panel.running
    click(qtbot, panel, "evalStop")
    qtbot.waitUntil(lambda: not panel.running)


def test_variants_are_kept_per_prompt_across_switches(qtbot, open_panel, library_dir: Path) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    other = library.new_prompt("Other", user_template="{{ text }}")
    panel = open_panel()
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    click(qtbot, panel, "presetZeroFewCot")
    click(qtbot, panel, "addVariant")
    names = [v.name for v in panel.variants_model.variants()]
    assert names == ["zero-shot", "few-shot", "chain-of-thought", "variant 4"]

    panel.set_prompt(panel.library.get_prompt(other.id))
    assert [v.name for v in panel.variants_model.variants()] == ["Other"]
    panel.variants_model.add_variant(VariantSpec(name="other's second"))
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    assert [v.name for v in panel.variants_model.variants()] == names
    panel.set_prompt(None)
    panel.set_prompt(panel.library.get_prompt(other.id))
    assert [v.name for v in panel.variants_model.variants()] == ["Other", "other's second"]


def test_the_evaluation_shown_comes_back_with_its_prompt(
    qtbot, open_panel, library_dir: Path
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    test_set = sentiment_set(library, prompt, count=8)
    older, newer = stored_run(test_set, prompt), stored_run(test_set, prompt)
    library.save_eval_run(older)
    library.save_eval_run(newer)
    other = library.new_prompt("Other", user_template="{{ text }}")
    panel = open_panel()
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    assert panel.shown_run() is None  # nothing picked yet: no run is pushed on the user
    listed = [panel.history_model.index(r, 0) for r in range(2)]
    picked = next(i for i in listed if panel.history_model.at(i.row()).id == older.id)
    panel.browser.history.setCurrentIndex(picked)
    assert panel.shown_run().id == older.id

    panel.set_prompt(panel.library.get_prompt(other.id))
    assert panel.shown_run() is None  # another prompt's results are not shown
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    shown = panel.shown_run()
    assert shown is not None and shown.id == older.id  # the one left, not the newest
    assert panel.browser.grid_model.rowCount() == 2


def test_an_earlier_evaluation_shows_its_settings(qtbot, open_panel, library_dir: Path) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    test_set = sentiment_set(library, prompt, count=8, splits=True)  # 4 test rows
    specs = [VariantSpec(name="terse", few_shot_count=0), VariantSpec(name="as is")]
    results = [
        [
            CaseResult(row=r, output="positive", answer="positive", scores={"exact": 1.0})
            for r in (1, 3)
        ]
        for _ in specs
    ]
    run = EvalRun(
        prompt_id=prompt.id,
        test_set_id=test_set.id,
        test_set_name=test_set.name,
        split="test",
        mode="generate",
        metrics=["exact"],
        variants=specs,
        results=results,
    )
    run.summaries = [
        summarise(s.name, r, test_set, run.metrics) for s, r in zip(specs, results, strict=True)
    ]
    library.save_eval_run(run)
    other = sentiment_set(library, prompt, count=4, name="another set")

    panel = open_panel()
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    options = panel.options
    options.test_set_combo.setCurrentIndex(options.test_set_combo.findData(other.id))
    assert options.selected_mode() == "auto" and options.selected_limit() == DEFAULT_LIMIT

    panel.browser.history.setCurrentIndex(panel.history_model.index(0, 0))
    assert panel.shown_run().id == run.id
    assert options.selected_test_set().id == test_set.id
    assert options.selected_split() == "test"
    assert options.selected_mode() == "generate"
    assert options.selected_metrics() == ["exact"]
    assert options.selected_limit() == 2  # two cases of the four test rows
    assert [v.name for v in panel.variants_model.variants()] == ["terse", "as is"]
    caption = panel.findChild(QLabel, "evalCaption").text()
    assert "test split" in caption and "2 cases × 2 variants" in caption
    assert "generate and compare" in caption


def test_texts_name_the_metric_used_and_count_properly(
    qtbot, open_panel, library_dir: Path
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    test_set = sentiment_set(library, prompt)
    library.save_eval_run(stored_run(test_set, prompt))
    panel = open_panel()
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    panel.browser.history.setCurrentIndex(panel.history_model.index(0, 0))
    headline = panel.findChild(QLabel, "evalHeadline").text()
    assert headline == "label accuracy: zero-shot 50.0 % · few-shot 50.0 %"
    listed = panel.history_model.data(panel.history_model.index(0, 0))
    assert "2 variants · label accuracy" in listed and "(s)" not in listed
    summary = panel.summary_model
    tip = summary.data(summary.index(summary.row_of("label"), 0), 3)  # ToolTipRole
    assert tip == "label accuracy over 2 cases"


def test_messages_are_cleared_when_they_no_longer_hold(
    qtbot, open_panel, library_dir: Path
) -> None:
    library = Library(library_dir)
    prompt = sentiment_prompt(library)
    sentiment_set(library, prompt, count=6, splits=True)
    panel = open_panel()
    panel.set_prompt(panel.library.get_prompt(prompt.id))
    label = panel.findChild(QLabel, "evalMessage")
    panel.split_combo.setCurrentIndex(panel.split_combo.findData("validation"))
    panel.run()
    assert "no rows in the validation split" in message(panel) and label.isVisible()
    panel.split_combo.setCurrentIndex(panel.split_combo.findData("test"))
    assert message(panel) == "" and not label.isVisible()  # it was about the other split

    # an error about the model goes once the model is ready
    panel._show_message("Could not load the model: it is still loading", error=True)
    spec = ModelSpec(id="m", name="m", source="gguf", path="m.gguf")
    panel.session.backend_changed.emit(FakeBackend(spec))
    assert message(panel) == ""
    assert label.wordWrap()  # long messages wrap instead of being cut
