"""The test-set panel and its table model, driven with pytest-qt (offscreen)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtWidgets import QComboBox, QLabel, QLineEdit, QPushButton, QTableView

from workbench.core.library import Library
from workbench.core.models import Prompt, TestRow, TestSet
from workbench.core.testsets_io import parse_test_set_csv
from workbench.ui.testsets import TestRowsModel, TestSetPanel

# the C++ model tester reports problems as Qt warnings: make them fail the test
strict_qt = pytest.mark.qt_log_level_fail("WARNING")

TEMPLATE = "Classify the sentiment of this {{ product }} review:\n{{ review }}"


def _headers(model: TestRowsModel) -> list[str]:
    return [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]


def _column(model: TestRowsModel, name: str) -> int:
    return _headers(model).index(name)


def _cells(model: TestRowsModel, name: str) -> list[str]:
    column = _column(model, name)
    return [model.index(r, column).data() for r in range(model.rowCount())]


def _child(panel: TestSetPanel, kind: type, name: str):
    widget = panel.findChild(kind, name)
    assert widget is not None, name
    return widget


@pytest.fixture
def prompt(library: Library) -> Prompt:
    return library.new_prompt("Sentiment", user_template=TEMPLATE)


@pytest.fixture
def panel(qtbot, library: Library, prompt: Prompt) -> TestSetPanel:
    widget = TestSetPanel(library)
    qtbot.addWidget(widget)
    widget.set_prompt(prompt)
    return widget


@pytest.fixture
def filled(panel: TestSetPanel, library: Library, prompt: Prompt) -> TestSetPanel:
    """The panel showing a saved test set of six labelled rows."""
    rows = [
        TestRow(vars={"product": "phone", "review": f"review {i}"}, expected=label)
        for i, label in enumerate(["positive", "negative"] * 3)
    ]
    library.save_test_set(
        TestSet(name="Reviews", prompt_id=prompt.id, rows=rows, labels=["positive", "negative"])
    )
    panel.set_prompt(prompt)
    return panel


# ---------------------------------------------------------------------------
# The model


@strict_qt
@pytest.mark.parametrize("force_py", [False, True], ids=["qt-tester", "py-tester"])
def test_model_passes_the_model_tester(qtmodeltester, force_py: bool) -> None:
    model = TestRowsModel()
    model.set_rows(
        [
            TestRow(vars={"review": "good"}, expected="pos", split="train"),
            TestRow(vars={"review": "bad", "extra": "x"}, expected="neg", group="g"),
        ],
        ["product", "review"],
    )
    assert _headers(model) == ["product", "review", "extra", "expected", "group", "split"]
    qtmodeltester.check(model, force_py=force_py)
    # every kind of change, with the tester watching
    assert model.insertRows(1, 2)
    assert model.setData(model.index(1, 0), "phone")
    assert model.setData(model.index(0, 5), "Validation")
    model.set_labels(["pos"])
    assert model.insert_test_rows(0, [TestRow(vars={"new": "v"}, expected="x")])
    assert _headers(model)[:4] == ["product", "review", "extra", "new"]
    # new rows get every variable; once no row has "new" or "extra", their columns go
    assert model.remove_rows([0, 2, 3, 4])
    assert _headers(model) == ["product", "review", "expected", "group", "split"]
    assert model.removeRows(0, model.rowCount())
    qtmodeltester.check(model, force_py=force_py)


def test_model_cells_edit_and_validate() -> None:
    model = TestRowsModel()
    model.set_rows([TestRow(vars={"review": "ok"}, expected="pos")], ["product", "review"])
    product, review = model.index(0, 0), model.index(0, 1)
    expected, group, split = (model.index(0, c) for c in (2, 3, 4))
    assert product.data() == "" and review.data() == "ok"
    assert product.data(Qt.ItemDataRole.ToolTipRole) == "This row has no value for this variable"
    assert model.flags(split) & Qt.ItemFlag.ItemIsEditable
    assert model.setData(product, "laptop")
    assert model.setData(expected, "neg")
    assert model.setData(group, "short")
    assert model.setData(split, " TEST ")
    assert not model.setData(split, "dev")  # not a split name: refused
    assert model.rows() == [
        TestRow(
            vars={"review": "ok", "product": "laptop"}, expected="neg", group="short", split="test"
        )
    ]
    assert model.setData(group, "") and model.setData(split, "")
    assert model.rows()[0].group is None and model.rows()[0].split is None
    # answers outside the label set are marked
    model.set_labels(["pos", "neutral"])
    assert expected.data(Qt.ItemDataRole.ToolTipRole) == "Not one of the test set's labels"
    model.set_labels(None)
    assert expected.data(Qt.ItemDataRole.ToolTipRole) == "neg"


def test_model_emits_rows_edited_once_per_change(qtbot) -> None:
    model = TestRowsModel()
    model.set_rows([TestRow(expected=str(i)) for i in range(5)])
    edits: list[None] = []
    model.rows_edited.connect(lambda: edits.append(None))
    assert model.remove_rows([0, 2, 3])
    assert len(edits) == 1
    assert [r.expected for r in model.rows()] == ["1", "4"]
    assert model.setData(model.index(0, 0), "1")  # unchanged: nothing to announce
    assert len(edits) == 1


# ---------------------------------------------------------------------------
# Test sets


def test_panel_widgets_have_their_names(panel: TestSetPanel) -> None:
    _child(panel, QComboBox, "testSetPicker")
    _child(panel, QTableView, "testRowsTable")
    _child(panel, QLineEdit, "testSetLabels")
    _child(panel, QLabel, "testSetMessage")
    _child(panel, QLabel, "testSetCounts")
    for name in (
        "newTestSet",
        "renameTestSet",
        "deleteTestSet",
        "addTestRow",
        "deleteTestRows",
        "importTestSet",
        "exportTestSet",
        "splitTestSet",
    ):
        _child(panel, QPushButton, name)
    # no test set yet: only creating or importing one makes sense
    assert panel.current_test_set() is None
    assert _child(panel, QPushButton, "newTestSet").isEnabled()
    assert not _child(panel, QPushButton, "addTestRow").isEnabled()


def test_no_prompt_disables_everything(qtbot, library: Library) -> None:
    widget = TestSetPanel(library)
    qtbot.addWidget(widget)
    widget.set_prompt(None)
    assert not _child(widget, QPushButton, "newTestSet").isEnabled()
    assert widget.new_test_set("x") is None
    assert widget.current_test_set() is None


def test_create_rename_and_delete_test_sets(
    panel: TestSetPanel, qtbot, library: Library, prompt: Prompt
) -> None:
    picker = _child(panel, QComboBox, "testSetPicker")
    with qtbot.waitSignal(panel.test_set_changed) as blocker:
        created = panel.new_test_set("  Smoke  ")
    assert created is not None and created.name == "Smoke"
    assert blocker.args[0].id == created.id
    assert [t.name for t in library.test_sets_for(prompt.id)] == ["Smoke"]
    assert picker.currentText() == "Smoke"
    # empty variable columns of the template are there to fill
    assert _headers(panel.model) == ["product", "review", "expected", "group", "split"]

    assert panel.new_test_set("Smoke") is None  # names are unique per prompt
    assert "already a test set named" in panel.message.text()
    assert panel.new_test_set("Alpha") is not None
    assert [picker.itemText(i) for i in range(picker.count())] == ["Alpha", "Smoke"]
    assert panel.current_test_set().name == "Alpha"

    # picking another one announces it
    with qtbot.waitSignal(panel.test_set_changed) as blocker:
        picker.setCurrentIndex(picker.findText("Smoke"))
    assert blocker.args[0].name == "Smoke"

    with qtbot.waitSignal(panel.test_set_changed) as blocker:
        assert panel.rename_test_set("Regression")
    assert blocker.args[0].name == "Regression"
    assert library.test_sets[created.id].name == "Regression"
    assert picker.currentText() == "Regression"
    assert not panel.rename_test_set("  ")

    with qtbot.waitSignal(panel.test_set_changed) as blocker:
        assert panel.delete_test_set()
    assert blocker.args[0].name == "Alpha"  # the one now shown
    assert created.id not in library.test_sets
    assert [picker.itemText(i) for i in range(picker.count())] == ["Alpha"]
    assert panel.delete_test_set()
    assert panel.current_test_set() is None
    assert library.test_sets_for(prompt.id) == []


def test_set_prompt_lists_only_that_prompts_sets(
    panel: TestSetPanel, library: Library, prompt: Prompt
) -> None:
    other = library.new_prompt("Other", user_template="{{ question }}")
    library.save_test_set(TestSet(name="Theirs", prompt_id=other.id))
    panel.new_test_set("Mine")
    picker = _child(panel, QComboBox, "testSetPicker")
    assert [picker.itemText(i) for i in range(picker.count())] == ["Mine"]
    panel.set_prompt(other)
    assert [picker.itemText(i) for i in range(picker.count())] == ["Theirs"]
    assert _headers(panel.model)[0] == "question"
    panel.set_prompt(prompt)
    assert panel.current_test_set().name == "Mine"


# ---------------------------------------------------------------------------
# Rows


def test_add_edit_and_delete_rows_are_saved(
    panel: TestSetPanel, qtbot, library: Library, library_dir: Path
) -> None:
    created = panel.new_test_set("Smoke")
    assert created is not None
    with qtbot.waitSignal(panel.test_set_changed):
        qtbot.mouseClick(_child(panel, QPushButton, "addTestRow"), Qt.MouseButton.LeftButton)
    model = panel.model
    for row in range(2):
        if row:
            panel.add_row()
        model.setData(model.index(row, _column(model, "product")), "phone")
        model.setData(model.index(row, _column(model, "review")), f"review {row}")
        with qtbot.waitSignal(panel.test_set_changed) as blocker:
            model.setData(model.index(row, _column(model, "expected")), ["good", "bad"][row])
    assert [r.expected for r in blocker.args[0].rows] == ["good", "bad"]
    assert Library(library_dir).test_sets[created.id].rows == [
        TestRow(vars={"product": "phone", "review": "review 0"}, expected="good"),
        TestRow(vars={"product": "phone", "review": "review 1"}, expected="bad"),
    ]

    delete = _child(panel, QPushButton, "deleteTestRows")
    panel.table.clearSelection()
    assert not delete.isEnabled()
    panel.table.selectionModel().select(
        model.index(0, 0),
        QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows,
    )
    assert delete.isEnabled()
    with qtbot.waitSignal(panel.test_set_changed):
        qtbot.mouseClick(delete, Qt.MouseButton.LeftButton)
    assert [r.expected for r in Library(library_dir).test_sets[created.id].rows] == ["bad"]
    assert panel.current_test_set().rows == library.test_sets[created.id].rows


# ---------------------------------------------------------------------------
# Import and export


def test_import_csv(panel: TestSetPanel, qtbot, library: Library, tmp_path: Path) -> None:
    panel.new_test_set("Smoke")
    path = tmp_path / "reviews.csv"
    path.write_bytes(
        b'product,review,expected,split\r\nphone,"Great, really\r\ngreat",positive,train\r\n'
        b"tv,Broke,negative,\r\n"
    )
    with qtbot.waitSignal(panel.test_set_changed) as blocker:
        assert panel.import_file(path) == 2
    assert blocker.args[0].rows == [
        TestRow(
            vars={"product": "phone", "review": "Great, really\r\ngreat"},
            expected="positive",
            split="train",
        ),
        TestRow(vars={"product": "tv", "review": "Broke"}, expected="negative"),
    ]
    assert "Imported 2 rows from reviews.csv." in panel.message.text()
    assert panel.current_test_set().rows == blocker.args[0].rows


def test_import_jsonl_appends_and_brings_new_columns(
    panel: TestSetPanel, qtbot, tmp_path: Path
) -> None:
    panel.new_test_set("Smoke")
    panel.add_row()
    path = tmp_path / "reviews.jsonl"
    lines = [
        {"vars": {"product": "phone", "review": "Fine"}, "expected": "neutral", "group": "g"},
        {"product": "tv", "review": "Nice", "stars": 5, "expected": "positive"},
        {"messages": [{"role": "user", "content": "Meh"}, {"role": "assistant", "content": "neg"}]},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    with qtbot.waitSignal(panel.test_set_changed) as blocker:
        assert panel.import_file(path) == 3
    assert len(blocker.args[0].rows) == 4
    assert _headers(panel.model) == [
        "product",
        "review",
        "stars",
        "input",
        "expected",
        "group",
        "split",
    ]
    assert _cells(panel.model, "stars") == ["", "", "5", ""]
    assert "the template does not use stars, input" in panel.message.text()


def test_import_without_a_test_set_creates_one(
    panel: TestSetPanel, library: Library, prompt: Prompt, tmp_path: Path
) -> None:
    path = tmp_path / "golden.csv"
    path.write_text("product,review,expected\nphone,Good,positive\n", encoding="utf-8")
    assert panel.import_file(path) == 1
    (test_set,) = library.test_sets_for(prompt.id)
    assert test_set.name == "golden"
    assert len(test_set.rows) == 1


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("bad.csv", "product,expected\nphone,good\ntv\n", "line 3: expected 2 fields"),
        ("bad.jsonl", '{"review": "a", "expected": "b"}\n{"review": \n', "line 2: not valid JSON"),
        ("bad.csv", "review,label\na,b\n", "line 1: header: no 'expected' column"),
    ],
)
def test_malformed_file_changes_nothing_and_names_the_line(
    filled: TestSetPanel,
    qtbot,
    library: Library,
    tmp_path: Path,
    name: str,
    content: str,
    problem: str,
) -> None:
    before = filled.current_test_set()
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with qtbot.assertNotEmitted(filled.test_set_changed):
        assert filled.import_file(path) == 0
    assert filled.current_test_set() == before
    assert library.test_sets[before.id] == before
    message = _child(filled, QLabel, "testSetMessage")
    assert message.text().startswith(f"Nothing imported — {name}:")
    assert problem in message.text()
    assert not message.isHidden()


def test_unreadable_file_changes_nothing(filled: TestSetPanel, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("review,expected\ncafé,x\n".encode("latin-1"))
    assert filled.import_file(path) == 0
    assert "Could not read latin1.csv" in filled.message.text()
    assert filled.import_file(tmp_path / "missing.csv") == 0


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_export_and_reimport_are_equal(
    filled: TestSetPanel, library: Library, prompt: Prompt, tmp_path: Path, suffix: str
) -> None:
    filled.split(0.5, 0.25, seed=3)
    model = filled.model
    model.setData(model.index(0, _column(model, "review")), 'Said "wow",\nthen left ✨')
    model.setData(model.index(1, _column(model, "group")), "hard")
    original = filled.current_test_set()
    path = tmp_path / f"out{suffix}"
    assert filled.export_file(path)
    assert f"Exported 6 rows to out{suffix}." in filled.message.text()
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temp file

    filled.new_test_set("Copy")
    assert filled.import_file(path) == 6
    copy = filled.current_test_set()
    assert copy.name == "Copy" and copy.rows == original.rows


def test_export_problems_go_to_the_message(filled: TestSetPanel, tmp_path: Path) -> None:
    assert not filled.export_file(tmp_path / "out.xlsx")
    assert "Export to a .csv or .jsonl file" in filled.message.text()
    model = filled.model
    model.insert_test_rows(0, [TestRow(vars={"split": "oops"}, expected="x")])
    assert not filled.export_file(tmp_path / "out.csv")
    assert "export as JSONL" in filled.message.text()


# ---------------------------------------------------------------------------
# Splits and labels


def test_split_shows_counts_and_persists(filled: TestSetPanel, qtbot, library_dir: Path) -> None:
    counts = _child(filled, QLabel, "testSetCounts")
    assert counts.text() == "6 rows, not split · positive 3, negative 3"
    with qtbot.waitSignal(filled.test_set_changed) as blocker:
        assert filled.split(0.5, 0.25, seed=1)
    splits = [row.split for row in blocker.args[0].rows]
    assert sorted(splits) == ["test", "train", "train", "train", "validation", "validation"]
    assert counts.text() == ("6 rows: 3 train, 2 validation, 1 test · positive 3, negative 3")
    assert "Split 6 rows: 3 train, 2 validation, 1 test." in filled.message.text()
    assert _cells(filled.model, "split") == splits
    # on disk, as a freshly opened library reads it
    test_set_id = blocker.args[0].id
    assert [r.split for r in Library(library_dir).test_sets[test_set_id].rows] == splits
    # stratified by label: each label's three rows are spread over the splits
    rows = blocker.args[0].rows
    for label in ("positive", "negative"):
        assert sorted(r.split for r in rows if r.expected == label) != ["train"] * 3
    # the same seed gives the same split; bad fractions change nothing
    assert filled.split(0.5, 0.25, seed=1)
    assert [r.split for r in filled.current_test_set().rows] == splits
    assert not filled.split(0.9, 0.5, seed=1)
    assert "Not split" in filled.message.text()
    assert [r.split for r in filled.current_test_set().rows] == splits


def test_labels_field_persists(
    filled: TestSetPanel, qtbot, library_dir: Path, prompt: Prompt
) -> None:
    labels = _child(filled, QLineEdit, "testSetLabels")
    assert labels.text() == "positive, negative"
    labels.clear()
    qtbot.keyClicks(labels, " positive,negative ,, neutral,positive")
    with qtbot.waitSignal(filled.test_set_changed) as blocker:
        qtbot.keyClick(labels, Qt.Key.Key_Return)
    assert blocker.args[0].labels == ["positive", "negative", "neutral"]
    assert labels.text() == "positive, negative, neutral"
    assert "neutral 0" in _child(filled, QLabel, "testSetCounts").text()
    test_set_id = blocker.args[0].id
    assert Library(library_dir).test_sets[test_set_id].labels == [
        "positive",
        "negative",
        "neutral",
    ]
    # empty: no fixed label set
    with qtbot.waitSignal(filled.test_set_changed) as blocker:
        filled.set_labels_text("  ")
    assert blocker.args[0].labels is None
    assert Library(library_dir).test_sets[test_set_id].labels is None
    # a reopened panel shows what was saved
    filled.set_labels_text("yes, no")
    again = TestSetPanel(Library(library_dir))
    qtbot.addWidget(again)
    again.set_prompt(prompt)
    assert _child(again, QLineEdit, "testSetLabels").text() == "yes, no"
    assert "other 6" in _child(again, QLabel, "testSetCounts").text()


def test_counts_without_labels_list_the_answers(filled: TestSetPanel) -> None:
    filled.set_labels_text("")
    model = filled.model
    model.setData(model.index(0, _column(model, "expected")), "")
    text = _child(filled, QLabel, "testSetCounts").text()
    assert text == "6 rows, not split · negative 3, positive 2, (empty) 1"


def test_exported_csv_is_readable_by_the_core_parser(filled: TestSetPanel, tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    assert filled.export_file(path)
    rows = parse_test_set_csv(path.read_bytes().decode("utf-8"))
    assert rows == filled.current_test_set().rows
