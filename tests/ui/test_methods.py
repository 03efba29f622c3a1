"""The Methods tab on a small yes/no task and a tiny random-weight Llama: the rows and
their Train buttons, Train all training the soft prompt and the LoRA adapter, Compare
filling in intervals and the verdict, the saved run, Export; and the empty states."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tests.ui.graduate.helpers import save_tiny_model
from workbench.core.flows.methods import MethodTable
from workbench.core.library import Library
from workbench.core.models import FewShotExample, Prompt, TestRow, TestSet
from workbench.ui.jobs import JobRunner
from workbench.ui.methods import MethodsModel, MethodsPanel
from workbench.ui.session import ModelSession, PromptSelection

TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


def _task(library: Library) -> Prompt:
    prompt = library.save_prompt(
        Prompt(
            name="YN",
            system="Answer yes or no.",
            user_template="{{ text }}",
            few_shot={"examples": [FewShotExample(vars={"text": "say yes"}, output="yes")]},
        )
    )
    rows = [
        TestRow(
            vars={"text": f"say {word} {i}"},
            expected=word,
            split="train" if i < 4 else ("validation" if i < 6 else "test"),
        )
        for i, word in enumerate(["yes", "no"] * 5)
    ]
    library.save_test_set(TestSet(name="yn", prompt_id=prompt.id, rows=rows, labels=["yes", "no"]))
    return prompt


@pytest.fixture
def opened(qtbot, library_dir: Path) -> Iterator[tuple[MethodsPanel, ModelSession, Library]]:
    library = Library(library_dir)
    jobs = JobRunner()
    session = ModelSession(jobs)
    selection = PromptSelection()
    panel = MethodsPanel(library, jobs, session, selection)
    qtbot.addWidget(panel)
    panel.resize(1300, 700)
    panel.show()
    yield panel, session, library
    session.close()
    jobs.shutdown()
    library.close()


def _cells(panel: MethodsPanel, key: str) -> dict[str, str]:
    model = panel.model
    column = MethodsModel.KEYS.index(key)
    return {
        str(model.data(model.index(r, 0))): str(model.data(model.index(r, column)))
        for r in range(model.rowCount())
    }


def test_train_all_then_compare_fills_the_table_and_the_verdict(
    qtbot, opened, tiny_model: Path, tmp_path: Path
) -> None:
    panel, session, library = opened
    prompt = _task(library)
    spec = session.add_model(str(tiny_model))
    assert session.selected_model() == (spec, "transformers")
    qtbot.waitUntil(lambda: session.backend is not None, timeout=TIMEOUT_MS)
    panel.selection.select(library.get_prompt(prompt.id))

    # before anything: every method a row, the missing ones with a Train button
    assert not panel.empty.isVisible()
    status = _cells(panel, "status")
    assert list(status) == [
        "zero-shot",
        "few-shot",
        "few-shot (optimised)",
        "chain of thought",
        "soft prompt",
        "LoRA",
    ]
    assert status["zero-shot"] == "not compared yet"
    assert status["chain of thought"] == "not available"
    assert sorted(panel.train_buttons) == ["lora", "soft"]
    panel.resize(900, 700)  # narrower than the table: the Train buttons stay in view
    qtbot.wait(50)
    viewport = panel.view.viewport()
    for button in panel.train_buttons.values():
        assert button.isVisible()
        corner = button.mapTo(viewport, button.rect().bottomRight())
        assert viewport.rect().contains(corner), (corner, viewport.rect())
    panel.resize(1300, 700)
    assert panel.verdict.text() == "Nothing compared yet: press Compare."
    assert panel.train_all.isEnabled() and panel.compare_button.isEnabled()
    assert not panel.export_button.isEnabled()  # nothing to export yet

    qtbot.mouseClick(panel.train_all, Qt.MouseButton.LeftButton)
    assert panel.job is not None and panel.stop_button.isEnabled()
    assert not panel.compare_button.isEnabled()
    qtbot.waitUntil(lambda: panel.job is None, timeout=TIMEOUT_MS)
    assert panel.status.text() == "Done.", panel.status.text()
    assert panel.train_buttons == {}  # both trained
    status = _cells(panel, "status")
    assert status["soft prompt"] == status["LoRA"] == "not compared yet"
    (soft,) = library.soft_prompts_for(prompt.id)
    params = _cells(panel, "trainable_parameters")
    assert params["soft prompt"] == f"{soft.num_virtual_tokens * 32:,}"  # hidden size 32
    assert _cells(panel, "train_s")["soft prompt"] != "–"  # recorded by the training
    assert _cells(panel, "llama_cpp")["LoRA"] == "yes"  # as a GGUF adapter

    qtbot.mouseClick(panel.compare_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.job is None, timeout=TIMEOUT_MS)
    table = panel.table
    assert table is not None and table.complete, panel.status.text()
    accuracy, interval = _cells(panel, "accuracy"), _cells(panel, "interval")
    for label in ("zero-shot", "few-shot", "soft prompt", "LoRA"):
        row = next(r for r in table.rows if r.label == label)
        assert row.evaluated and row.cases == 4 and row.interval is not None
        assert accuracy[label] == f"{row.accuracy * 100:.1f} %"
        low, high = row.interval
        assert interval[label] == f"{low * 100:.1f}–{high * 100:.1f} %"
    assert interval["chain of thought"] == "–"
    text = panel.verdict.text()
    assert text == table.verdict and text.startswith("Best on 4 held-out rows:")
    best = [r.label for r in table.rows if r.best]
    assert best and best[0] in text
    # the table is kept with the run, and read back when the prompt is shown again
    (run,) = library.eval_runs_for(prompt.id)
    assert run.method_table is not None and MethodTable.from_dict(run.method_table) == table
    panel.refresh()
    assert panel.verdict.text() == text

    assert panel.export_button.isEnabled()
    written = panel.export_to(tmp_path / "methods.md")
    assert written is not None and text in written.read_text()
    assert panel.export_to(tmp_path / "methods.txt") is None
    assert ".csv, .json or .md" in panel.status.text()
    assert not (tmp_path / "methods.txt").exists()


def test_the_empty_states_say_what_to_do(qtbot, opened) -> None:
    panel, _session, library = opened
    assert panel.empty.isVisible() and "Select a prompt" in panel.empty.text()
    bare = library.save_prompt(Prompt(name="bare", user_template="{{ q }}"))
    panel.selection.select(bare)
    assert "has no test set" in panel.empty.text() and "Test sets tab" in panel.empty.text()
    assert not panel.compare_button.isEnabled() and not panel.train_all.isEnabled()
    assert panel.model.rowCount() == 0
    unsplit = library.save_prompt(Prompt(name="unsplit", user_template="{{ q }}"))
    library.save_test_set(
        TestSet(
            name="rows",
            prompt_id=unsplit.id,
            rows=[TestRow(vars={"q": "a"}, expected="b")],
        )
    )
    panel.selection.select(unsplit)
    assert "no held-out test rows" in panel.empty.text()
    assert "split it in the Test sets tab" in panel.empty.text()


def test_a_comparison_saved_by_the_methods_tab_is_listed_in_evaluate(qtbot, tmp_path) -> None:
    from tests.ui import fit
    from tests.ui.graduate.helpers import comparison_run
    from workbench.ui.app import MainWindow

    fit.seed_tour_library(tmp_path / "library")
    window = MainWindow(Library(tmp_path / "library"), load_model=False)
    qtbot.addWidget(window)
    prompt = window.library.find_prompt("Review sentiment")
    window.library_panel.select(prompt.id)
    before = window.evaluate.history_model.rowCount()
    test_set = window.library.test_sets_for(prompt.id)[0]
    run = window.library.save_eval_run(comparison_run(prompt, test_set))
    window.methods.run_saved.emit(run)
    assert window.evaluate.history_model.rowCount() == before + 1
    other = window.library.new_prompt("Other", user_template="x")
    window.methods.run_saved.emit(comparison_run(other, test_set))  # not the prompt shown
    assert window.evaluate.history_model.rowCount() == before + 1
