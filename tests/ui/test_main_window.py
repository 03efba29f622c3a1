"""The main window, driven for real with pytest-qt (offscreen)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from workbench.core.library import Library
from workbench.ui.app import MainWindow
from workbench.ui.models import PromptListModel


def test_empty_library_offers_the_samples_and_loads_them(qtbot, library_dir: Path) -> None:
    window = MainWindow(Library(library_dir))
    qtbot.addWidget(window)
    window.show()
    assert window.empty_banner.isVisible()
    assert window.prompt_model.rowCount() == 0
    qtbot.mouseClick(window.seed_button, Qt.MouseButton.LeftButton)
    assert not window.empty_banner.isVisible()
    names = [window.prompt_model.prompt_at(r).name for r in range(window.prompt_model.rowCount())]
    assert "Review sentiment" in names
    # the samples are on disk, not only in the window
    assert "Review sentiment" in [p.name for p in Library(library_dir).prompts.values()]


def test_selecting_a_prompt_shows_what_the_model_will_see(qtbot, library_dir: Path) -> None:
    library = Library(library_dir)
    library.new_prompt("Alpha", system="Be kind.", user_template="Hello {{ who }}")
    library.new_prompt("Beta", user_template="Broken {{ x ")
    window = MainWindow(library)
    qtbot.addWidget(window)
    window.prompt_list.setCurrentIndex(window.prompt_model.index(0))
    assert "Alpha" in window.title.text()
    assert window.preview.toPlainText() == "[system]\nBe kind.\n\n[user]\nHello {{ who }}\n"
    window.prompt_list.setCurrentIndex(window.prompt_model.index(1))
    assert window.preview.toPlainText().startswith("Template error — user_template, line 1")


def test_search_filters_the_list(qtbot, library_dir: Path) -> None:
    library = Library(library_dir)
    library.new_prompt("Sentiment")
    library.new_prompt("Summary")
    window = MainWindow(library)
    qtbot.addWidget(window)
    qtbot.keyClicks(window.search_box, "senti")
    assert window.prompt_model.rowCount() == 1
    assert window.prompt_model.prompt_at(0).name == "Sentiment"


def test_prompt_list_model_passes_the_model_tester(qtmodeltester, library_dir: Path) -> None:
    library = Library(library_dir)
    for name in ("a", "b", "c"):
        library.new_prompt(name, tags=[name])
    model = PromptListModel(library)
    qtmodeltester.check(model)
    model.set_filter("b")
    qtmodeltester.check(model)
    assert model.data(model.index(0), PromptListModel.TagsRole) == ["b"]
