"""The few-shot panel and its table model, driven with pytest-qt (offscreen)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from PySide6.QtCore import QItemSelectionModel, QModelIndex, QPoint, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QStyleOptionViewItem,
    QTableView,
)

from workbench.core.models import (
    FewShot,
    FewShotExample,
    FewShotOrder,
    FewShotStyle,
    Message,
    Prompt,
)
from workbench.core.templates import render_messages
from workbench.ui.fewshot import ROWS_MIME, FewShotPanel, FewShotTableModel

TEMPLATE = "Write about {{ topic }} in a {{ tone }} tone."

# the C++ model tester reports problems as Qt warnings: make them fail the test
strict_qt = pytest.mark.qt_log_level_fail("WARNING")


def _var_example(topic: str, tone: str, output: str) -> FewShotExample:
    return FewShotExample(vars={"topic": topic, "tone": tone}, output=output)


def _prompt(
    examples: list[FewShotExample] | None = None, template: str = TEMPLATE, **few_shot: object
) -> Prompt:
    if examples is None:
        examples = [_var_example("rain", "sad", "Grey."), _var_example("sun", "glad", "Bright!")]
    return Prompt(
        name="Poem",
        system="You write short poems.",
        user_template=template,
        few_shot=FewShot(examples=examples, **few_shot),
    )


@pytest.fixture
def panel(qtbot) -> FewShotPanel:
    widget = FewShotPanel()
    qtbot.addWidget(widget)
    widget.set_prompt(_prompt())
    return widget


def _outputs(panel_or_model: FewShotPanel | FewShotTableModel) -> list[str]:
    model = panel_or_model.model if isinstance(panel_or_model, FewShotPanel) else panel_or_model
    column = len(model.columns()) - 1
    return [model.index(r, column).data() for r in range(model.rowCount())]


def _headers(model: FewShotTableModel) -> list[str]:
    return [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]


def _child(panel: FewShotPanel, kind: type, name: str):
    widget = panel.findChild(kind, name)
    assert widget is not None, name
    return widget


def _select_rows(panel: FewShotPanel, rows: list[int]) -> None:
    selection = panel.table.selectionModel()
    selection.clearSelection()
    flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
    for row in rows:
        selection.select(panel.model.index(row, 0), flags)


def _apply(prompt: Prompt, few_shot: FewShot) -> Prompt:
    return prompt.model_copy(update={"few_shot": few_shot})


# ---------------------------------------------------------------------------
# The table model


@strict_qt
@pytest.mark.parametrize("force_py", [False, True], ids=["qt-tester", "py-tester"])
def test_model_with_variable_columns_passes_the_model_tester(qtmodeltester, force_py) -> None:
    model = FewShotTableModel()
    model.set_examples(_prompt().few_shot.examples, ["topic", "tone"])
    assert _headers(model) == ["topic", "tone", "output"]
    qtmodeltester.check(model, force_py=force_py)
    # every kind of change, with the tester watching
    assert model.insertRows(1, 2)
    assert model.setData(model.index(1, 0), "fog")
    assert model.moveRows(QModelIndex(), 0, 1, QModelIndex(), 3)
    assert not model.moveRows(QModelIndex(), 0, 1, QModelIndex(), 1)  # onto itself
    assert model.move_rows([0, 3], 2)
    assert model.shift_rows([1], 1)
    model.set_excluded([0])
    assert model.remove_rows([0, 2])
    # a plain example brings the input column, and editing its variables takes it away
    assert model.insert_examples(0, [FewShotExample(input="plain", output="x")])
    assert _headers(model) == ["topic", "tone", "input", "output"]
    assert model.setData(model.index(0, 0), "snow")
    assert _headers(model) == ["topic", "tone", "output"]
    assert model.removeRows(0, model.rowCount())
    qtmodeltester.check(model, force_py=force_py)


@strict_qt
@pytest.mark.parametrize("force_py", [False, True], ids=["qt-tester", "py-tester"])
def test_model_with_input_column_passes_the_model_tester(qtmodeltester, force_py) -> None:
    model = FewShotTableModel()
    model.set_examples(
        [FewShotExample(input="hi", output="greeting"), FewShotExample(input="bye", output="x")],
        [],
    )
    assert _headers(model) == ["input", "output"]
    qtmodeltester.check(model, force_py=force_py)
    assert model.setData(model.index(0, 0), "hello")
    assert model.insertRows(2, 1)
    assert model.dropMimeData(
        model.mimeData([model.index(2, 0)]), Qt.DropAction.MoveAction, 0, 0, QModelIndex()
    )
    assert model.removeRows(1, 1)
    qtmodeltester.check(model, force_py=force_py)


def test_model_cells_flags_and_headers() -> None:
    model = FewShotTableModel()
    model.set_examples(
        [_var_example("rain", "sad", "Grey."), FewShotExample(input="plain", output="p")],
        ["topic", "tone"],
    )
    assert _headers(model) == ["topic", "tone", "input", "output"]
    assert model.index(0, 0).data() == "rain"
    assert model.index(1, 2).data(Qt.ItemDataRole.EditRole) == "plain"
    assert model.headerData(1, Qt.Orientation.Vertical) == "2"
    editable = Qt.ItemFlag.ItemIsEditable
    assert model.flags(model.index(0, 0)) & editable
    # a variable-based example's input is never rendered, so it is not editable
    assert not model.flags(model.index(0, 2)) & editable
    assert not model.setData(model.index(0, 2), "ignored")
    assert model.flags(model.index(1, 2)) & editable
    assert model.flags(model.index(0, 0)) & Qt.ItemFlag.ItemIsDragEnabled
    assert model.flags(QModelIndex()) & Qt.ItemFlag.ItemIsDropEnabled
    assert model.supportedDropActions() == Qt.DropAction.MoveAction
    assert model.mimeTypes() == [ROWS_MIME]


def test_editing_a_variable_of_a_plain_example_fills_every_variable() -> None:
    model = FewShotTableModel()
    model.set_examples([FewShotExample(input="plain", output="p")], ["topic", "tone"])
    assert model.setData(model.index(0, 1), "dry")
    assert model.examples()[0].vars == {"topic": "", "tone": "dry"}
    assert "input" not in _headers(model)


def test_template_named_input_variable_is_told_apart_from_plain_input() -> None:
    model = FewShotTableModel()
    model.set_examples([FewShotExample(input="plain", output="p")], ["input"])
    assert _headers(model) == ["input", "input (plain text)", "output"]


def _reference_move(items: list[str], rows: list[int], destination: int) -> list[str]:
    moved = [items[r] for r in sorted(rows)]
    rest = [x for i, x in enumerate(items) if i not in rows]
    at = destination - sum(1 for r in rows if r < destination)
    return rest[:at] + moved + rest[at:]


def test_move_rows_matches_a_reference_for_every_selection_and_destination() -> None:
    items = [f"o{i}" for i in range(5)]
    model = FewShotTableModel()
    edits: list[None] = []
    model.examples_edited.connect(lambda: edits.append(None))
    for size in (1, 2, 3):
        for rows in itertools.combinations(range(5), size):
            for destination in range(6):
                model.set_examples([FewShotExample(input=x, output=x) for x in items], [])
                edits.clear()
                assert model.move_rows(rows, destination)
                expected = _reference_move(items, list(rows), destination)
                assert _outputs(model) == expected, (rows, destination)
                # one signal per move, none when nothing moved
                assert len(edits) == (1 if expected != items else 0)


# ---------------------------------------------------------------------------
# Drag and drop


def test_drag_and_drop_reorders_rows(panel: FewShotPanel, qtbot) -> None:
    model = panel.model
    model.insert_examples(2, [_var_example("fog", "calm", "Soft."), _var_example("x", "y", "Z.")])
    assert _outputs(panel) == ["Grey.", "Bright!", "Soft.", "Z."]
    data = model.mimeData([model.index(0, 0), model.index(0, 1), model.index(2, 2)])
    assert data.hasFormat(ROWS_MIME)
    assert model.canDropMimeData(data, Qt.DropAction.MoveAction, 4, 0, QModelIndex())
    with qtbot.waitSignal(panel.changed) as blocker:
        assert model.dropMimeData(data, Qt.DropAction.MoveAction, 4, 0, QModelIndex())
    assert _outputs(panel) == ["Bright!", "Z.", "Grey.", "Soft."]
    assert [e.output for e in blocker.args[0].examples] == ["Bright!", "Z.", "Grey.", "Soft."]
    # dropped onto a cell (row -1): the rows go before that cell's row
    data = model.mimeData([model.index(3, 0)])
    assert model.dropMimeData(data, Qt.DropAction.MoveAction, -1, -1, model.index(0, 1))
    assert _outputs(panel) == ["Soft.", "Bright!", "Z.", "Grey."]
    # dropped on empty space below the rows: to the end
    data = model.mimeData([model.index(0, 0)])
    assert model.dropMimeData(data, Qt.DropAction.MoveAction, -1, -1, QModelIndex())
    assert _outputs(panel) == ["Bright!", "Z.", "Grey.", "Soft."]


def test_drops_from_another_table_or_of_copies_are_refused(panel: FewShotPanel) -> None:
    other = FewShotTableModel()
    other.set_examples(_prompt().few_shot.examples, ["topic", "tone"])
    foreign = other.mimeData([other.index(0, 0)])
    model = panel.model
    assert not model.canDropMimeData(foreign, Qt.DropAction.MoveAction, 0, 0, QModelIndex())
    assert not model.dropMimeData(foreign, Qt.DropAction.MoveAction, 0, 0, QModelIndex())
    own = model.mimeData([model.index(1, 0)])
    assert not model.dropMimeData(own, Qt.DropAction.CopyAction, 0, 0, QModelIndex())
    assert _outputs(panel) == ["Grey.", "Bright!"]


def test_the_view_is_set_up_for_internal_moves(panel: FewShotPanel) -> None:
    table = _child(panel, QTableView, "fewShotTable")
    assert table.dragEnabled()
    assert table.dragDropMode() == QTableView.DragDropMode.InternalMove
    assert table.defaultDropAction() == Qt.DropAction.MoveAction


def test_drop_position_maps_to_the_row_the_indicator_shows(panel: FewShotPanel) -> None:
    panel.resize(600, 500)
    panel.show()
    table = panel.table
    first = table.visualRect(panel.model.index(0, 0))
    second = table.visualRect(panel.model.index(1, 0))
    assert table.drop_row(QPoint(first.center().x(), first.top() + 1)) == 0
    assert table.drop_row(QPoint(first.center().x(), first.bottom() - 1)) == 1
    assert table.drop_row(QPoint(second.center().x(), second.top() + 1)) == 1
    assert table.drop_row(QPoint(second.center().x(), second.bottom() + 20)) == 2


def test_cells_are_edited_in_a_multiline_editor(panel: FewShotPanel) -> None:
    index = panel.model.index(0, 2)
    delegate = panel.table.itemDelegateForIndex(index)
    editor = delegate.createEditor(panel.table.viewport(), QStyleOptionViewItem(), index)
    assert isinstance(editor, QPlainTextEdit)
    delegate.setEditorData(editor, index)
    assert editor.toPlainText() == "Grey."
    editor.setPlainText("Grey\nskies.")
    delegate.setModelData(editor, panel.model, index)
    assert panel.few_shot().examples[0].output == "Grey\nskies."


# ---------------------------------------------------------------------------
# The panel


def test_set_prompt_shows_the_block_and_emits_nothing(qtbot) -> None:
    widget = FewShotPanel()
    qtbot.addWidget(widget)
    prompt = _prompt(count=1, order=FewShotOrder.RANDOM, seed=7, style=FewShotStyle.INLINE)
    with qtbot.assertNotEmitted(widget.changed):
        widget.set_prompt(prompt)
    assert widget.few_shot() == prompt.few_shot
    assert _headers(widget.model) == ["topic", "tone", "output"]
    assert _child(widget, QSpinBox, "fewShotCount").value() == 1
    assert _child(widget, QComboBox, "fewShotOrder").currentData() == "random"
    assert _child(widget, QSpinBox, "fewShotSeed").value() == 7
    assert _child(widget, QSpinBox, "fewShotSeed").isEnabled()
    assert _child(widget, QComboBox, "fewShotStyle").currentData() == "inline"
    assert _child(widget, QPlainTextEdit, "fewShotFormat").isEnabled()
    # the example the count leaves out is dimmed and says why
    excluded = next(r for r in range(2) if r not in _included(prompt.few_shot))
    assert widget.model.index(excluded, 0).data(Qt.ItemDataRole.ForegroundRole) is not None
    assert "Not included" in widget.model.index(excluded, 0).data(Qt.ItemDataRole.ToolTipRole)


def _included(few_shot: FewShot) -> list[int]:
    from workbench.core.templates import select_examples

    return select_examples(few_shot)


def test_add_button_and_cell_edits_emit_the_new_example(panel: FewShotPanel, qtbot) -> None:
    add = _child(panel, QPushButton, "addExample")
    with qtbot.waitSignal(panel.changed) as blocker:
        qtbot.mouseClick(add, Qt.MouseButton.LeftButton)
    few_shot = blocker.args[0]
    assert isinstance(few_shot, FewShot)
    assert few_shot.examples[-1] == FewShotExample(vars={"topic": "", "tone": ""}, output="")
    model = panel.model
    emitted: list[FewShot] = []
    panel.changed.connect(emitted.append)
    assert model.setData(model.index(2, 0), "fog")
    assert model.setData(model.index(2, 1), "calm")
    assert model.setData(model.index(2, 2), "Soft grey.")
    assert len(emitted) == 3
    assert emitted[-1].examples[2] == _var_example("fog", "calm", "Soft grey.")
    assert panel.few_shot() == emitted[-1]
    # setting a cell to its current value is no change
    assert model.setData(model.index(2, 2), "Soft grey.")
    assert len(emitted) == 3
    # the preview follows: the new example is a user turn and an assistant turn
    messages = render_messages(_apply(_prompt(), emitted[-1]), {"topic": "snow", "tone": "shy"})
    assert messages[-3:] == [
        Message(role="user", content="Write about fog in a calm tone."),
        Message(role="assistant", content="Soft grey."),
        Message(role="user", content="Write about snow in a shy tone."),
    ]


def test_delete_and_move_buttons(panel: FewShotPanel, qtbot) -> None:
    panel.model.insert_examples(
        2, [_var_example("fog", "calm", "Soft."), _var_example("a", "b", "C.")]
    )
    delete = _child(panel, QPushButton, "deleteExample")
    up = _child(panel, QPushButton, "moveExampleUp")
    down = _child(panel, QPushButton, "moveExampleDown")
    _select_rows(panel, [0])
    assert not up.isEnabled() and down.isEnabled() and delete.isEnabled()

    with qtbot.waitSignal(panel.changed) as blocker:
        qtbot.mouseClick(down, Qt.MouseButton.LeftButton)
    assert [e.output for e in blocker.args[0].examples] == ["Bright!", "Grey.", "Soft.", "C."]
    assert panel.selected_rows() == [1]  # the selection follows the row

    _select_rows(panel, [2, 3])
    assert not down.isEnabled()
    qtbot.mouseClick(up, Qt.MouseButton.LeftButton)
    assert _outputs(panel) == ["Bright!", "Soft.", "C.", "Grey."]
    assert panel.selected_rows() == [1, 2]

    _select_rows(panel, [0, 2])
    with qtbot.waitSignal(panel.changed) as blocker:
        qtbot.mouseClick(delete, Qt.MouseButton.LeftButton)
    assert [e.output for e in blocker.args[0].examples] == ["Soft.", "Grey."]
    assert _outputs(panel) == ["Soft.", "Grey."]

    panel.table.selectionModel().clearSelection()
    assert not delete.isEnabled()


def test_paste_tab_separated_rows(panel: FewShotPanel, qtbot) -> None:
    with qtbot.waitSignal(panel.changed) as blocker:
        assert panel.paste_text('fog\tcalm\tSoft.\r\nsnow\tshy\t"Quiet\nwhite"\r\n') == 2
    assert blocker.args[0].examples[2:] == [
        _var_example("fog", "calm", "Soft."),
        _var_example("snow", "shy", "Quiet\nwhite"),
    ]
    assert "Pasted 2 examples" in _child(panel, QLabel, "fewShotMessage").text()


def test_paste_button_reads_the_clipboard(panel: FewShotPanel, qtbot) -> None:
    QGuiApplication.clipboard().setText("fog\tcalm\tSoft.\n")
    with qtbot.waitSignal(panel.changed):
        qtbot.mouseClick(_child(panel, QPushButton, "pasteExamples"), Qt.MouseButton.LeftButton)
    assert _outputs(panel)[-1] == "Soft."


def test_bad_paste_adds_nothing_and_says_why(panel: FewShotPanel, qtbot) -> None:
    with qtbot.assertNotEmitted(panel.changed):
        assert panel.paste_text("fog\tcalm\tSoft.\nonly two\tcells\n") == 0
    assert panel.model.rowCount() == 2
    message = _child(panel, QLabel, "fewShotMessage")
    assert not message.isHidden()
    assert "line 2: expected 3 cells (topic, tone, output), got 2" in message.text()


def test_paste_into_a_prompt_without_variables(qtbot) -> None:
    widget = FewShotPanel()
    qtbot.addWidget(widget)
    widget.set_prompt(_prompt([], template="{{ '' }}Review:"))
    assert _headers(widget.model) == ["input", "output"]
    assert widget.paste_text("Loved it\tpositive\n") == 1
    assert widget.few_shot().examples == [FewShotExample(input="Loved it", output="positive")]


def test_import_csv(panel: FewShotPanel, qtbot, tmp_path: Path) -> None:
    path = tmp_path / "poems.csv"
    path.write_text(
        'topic,tone,output\nfog,calm,Soft.\nsnow,shy,"Quiet,\nwhite"\n', encoding="utf-8"
    )
    with qtbot.waitSignal(panel.changed) as blocker:
        assert panel.import_file(path) == 2
    assert blocker.args[0].examples[2:] == [
        _var_example("fog", "calm", "Soft."),
        _var_example("snow", "shy", "Quiet,\nwhite"),
    ]
    assert "Imported 2 examples from poems.csv" in panel.message.text()


def test_import_keeps_a_carriage_return_inside_a_quoted_cell(
    panel: FewShotPanel, qtbot, tmp_path: Path
) -> None:
    # written as bytes: reading with universal newlines turned the "\r" into "\n"
    path = tmp_path / "returns.csv"
    path.write_bytes(b'\xef\xbb\xbftopic,tone,output\r\nfog,calm,"one\rtwo"\r\n')
    with qtbot.waitSignal(panel.changed) as blocker:
        assert panel.import_file(path) == 1
    assert blocker.args[0].examples[2:] == [_var_example("fog", "calm", "one\rtwo")]


def test_import_csv_with_an_unknown_column_adds_nothing(panel: FewShotPanel, tmp_path) -> None:
    path = tmp_path / "poems.csv"
    path.write_text("subject,output\nfog,Soft.\n", encoding="utf-8")
    assert panel.import_file(path) == 0
    assert panel.model.rowCount() == 2
    assert "line 1: header: column 'subject' is not a variable" in panel.message.text()


def test_import_jsonl_in_every_form(panel: FewShotPanel, qtbot, tmp_path: Path) -> None:
    path = tmp_path / "poems.jsonl"
    lines = [
        {"vars": {"topic": "fog", "tone": "calm"}, "output": "Soft."},
        {"input": "Write anything.", "output": "Anything."},
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey"}]},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    with qtbot.waitSignal(panel.changed) as blocker:
        assert panel.import_file(path) == 3
    assert blocker.args[0].examples[2:] == [
        _var_example("fog", "calm", "Soft."),
        FewShotExample(input="Write anything.", output="Anything."),
        FewShotExample(input="Hi", output="Hey"),
    ]
    # plain examples bring the input column next to the variables
    assert _headers(panel.model) == ["topic", "tone", "input", "output"]
    messages = render_messages(_apply(_prompt(), blocker.args[0]), {"topic": "x", "tone": "y"})
    assert [m.content for m in messages[-3:]] == ["Hi", "Hey", "Write about x in a y tone."]


def test_malformed_jsonl_adds_nothing_and_names_the_line(
    panel: FewShotPanel, qtbot, tmp_path: Path
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"input": "a", "output": "b"}\n{"input": "c", "output": \n', encoding="utf-8")
    with qtbot.assertNotEmitted(panel.changed):
        assert panel.import_file(path) == 0
    assert panel.model.rowCount() == 2
    label = _child(panel, QLabel, "fewShotMessage")
    assert label.isVisibleTo(panel)
    assert "bad.jsonl: line 2: not valid JSON" in label.text()
    # a good import afterwards replaces the error
    path.write_text('{"input": "a", "output": "b"}\n', encoding="utf-8")
    assert panel.import_file(path) == 1
    assert "line 2" not in label.text()


def test_unreadable_file_is_reported_in_the_panel(panel: FewShotPanel, tmp_path: Path) -> None:
    assert panel.import_file(tmp_path / "missing.csv") == 0
    assert "Could not read missing.csv" in panel.message.text()


def test_count_order_and_seed_controls(panel: FewShotPanel, qtbot) -> None:
    count = _child(panel, QSpinBox, "fewShotCount")
    order = _child(panel, QComboBox, "fewShotOrder")
    seed = _child(panel, QSpinBox, "fewShotSeed")
    assert count.text() == "All" and panel.few_shot().count is None
    assert not seed.isEnabled()

    with qtbot.waitSignal(panel.changed) as blocker:
        count.setValue(1)
    assert blocker.args[0].count == 1
    messages = render_messages(_apply(_prompt(), blocker.args[0]), {"topic": "a", "tone": "b"})
    assert [m.content for m in messages if m.role == "assistant"] == ["Grey."]
    assert panel.model.index(1, 0).data(Qt.ItemDataRole.ForegroundRole) is not None

    with qtbot.waitSignal(panel.changed) as blocker:
        order.setCurrentIndex(order.findData("reversed"))
    assert blocker.args[0].order is FewShotOrder.REVERSED
    with qtbot.waitSignal(panel.changed) as blocker:
        count.setValue(0)  # none: the prompt goes zero-shot
    assert blocker.args[0].count == 0 and count.text() == "0"
    with qtbot.waitSignal(panel.changed) as blocker:
        count.setValue(-1)
    assert blocker.args[0].count is None and count.text() == "All"
    count.setValue(1)

    with qtbot.waitSignal(panel.changed) as blocker:
        order.setCurrentIndex(order.findData("random"))
    assert blocker.args[0].order is FewShotOrder.RANDOM
    assert seed.isEnabled()
    with qtbot.waitSignal(panel.changed) as blocker:
        seed.setValue(42)
    assert blocker.args[0].seed == 42

    with qtbot.waitSignal(panel.changed) as blocker:
        count.setValue(-1)
    assert blocker.args[0].count is None
    assert blocker.args[0].examples == panel.few_shot().examples


def test_style_format_and_header_controls(panel: FewShotPanel, qtbot) -> None:
    style = _child(panel, QComboBox, "fewShotStyle")
    example_format = _child(panel, QPlainTextEdit, "fewShotFormat")
    header = _child(panel, QLineEdit, "fewShotHeader")
    assert not example_format.isEnabled() and not header.isEnabled()

    with qtbot.waitSignal(panel.changed) as blocker:
        style.setCurrentIndex(style.findData("inline"))
    assert blocker.args[0].style is FewShotStyle.INLINE
    assert example_format.isEnabled() and header.isEnabled()

    with qtbot.waitSignal(panel.changed) as blocker:
        example_format.setPlainText("{{ topic }} → {{ output }}")
    assert blocker.args[0].example_format == "{{ topic }} → {{ output }}"
    header.clear()
    emitted: list[FewShot] = []
    panel.changed.connect(emitted.append)
    qtbot.keyClicks(header, "Poems:")
    assert [f.inline_header for f in emitted] == ["P", "Po", "Poe", "Poem", "Poems", "Poems:"]

    messages = render_messages(_apply(_prompt(), emitted[-1]), {"topic": "a", "tone": "b"})
    assert [m.role for m in messages] == ["system", "user"]
    assert messages[-1].content == (
        "Poems:\n\nrain → Grey.\n\nsun → Bright!\n\nWrite about a in a b tone."
    )


def test_a_broken_format_template_is_flagged(panel: FewShotPanel) -> None:
    _child(panel, QComboBox, "fewShotStyle").setCurrentIndex(1)
    _child(panel, QPlainTextEdit, "fewShotFormat").setPlainText("{{ input ")
    error = _child(panel, QLabel, "fewShotFormatError")
    assert not error.isHidden()
    assert "few_shot.example_format, line 1" in error.text()
    _child(panel, QPlainTextEdit, "fewShotFormat").setPlainText("{{ input }}")
    assert error.isHidden()


def test_count_zero_from_a_stored_prompt_survives_other_edits(qtbot) -> None:
    widget = FewShotPanel()
    qtbot.addWidget(widget)
    widget.set_prompt(_prompt(count=0))
    with qtbot.waitSignal(widget.changed) as blocker:
        _child(widget, QComboBox, "fewShotStyle").setCurrentIndex(1)
    assert blocker.args[0].count == 0


def test_broken_user_template_keeps_the_examples_variables_as_columns(qtbot) -> None:
    widget = FewShotPanel()
    qtbot.addWidget(widget)
    widget.set_prompt(_prompt(template="Write about {{ topic "))
    assert _headers(widget.model) == ["topic", "tone", "output"]


def test_unused_variable_values_read_as_name_value_lines(qtbot) -> None:
    widget = FewShotPanel()
    qtbot.addWidget(widget)
    widget.set_prompt(_prompt([_var_example("rain", "sad", "Grey.")], template="Review:"))
    tip = widget.model.data(widget.model.index(0, 0), Qt.ItemDataRole.ToolTipRole)
    assert tip.splitlines() == [
        "Variable values the user template does not use:",
        "topic: rain",
        "tone: sad",
    ]


def test_optimise_button_says_what_it_searches_and_asks_the_window(qtbot) -> None:
    widget = FewShotPanel()
    qtbot.addWidget(widget)
    widget.set_prompt(_prompt())
    button = widget.findChild(QPushButton, "optimiseFewShot")
    assert button is widget.optimise_button and button.text() == "Optimise…"
    tip = button.toolTip()
    assert all(word in tip for word in ("examples", "how many", "order", "style"))
    assert "validation split" in tip
    with qtbot.waitSignal(widget.optimise_requested, timeout=1000):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
