"""The chain-of-thought panel and its step model, driven with pytest-qt (offscreen)."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QLabel,
    QLineEdit,
    QListView,
    QPlainTextEdit,
    QPushButton,
    QStackedWidget,
)

from workbench.core.models import BUILTIN_TRIGGERS, ChainOfThought, ChainStep, CoTMode, Prompt
from workbench.core.templates import render_preview
from workbench.ui.cot import ChainStepsModel, CoTPanel


@pytest.fixture
def prompt() -> Prompt:
    return Prompt(
        name="Math",
        system="You are careful.",
        user_template="Question: {{ question }}",
    )


@pytest.fixture
def panel(qtbot: Any, prompt: Prompt) -> CoTPanel:
    widget = CoTPanel()
    qtbot.addWidget(widget)
    widget.set_prompt(prompt)
    return widget


@pytest.fixture
def emitted(panel: CoTPanel) -> list[ChainOfThought]:
    received: list[ChainOfThought] = []
    panel.changed.connect(received.append)
    return received


def child(panel: CoTPanel, kind: type[Any], name: str) -> Any:
    found = panel.findChild(kind, name)
    assert found is not None, name
    return found


def click(qtbot: Any, panel: CoTPanel, name: str) -> None:
    qtbot.mouseClick(child(panel, QPushButton, name), Qt.MouseButton.LeftButton)


def select_mode(panel: CoTPanel, mode: CoTMode) -> None:
    combo = child(panel, QComboBox, "cotMode")
    combo.setCurrentIndex(combo.findData(mode.value))


def steps(**templates: str) -> list[ChainStep]:
    return [ChainStep(name=name, template=text) for name, text in templates.items()]


# ---------------------------------------------------------------------------
# ChainStepsModel


def test_model_passes_the_model_tester(qtmodeltester: Any) -> None:
    model = ChainStepsModel(steps(facts="{{ question }}", answer="{{ facts }}"))
    qtmodeltester.check(model)
    assert model.insertRows(1, 2)
    assert model.removeRows(0, 1)
    assert model.moveRows(QModelIndex(), 0, 1, QModelIndex(), 3)
    assert model.setData(model.index(0), "renamed")
    qtmodeltester.check(model)


def test_model_edits_rows_like_a_list() -> None:
    model = ChainStepsModel(steps(a="", b="", c=""))
    assert model.insertRows(3, 2)
    assert model.names() == ["a", "b", "c", "step1", "step2"]
    assert model.removeRows(3, 2)
    assert not model.removeRows(2, 2)  # past the end
    assert not model.insertRows(5, 1)
    # move "a" to the end, then "c" (now row 1) to the front
    assert model.moveRows(QModelIndex(), 0, 1, QModelIndex(), 3)
    assert model.names() == ["b", "c", "a"]
    assert model.moveRows(QModelIndex(), 1, 1, QModelIndex(), 0)
    assert model.names() == ["c", "b", "a"]
    # moving onto itself or out of range is refused
    assert not model.moveRows(QModelIndex(), 1, 1, QModelIndex(), 1)
    assert not model.moveRows(QModelIndex(), 1, 1, QModelIndex(), 2)
    assert not model.moveRows(QModelIndex(), 0, 1, QModelIndex(), 4)
    assert model.names() == ["c", "b", "a"]


def test_model_names_must_be_unique_identifiers(qtbot: Any) -> None:
    model = ChainStepsModel(steps(facts="", answer=""))
    index = model.index(1)
    with qtbot.waitSignal(model.nameRejected) as blocker:
        assert not model.setData(index, "facts")
    assert "already" in blocker.args[0]
    with qtbot.waitSignal(model.nameRejected):
        assert not model.setData(index, "2nd step")
    assert model.data(index, Qt.ItemDataRole.DisplayRole) == "answer"
    assert model.setData(index, "final")
    assert model.data(index, Qt.ItemDataRole.EditRole) == "final"
    assert model.flags(index) & Qt.ItemFlag.ItemIsEditable


def test_model_flags_steps_that_read_later_outputs() -> None:
    model = ChainStepsModel(steps(plan="{{ answer }}", answer="{{ plan }}"))
    assert "'answer'" in model.data(model.index(0), ChainStepsModel.ErrorRole)
    assert model.data(model.index(0), Qt.ItemDataRole.ForegroundRole) is not None
    assert model.data(model.index(1), ChainStepsModel.ErrorRole) is None
    model.moveRows(QModelIndex(), 1, 1, QModelIndex(), 0)
    assert model.names() == ["answer", "plan"]
    assert model.data(model.index(0), ChainStepsModel.ErrorRole) is not None


# ---------------------------------------------------------------------------
# CoTPanel: modes


@pytest.mark.parametrize(
    ("mode", "page"),
    [
        (CoTMode.ZERO_SHOT, "cotPageZeroShot"),
        (CoTMode.SCAFFOLD, "cotPageScaffold"),
        (CoTMode.CHAIN, "cotPageChain"),
    ],
)
def test_switching_modes_emits_and_shows_the_page(
    panel: CoTPanel, emitted: list[ChainOfThought], mode: CoTMode, page: str
) -> None:
    stack = child(panel, QStackedWidget, "cotPages")
    assert stack.currentWidget().objectName() == "cotPageOff"
    select_mode(panel, mode)
    assert [c.mode for c in emitted] == [mode]
    assert stack.currentWidget().objectName() == page
    assert panel.chain_of_thought().mode is mode
    answer_shown = child(panel, QLineEdit, "cotAnswerPattern").isVisibleTo(panel)
    assert answer_shown == (mode in (CoTMode.ZERO_SHOT, CoTMode.SCAFFOLD))
    select_mode(panel, CoTMode.OFF)
    assert emitted[-1].mode is CoTMode.OFF
    assert stack.currentWidget().objectName() == "cotPageOff"


def test_set_prompt_loads_the_block_without_emitting(qtbot: Any, prompt: Prompt) -> None:
    panel = CoTPanel()
    qtbot.addWidget(panel)
    cot = ChainOfThought(
        mode=CoTMode.CHAIN,
        trigger="My own trigger.",
        answer_pattern=None,
        steps=steps(facts="{{ question }}", answer="{{ facts }}"),
    )
    with qtbot.assertNotEmitted(panel.changed):
        panel.set_prompt(prompt.model_copy(update={"cot": cot}))
    assert panel.chain_of_thought() == cot
    assert child(panel, QStackedWidget, "cotPages").currentWidget().objectName() == "cotPageChain"
    assert child(panel, QComboBox, "cotTrigger").currentText() == "My own trigger."
    assert child(panel, QLineEdit, "cotAnswerPattern").text() == ""
    assert child(panel, QPlainTextEdit, "stepTemplate").toPlainText() == "{{ question }}"
    assert "You are careful." in child(panel, QPlainTextEdit, "stepSystem").placeholderText()
    # a different prompt replaces everything
    with qtbot.assertNotEmitted(panel.changed):
        panel.set_prompt(Prompt(name="Other"))
    assert panel.chain_of_thought() == ChainOfThought()
    assert panel.steps_model.rowCount() == 0


# ---------------------------------------------------------------------------
# Zero-shot and scaffold


def test_picking_and_typing_a_trigger(
    qtbot: Any, panel: CoTPanel, prompt: Prompt, emitted: list[ChainOfThought]
) -> None:
    select_mode(panel, CoTMode.ZERO_SHOT)
    trigger = child(panel, QComboBox, "cotTrigger")
    assert [trigger.itemText(i) for i in range(trigger.count())] == list(BUILTIN_TRIGGERS)
    trigger.setCurrentIndex(1)
    assert emitted[-1].trigger == BUILTIN_TRIGGERS[1]
    trigger.lineEdit().clear()
    qtbot.keyClicks(trigger.lineEdit(), "Think it over.")
    assert emitted[-1].trigger == "Think it over."
    assert emitted[-1].mode is CoTMode.ZERO_SHOT

    [step] = render_preview(prompt.model_copy(update={"cot": emitted[-1]}), {"question": "2+2?"})
    assert step.messages[-1].content == "Question: 2+2?\n\nThink it over."


def test_editing_the_scaffold_lists_its_variables(
    panel: CoTPanel, prompt: Prompt, emitted: list[ChainOfThought]
) -> None:
    select_mode(panel, CoTMode.SCAFFOLD)
    scaffold = child(panel, QPlainTextEdit, "cotScaffold")
    label = child(panel, QLabel, "cotScaffoldVariables")
    assert "{{ user }}" in label.text()
    scaffold.setPlainText("{{ user }}\n\nThink about {{ topic }}, then answer.")
    assert emitted[-1].scaffold == scaffold.toPlainText()
    assert "{{ user }}, {{ topic }}" in label.text()

    values = {"question": "Why?", "topic": "causes"}
    [step] = render_preview(prompt.model_copy(update={"cot": emitted[-1]}), values)
    assert step.messages[-1].content == "Question: Why?\n\nThink about causes, then answer."

    scaffold.setPlainText("{{ user }}\nand {{ oops")
    assert "line 2, column" in label.text()
    assert emitted[-1].scaffold.endswith("{{ oops")  # kept, so no work is lost


def test_an_invalid_answer_pattern_shows_an_error_and_emits_nothing(
    qtbot: Any, panel: CoTPanel, emitted: list[ChainOfThought]
) -> None:
    select_mode(panel, CoTMode.SCAFFOLD)
    count = len(emitted)
    pattern = child(panel, QLineEdit, "cotAnswerPattern")
    error = child(panel, QLabel, "cotError")
    with qtbot.assertNotEmitted(panel.changed):
        pattern.setText(r"(?i)answer: (.+")
    assert len(emitted) == count
    assert not error.isHidden()
    assert "Answer pattern" in error.text() and "regular expression" in error.text()
    assert panel.chain_of_thought().answer_pattern == ChainOfThought().answer_pattern

    pattern.setText(r"(?i)answer: (.+)")
    assert error.isHidden()
    assert emitted[-1].answer_pattern == r"(?i)answer: (.+)"
    pattern.clear()
    assert emitted[-1].answer_pattern is None


# ---------------------------------------------------------------------------
# Chain


def test_building_a_chain_with_the_buttons(
    qtbot: Any, panel: CoTPanel, prompt: Prompt, emitted: list[ChainOfThought]
) -> None:
    select_mode(panel, CoTMode.CHAIN)
    view = child(panel, QListView, "chainSteps")
    model = view.model()
    assert isinstance(model, ChainStepsModel)
    template = child(panel, QPlainTextEdit, "stepTemplate")
    system = child(panel, QPlainTextEdit, "stepSystem")
    hint = child(panel, QLabel, "stepHint")

    click(qtbot, panel, "addStep")
    click(qtbot, panel, "addStep")
    assert [s.name for s in emitted[-1].steps] == ["step1", "step2"]
    # the first step starts as the user turn, the next one reads its output
    assert [s.template for s in emitted[-1].steps] == ["Question: {{ question }}", "{{ step1 }}"]
    assert view.currentIndex().row() == 1

    assert model.setData(model.index(0), "facts")
    assert model.setData(model.index(1), "answer")
    assert [s.name for s in emitted[-1].steps] == ["facts", "answer"]
    assert "{{ facts }}" in hint.text()

    view.setCurrentIndex(model.index(0))
    assert "{{ facts }}" not in hint.text()
    template.setPlainText("List the facts in: {{ question }}")
    view.setCurrentIndex(model.index(1))
    assert template.toPlainText() == "{{ step1 }}"  # not renamed along with the step
    template.setPlainText("Facts:\n{{ facts }}\nAnswer {{ question }}")
    system.setPlainText("Answer in one word.")
    cot = emitted[-1]
    assert cot.steps[0].template == "List the facts in: {{ question }}"
    assert cot.steps[1].system == "Answer in one word."
    assert cot.steps[0].system is None
    assert child(panel, QLabel, "stepError").isHidden()

    preview = render_preview(prompt.model_copy(update={"cot": cot}), {"question": "2+2?"})
    assert [s.name for s in preview] == ["facts", "answer"]
    assert preview[0].messages[0].content == "You are careful."
    assert preview[1].messages[0].content == "Answer in one word."
    assert "<output of step facts>" in preview[1].messages[-1].content

    # reorder: "answer" before "facts" is flagged, and moving it back clears it
    click(qtbot, panel, "stepUp")
    assert [s.name for s in emitted[-1].steps] == ["answer", "facts"]
    assert view.currentIndex().row() == 0
    error = child(panel, QLabel, "stepError")
    assert not error.isHidden() and "'facts'" in error.text()
    assert "first step" in hint.text()
    click(qtbot, panel, "stepDown")
    assert [s.name for s in emitted[-1].steps] == ["facts", "answer"]
    assert error.isHidden()

    click(qtbot, panel, "removeStep")
    assert [s.name for s in emitted[-1].steps] == ["facts"]
    assert view.currentIndex().row() == 0
    assert template.toPlainText() == "List the facts in: {{ question }}"
    click(qtbot, panel, "removeStep")
    assert emitted[-1].steps == []
    assert not template.isEnabled()


def test_hint_lists_every_earlier_step(panel: CoTPanel, prompt: Prompt) -> None:
    cot = ChainOfThought(mode=CoTMode.CHAIN, steps=steps(facts="a", plan="b", answer="c"))
    panel.set_prompt(prompt.model_copy(update={"cot": cot}))
    panel.steps_view.setCurrentIndex(panel.steps_model.index(2))
    assert "available: {{ facts }}, {{ plan }}" in child(panel, QLabel, "stepHint").text()


def test_a_step_reading_a_later_step_is_flagged(
    panel: CoTPanel, prompt: Prompt, emitted: list[ChainOfThought]
) -> None:
    cot = ChainOfThought(mode=CoTMode.CHAIN, steps=steps(facts="{{ question }}", answer="x"))
    panel.set_prompt(prompt.model_copy(update={"cot": cot}))
    error = child(panel, QLabel, "stepError")
    assert error.isHidden()
    child(panel, QPlainTextEdit, "stepTemplate").setPlainText("Use {{ answer }}")
    assert not error.isHidden()
    assert "'answer'" in error.text() and "not run yet" in error.text()
    # still emitted, so the text is not lost; the list shows which step is wrong
    assert emitted[-1].steps[0].template == "Use {{ answer }}"
    assert panel.steps_model.data(panel.steps_model.index(0), ChainStepsModel.ErrorRole)


def test_a_rejected_step_name_is_reported_in_the_panel(panel: CoTPanel, prompt: Prompt) -> None:
    cot = ChainOfThought(mode=CoTMode.CHAIN, steps=steps(facts="", answer=""))
    panel.set_prompt(prompt.model_copy(update={"cot": cot}))
    model = panel.steps_model
    assert not model.setData(model.index(1), "facts")
    error = child(panel, QLabel, "cotError")
    assert not error.isHidden() and "facts" in error.text()
    assert panel.chain_of_thought() == cot


def test_echoing_the_emitted_block_back_keeps_the_selection(
    panel: CoTPanel, prompt: Prompt, emitted: list[ChainOfThought]
) -> None:
    cot = ChainOfThought(mode=CoTMode.CHAIN, steps=steps(facts="a", answer="b"))
    panel.set_prompt(prompt.model_copy(update={"cot": cot}))
    panel.steps_view.setCurrentIndex(panel.steps_model.index(1))
    child(panel, QPlainTextEdit, "stepTemplate").setPlainText("{{ facts }}!")
    # the main window stores the change and hands the prompt back
    panel.set_prompt(prompt.model_copy(update={"cot": emitted[-1]}))
    assert panel.steps_view.currentIndex().row() == 1
    assert child(panel, QPlainTextEdit, "stepTemplate").toPlainText() == "{{ facts }}!"
