"""The live preview renders off the GUI thread, a newer edit supersedes an older render,
and a hostile template from an imported library can neither freeze nor exhaust the app."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QTimer

import workbench.ui.editor as editor_module
from workbench.core.library import Library
from workbench.core.models import Prompt
from workbench.ui.app import MainWindow
from workbench.ui.editor import PromptEditor
from workbench.ui.jobs import JobRunner

HOSTILE = {
    "repeat": "{{ 'a' * 100000000 }}",
    "loops": "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
    "center": "{{ 'x' | center(50000000) }}",
}


def test_the_preview_renders_on_the_light_worker_and_typing_stays_live(qtbot, monkeypatch) -> None:
    jobs = JobRunner()
    try:
        editor = PromptEditor(jobs)
        qtbot.addWidget(editor)
        gate = threading.Event()
        threads: list[str] = []
        real = editor_module.render_preview

        def slow_render(prompt, values):  # a template that takes its time (within limits)
            threads.append(threading.current_thread().name)
            if len(threads) == 1:
                assert gate.wait(10)
            return real(prompt, values)

        monkeypatch.setattr(editor_module, "render_preview", slow_render)
        ticks: list[int] = []
        heartbeat = QTimer()
        heartbeat.timeout.connect(lambda: ticks.append(1))
        heartbeat.start(5)
        editor.set_prompt(Prompt(name="p", user_template="first {{ x }}"))
        qtbot.waitUntil(lambda: len(threads) == 1)  # the first render is stuck on the gate
        count = len(ticks)
        qtbot.waitUntil(lambda: len(ticks) >= count + 5)  # the GUI thread keeps running
        editor.update_prompt(Prompt(name="p", user_template="second {{ x }}"))  # a keystroke
        assert editor.preview.toPlainText() == ""  # nothing shown yet: the render is pending
        with qtbot.waitSignal(editor.preview_shown, timeout=10_000):
            gate.set()
        qtbot.waitUntil(lambda: "second" in editor.preview.toPlainText())
        assert "first" not in editor.preview.toPlainText()  # the older render was dropped
        assert threads and all(name == "workbench-light" for name in threads)
        heartbeat.stop()
    finally:
        jobs.shutdown()


def test_a_model_job_never_delays_the_preview(qtbot) -> None:
    """A long model job occupies the model worker; the preview still renders."""
    jobs = JobRunner()
    release = threading.Event()
    try:
        jobs.run("long model job", lambda cancel: release.wait(10))
        editor = PromptEditor(jobs)
        qtbot.addWidget(editor)
        with qtbot.waitSignal(editor.preview_shown, timeout=10_000):
            editor.set_prompt(Prompt(name="p", user_template="Hello {{ who }}"))
        assert "Hello" in editor.preview.toPlainText()
        assert jobs.busy  # the model job is still running
    finally:
        release.set()
        jobs.shutdown()


def test_a_hostile_imported_library_opens_shows_its_problems_and_stays_intact(
    qtbot, library_dir: Path
) -> None:
    library = Library(library_dir)
    fine = library.new_prompt("Fine", user_template="Hello {{ who }}")
    hostile = {
        name: library.new_prompt(f"Hostile {name}", user_template=source)
        for name, source in HOSTILE.items()
    }
    before = {p: p.read_bytes() for p in sorted(library_dir.rglob("*.json"))}
    window = MainWindow(Library(library_dir), load_model=False)
    qtbot.addWidget(window)
    window.show()
    editor = window.editor
    for name, prompt in hostile.items():
        with qtbot.waitSignal(editor.preview_shown, timeout=10_000):
            window.select_prompt(prompt.id)
        assert editor.error.isVisible(), name
        text = editor.error.text()
        assert "user_template, line 1" in text and "render limit" in text, text
        assert editor.template.has_error_underline()
    with qtbot.waitSignal(editor.preview_shown, timeout=10_000):
        window.select_prompt(fine.id)
    assert not editor.error.isVisible()
    assert "Hello" in editor.preview.toPlainText()
    window.autosave()
    after = {p: p.read_bytes() for p in sorted(library_dir.rglob("*.json"))}
    assert {p: b for p, b in after.items() if p in before} == before  # nothing rewritten


def _underlined(edit) -> tuple[int, str]:
    """The line number (1-based) and text of the editor's error underline."""
    (selection,) = edit.extraSelections()
    cursor = selection.cursor
    return cursor.block().blockNumber() + 1, cursor.selectedText()


def test_a_user_template_error_is_underlined_there_even_with_few_shot_examples(qtbot) -> None:
    from workbench.core.models import FewShot, FewShotExample

    editor = PromptEditor()
    qtbot.addWidget(editor)
    examples = [
        FewShotExample(vars={"review": "great", "stars": "5"}, output="positive"),
        FewShotExample(vars={"review": "awful"}, output="negative"),
    ]
    broken = "Label the review.\n\nReview: {{ review }} {{ oops }"
    prompt = Prompt(name="p", user_template=broken, few_shot=FewShot(examples=examples))
    with qtbot.waitSignal(editor.preview_shown, timeout=10_000):
        editor.set_prompt(prompt)
    assert editor.error.text().startswith("user_template, line 3"), editor.error.text()
    assert "few_shot" not in editor.error.text()
    line, text = _underlined(editor.template)
    assert line == 3 and "{{ oops }" in text
    assert not editor.system.has_error_underline()

    # the template parses; the second example's values lack one it reads
    source = "Review: {{ review }}\nStars: {{ stars | int }}"
    fixed = prompt.model_copy(update={"user_template": source, "sample_values": {"stars": "3"}})
    with qtbot.waitSignal(editor.preview_shown, timeout=10_000):
        editor.set_prompt(fixed)
    text = editor.error.text()
    assert text.startswith("user_template, line 2") and "few-shot example 2" in text, text
    line, underlined = _underlined(editor.template)
    assert line == 2 and underlined.startswith("stars")


def test_a_chain_prompt_shows_where_its_text_is_written_instead_of_a_user_template(
    qtbot, library_dir: Path
) -> None:
    from workbench.core.models import ChainOfThought, ChainStep, CoTMode

    library = Library(library_dir)
    chain = ChainOfThought(
        mode=CoTMode.CHAIN,
        steps=[ChainStep(name="facts", template="List facts about {{ topic }}")],
    )
    prompt = library.new_prompt("Chain", user_template="", cot=chain)
    plain = library.new_prompt("Plain", user_template="Hello {{ who }}")
    window = MainWindow(Library(library_dir), load_model=False)
    qtbot.addWidget(window)
    window.show()
    editor = window.editor
    with qtbot.waitSignal(editor.preview_shown, timeout=10_000):
        window.select_prompt(prompt.id)
    assert not editor.template.isVisible() and not editor.template_label.isVisible()
    assert editor.chain_hint.isVisible()
    assert "Chain of thought tab" in editor.chain_hint.text()
    assert "List facts about" in editor.preview.toPlainText()  # the steps are what is sent

    window.select_prompt(plain.id)
    assert editor.template.isVisible() and not editor.chain_hint.isVisible()
    combo = window.cot.mode_combo  # the user makes it a chain in the Chain of thought tab
    combo.setCurrentIndex(combo.findData(CoTMode.CHAIN.value))
    assert window.working is not None and window.working.cot.mode is CoTMode.CHAIN
    assert not editor.template.isVisible() and editor.chain_hint.isVisible()
    combo.setCurrentIndex(combo.findData(CoTMode.OFF.value))
    assert editor.template.isVisible() and not editor.chain_hint.isVisible()
