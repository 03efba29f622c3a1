"""Does every text fit? The checks behind tests/ui/test_fit.py and scripts/fit_report.py.

`offenders(root)` looks at every visible label, button, combo box, header section and
tab of a window or dialog and measures its text with the widget's font metrics against
the room the widget gives it (after its margins, padding and word wrap); it also finds
widgets pushed outside the window or cut by a parent that does not scroll. A widget with
the property "elides" (see workbench/ui/widgets.py) cuts its text on purpose and is
left out. `min_width_chain` says which widgets make a window wider than asked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QFontMetrics, QTextDocument, QTextOption
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractScrollArea,
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QRadioButton,
    QScrollBar,
    QSplitterHandle,
    QStackedWidget,
    QStyle,
    QStyleOptionButton,
    QStyleOptionComboBox,
    QTabBar,
    QToolButton,
    QWidget,
)

DIRECT_CHILDREN = Qt.FindChildOption.FindDirectChildrenOnly
SLACK = 2  # px: rounding between font metrics and what the style draws


@dataclass(frozen=True)
class Offender:
    kind: str  # "text", "height", "outside", "window"
    widget: str  # class#objectName
    text: str
    needed: int
    available: int
    where: str  # the nearest named ancestors, outermost first

    def __str__(self) -> str:
        what = {
            "text": "text too wide",
            "height": "text too tall",
            "outside": "outside its parent",
            "window": "window larger than asked",
        }[self.kind]
        text = self.text
        if len(text) > 70 and self.kind != "window":
            text = text[:67] + "..."
        return (
            f"{what}: {self.widget} {text!r} needs {self.needed} px, has {self.available} px"
            f"  [in {self.where}]"
        )


def describe(widget: QWidget) -> str:
    name = widget.objectName()
    return f"{type(widget).__name__}#{name}" if name else type(widget).__name__


def where(widget: QWidget) -> str:
    names: list[str] = []
    parent = widget.parentWidget()
    while parent is not None:
        if parent.objectName() and not parent.objectName().startswith("qt_"):
            names.append(describe(parent))
        parent = parent.parentWidget()
    return " > ".join(reversed(names[:3])) or "-"


def _plain(text: str) -> str:
    """A button's text as drawn: "&&" is an ampersand, a single "&" marks the mnemonic."""
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&")


def _is_rich(label: QLabel) -> bool:
    fmt = label.textFormat()
    if fmt == Qt.TextFormat.RichText:
        return True
    if fmt == Qt.TextFormat.PlainText:
        return False
    from PySide6 import QtGui

    return bool(QtGui.Qt.mightBeRichText(label.text()))  # type: ignore[attr-defined]


def _label_document(label: QLabel, width: int | None) -> QTextDocument:
    doc = QTextDocument()
    doc.setDefaultFont(label.font())
    doc.setDocumentMargin(0)
    option = QTextOption()
    option.setWrapMode(
        QTextOption.WrapMode.WordWrap if width is not None else QTextOption.WrapMode.NoWrap
    )
    doc.setDefaultTextOption(option)
    if _is_rich(label):
        doc.setHtml(label.text())
    else:
        doc.setPlainText(label.text())
    if width is not None:
        doc.setTextWidth(width)
    return doc


def _label(label: QLabel) -> list[Offender]:
    text = label.text()
    if not text.strip() or label.property("elides"):
        return []
    room = label.contentsRect().adjusted(
        label.margin(), label.margin(), -label.margin(), -label.margin()
    )
    if room.width() <= 0 or room.height() <= 0:
        return []
    found: list[Offender] = []
    if label.wordWrap():
        doc = _label_document(label, room.width())
        wide = int(doc.idealWidth() + 0.5)  # a word longer than the line
        tall = int(doc.size().height() + 0.5)
    else:
        doc = _label_document(label, None)
        wide = int(doc.idealWidth() + 0.5)
        tall = int(doc.size().height() + 0.5)
    if wide > room.width() + SLACK:
        found.append(Offender("text", describe(label), text, wide, room.width(), where(label)))
    # a single line gets the font's height; only a text cut top and bottom counts
    lines = max(1, round(tall / max(1, QFontMetrics(label.font()).lineSpacing())))
    needed_height = tall if lines > 1 else QFontMetrics(label.font()).height()
    if needed_height > room.height() + SLACK + 1:
        found.append(
            Offender("height", describe(label), text, needed_height, room.height(), where(label))
        )
    return found


def _button(button: QAbstractButton) -> list[Offender]:
    text = _plain(button.text())
    if not text.strip() or button.property("elides"):
        return []
    metrics = QFontMetrics(button.font())
    needed = max(metrics.horizontalAdvance(line) for line in text.split("\n"))
    if not button.icon().isNull():
        needed += button.iconSize().width() + 4
    if isinstance(button, QToolButton):
        if button.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonIconOnly:
            return []
        available = button.width()
        needed = button.sizeHint().width()
        if needed <= available + SLACK:
            return []
        return [Offender("text", describe(button), text, needed, available, where(button))]
    option = QStyleOptionButton()
    button.initStyleOption(option)  # type: ignore[attr-defined]
    if isinstance(button, QPushButton):
        element = QStyle.SubElement.SE_PushButtonContents
        if button.menu() is not None:
            needed += button.style().pixelMetric(QStyle.PixelMetric.PM_MenuButtonIndicator)
    elif isinstance(button, QRadioButton):
        element = QStyle.SubElement.SE_RadioButtonContents
    elif isinstance(button, QCheckBox):
        element = QStyle.SubElement.SE_CheckBoxContents
    else:
        available = button.width()
        needed = button.sizeHint().width()
        if needed <= available + SLACK:
            return []
        return [Offender("text", describe(button), text, needed, available, where(button))]
    available = button.style().subElementRect(element, option, button).width()
    if needed <= available + SLACK:
        return []
    return [Offender("text", describe(button), text, needed, available, where(button))]


def _combo(combo: QComboBox) -> list[Offender]:
    text = combo.currentText()
    if not text.strip() or combo.property("elides") or combo.isEditable():
        return []
    option = QStyleOptionComboBox()
    combo.initStyleOption(option)  # type: ignore[attr-defined]
    field = combo.style().subControlRect(
        QStyle.ComplexControl.CC_ComboBox, option, QStyle.SubControl.SC_ComboBoxEditField, combo
    )
    needed = QFontMetrics(combo.font()).horizontalAdvance(text)
    if not combo.itemIcon(combo.currentIndex()).isNull():
        needed += combo.iconSize().width() + 4
    if needed <= field.width() + SLACK:
        return []
    return [Offender("text", describe(combo), text, needed, field.width(), where(combo))]


def _header(header: QHeaderView) -> list[Offender]:
    model = header.model()
    if model is None:
        return []
    found: list[Offender] = []
    for section in range(header.count()):
        if header.isSectionHidden(section):
            continue
        size = header.sectionSize(section)
        if size <= 0:
            continue
        text = model.headerData(section, header.orientation(), Qt.ItemDataRole.DisplayRole)
        if text is None or not str(text).strip():
            continue
        hint = header.sectionSizeFromContents(section)  # type: ignore[attr-defined]
        if header.orientation() == Qt.Orientation.Horizontal:
            needed, available = hint.width(), size
            # room for the text itself, not the style's full preferred padding
            needed -= 2 * header.style().pixelMetric(QStyle.PixelMetric.PM_HeaderMargin, None)
        else:
            needed, available = hint.width(), header.width()
        if needed > available + SLACK:
            owner = header.parentWidget()
            label = f"{describe(owner) if owner else '-'} header {section}"
            found.append(Offender("text", label, str(text), needed, available, where(header)))
    return found


def _tabs(bar: QTabBar) -> list[Offender]:
    found: list[Offender] = []
    owner = bar.parentWidget()
    if owner is not None and bar.usesScrollButtons():
        shown = [i for i in range(bar.count()) if bar.isTabVisible(i)]
        needed = sum(bar.tabSizeHint(i).width() for i in shown)  # type: ignore[attr-defined]
        if needed > owner.width() + SLACK:  # some tabs only behind the scroll arrows
            found.append(
                Offender(
                    "text", f"{describe(bar)} tabs", "all tabs", needed, owner.width(), where(bar)
                )
            )
    for index in range(bar.count()):
        if not bar.isTabVisible(index):
            continue
        needed = bar.tabSizeHint(index).width()  # type: ignore[attr-defined]
        available = bar.tabRect(index).width()
        if needed > available + SLACK:
            found.append(
                Offender(
                    "text",
                    f"{describe(bar)} tab {index}",
                    bar.tabText(index),
                    needed,
                    available,
                    where(bar),
                )
            )
    return found


# the inner parts of composite widgets are laid out by the widget itself
_INNER_OWNERS = (QComboBox, QAbstractSpinBox, QTabBar, QScrollBar, QHeaderView)


def _scrolls(widget: QWidget) -> bool:
    """Whether `widget` is the viewport of a scroll area (its content may lie outside)."""
    parent = widget.parentWidget()
    return isinstance(parent, QAbstractScrollArea) and parent.viewport() is widget


def _outside(widget: QWidget, root: QWidget) -> Offender | None:
    """The widget cut by the first ancestor (up to `root`) whose rectangle it leaves."""
    rect = QRect(QPoint(0, 0), widget.size())
    child = widget
    parent = widget.parentWidget()
    while parent is not None:
        if _scrolls(parent) or isinstance(parent, _INNER_OWNERS):
            return None
        rect = rect.translated(child.pos())
        inside = parent.rect()
        if not inside.adjusted(-SLACK, -SLACK, SLACK, SLACK).contains(rect):
            lost_w = rect.width() - rect.intersected(inside).width()
            lost_h = rect.height() - rect.intersected(inside).height()
            return Offender(
                "outside",
                describe(widget),
                f"cut by {describe(parent)} ({lost_w} px wide, {lost_h} px high lost)",
                rect.width(),
                rect.intersected(inside).width(),
                where(widget),
            )
        if parent is root:
            return None
        child, parent = parent, parent.parentWidget()
    return None


def visible_widgets(root: QWidget) -> list[QWidget]:
    return [
        w
        for w in root.findChildren(QWidget)
        if w.isVisible() and w.window() is root and w.width() > 0 and w.height() > 0
    ]


def offenders(root: QWidget) -> list[Offender]:
    """Every text that does not fit, and every widget cut by its parent, in `root`."""
    found: list[Offender] = []
    cut: list[QWidget] = []
    for widget in visible_widgets(root):
        if isinstance(widget, QLabel):
            found += _label(widget)
        elif isinstance(widget, QAbstractButton):
            if not isinstance(widget.parentWidget(), _INNER_OWNERS):
                found += _button(widget)
        elif isinstance(widget, QComboBox):
            found += _combo(widget)
        elif isinstance(widget, QHeaderView):
            found += _header(widget)
        elif isinstance(widget, QTabBar):
            found += _tabs(widget)
        if isinstance(widget, QSplitterHandle | QScrollBar) or any(
            widget is c or c.isAncestorOf(widget) for c in cut
        ):
            continue
        outside = _outside(widget, root)
        if outside is not None:
            cut.append(widget)
            found.append(outside)
    return found


def window_offenders(window: QWidget, width: int, height: int) -> list[Offender]:
    """The window itself when it grew past the size it was given."""
    found = []
    if window.width() > width + SLACK or window.height() > height + SLACK:
        chain = " > ".join(f"{n} {w} px" for n, w in min_width_chain(window))
        found.append(
            Offender(
                "window",
                describe(window),
                f"{window.width()}x{window.height()}; widest: {chain}",
                window.width(),
                width,
                "-",
            )
        )
    return found


def min_width_chain(widget: QWidget, depth: int = 8) -> list[tuple[str, int]]:
    """Follow the widest visible child (by minimum size hint) down from `widget`: which
    part makes it as wide as it is."""
    chain: list[tuple[str, int]] = []
    current = widget
    for _ in range(depth):
        children = [
            c
            for c in current.findChildren(QWidget, options=DIRECT_CHILDREN)
            if not c.isWindow() and (c.isVisible() or isinstance(current, QStackedWidget))
        ]
        if not children:
            break

        def need(child: QWidget) -> int:
            return max(child.minimumSizeHint().width(), child.minimumWidth())

        children.sort(key=need, reverse=True)
        own = max(need(current), 1)
        if need(children[0]) < 0.8 * own and len(children) > 1:  # side by side
            chain.append((" + ".join(f"{describe(c)} {need(c)}" for c in children[:4]), own))
            break
        widest = children[0]
        chain.append((describe(widest), need(widest)))
        if isinstance(widest, QAbstractItemView):
            break
        current = widest
    return chain


def report(found: Iterable[Offender]) -> str:
    lines = [str(o) for o in found]
    return "\n".join(lines) if lines else "everything fits"


# -- the tour: every tab, the docks and the dialogs that open without a model --------


@dataclass
class Place:
    name: str
    found: list[Offender]


def _earlier_evaluation(library, prompt, test_set):  # type: ignore[no-untyped-def]
    """A finished three-variant likelihood evaluation of `test_set`, stored."""
    from workbench.core.evaluation import summarise
    from workbench.core.models import CaseResult, CoTMode, EvalRun, VariantSpec

    specs = [
        VariantSpec(name="zero-shot", few_shot_count=0),
        VariantSpec(name="few-shot"),
        VariantSpec(name="chain-of-thought", cot_mode=CoTMode.ZERO_SHOT),
    ]
    results: list[list[CaseResult]] = [[], [], []]
    labels = test_set.labels or ["positive", "negative"]
    for i, row in enumerate(test_set.rows[:40]):
        expected = row.expected or labels[0]
        wrong = next((label for label in labels if label != expected), expected)
        answers = (expected, wrong if i % 3 == 0 else expected, expected)
        for variant, answer in enumerate(answers):
            results[variant].append(
                CaseResult(
                    row=i,
                    output=answer if variant < 2 else f"Let's think step by step. {answer}",
                    answer=answer,
                    scores={"label": float(answer == expected)},
                    latency_s=0.4,
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
    return library.save_eval_run(run)


def seed_tour_library(library_dir) -> None:  # type: ignore[no-untyped-def]
    """The sample library, plus two runs of the sentiment prompt (for Compare) and an
    earlier evaluation of it (for the Evaluate tab's results)."""
    from workbench.core.library import Library, seed_library
    from workbench.core.models import GenerationParams, Message, RunRecord, RunStats
    from workbench.core.resources import resource_path

    library = Library(library_dir)
    seed_library(library, resource_path("sample_library"))
    prompt = library.find_prompt("Review sentiment")
    for output, temperature in (("positive", 0.0), ("negative", 0.7)):
        library.save_run(
            RunRecord(
                prompt_id=prompt.id,
                prompt_version=prompt.version,
                model="SmolLM2-135M-Instruct (embedded)",
                backend="llama.cpp",
                params=GenerationParams(temperature=temperature, max_new_tokens=4),
                variables={"review": "The kettle boils fast, but the lid leaks."},
                messages=[Message(role="user", content="Review: The kettle boils fast.")],
                output=output,
                stats=RunStats(
                    prompt_tokens=80,
                    completion_tokens=1,
                    time_to_first_token_s=0.3,
                    tokens_per_s=24.0,
                    total_s=0.4,
                    finish_reason="stop",
                ),
            )
        )
    sets = [s for s in library.test_sets.values() if s.prompt_id == prompt.id]
    if sets:
        _earlier_evaluation(library, prompt, sets[0])
    library.close()


def settle() -> None:
    """Let pending layouts and deferred events run."""
    from PySide6.QtCore import QCoreApplication, QEvent
    from PySide6.QtWidgets import QApplication

    for _ in range(3):
        QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
        QApplication.processEvents()


def _check_modal(trigger, name: str, places: list[Place]) -> None:  # type: ignore[no-untyped-def]
    """Open a modal box (About, a question) with `trigger`, check it from inside its own
    event loop, then close it."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    def inspect() -> None:
        box = QApplication.activeModalWidget()
        if box is None:
            places.append(Place(name, []))
            return
        settle()
        places.append(Place(name, offenders(box)))
        box.close()

    QTimer.singleShot(100, inspect)
    trigger()


def _show_finished_graduation(window, library, prompt) -> bool:  # type: ignore[no-untyped-def]
    """Put the Graduate tab in the state a finished graduation leaves it in, through the
    signals the graduation job emits: saved, compared, the long closing message, the
    last step's status and the comparison's progress line (and the device line)."""
    from tests.ui.graduate.helpers import comparison_run, stored_soft_prompt
    from workbench.core.flows.report import format_step
    from workbench.core.tuning import StepEvent

    sets = [s for s in library.test_sets.values() if s.prompt_id == prompt.id]
    if not sets:
        return False
    window.tabs.setCurrentWidget(window.graduate)
    training = window.graduate.training
    training.saved.emit(stored_soft_prompt(library, prompt))
    training.compared.emit(comparison_run(prompt, sets[0]))
    training.message.emit(
        "Finished 225 steps (best at step 100: validation loss 0.2131, accuracy 0.900); "
        "early stopping after 5 validations without improvement. Held-out label accuracy: "
        "zero-shot 40.0 %, few-shot 41.7 %, soft prompt 81.7 %."
    )
    step = StepEvent(225, 225, 0.1234, 0.11, 0.0, None, 1228.0)
    training.status.emit(format_step(step))
    training.progress.emit(
        "Comparing zero-shot / few-shot / soft prompt on 60 held-out rows: 180/180"
    )
    return True


def tour(window, wait_until, width: int, height: int) -> list[Place]:  # type: ignore[no-untyped-def]
    """Visit every tab (with the docks beside it) and every dialog that opens without a
    model, and return what does not fit in each. `window` is a shown MainWindow on a
    library made by `seed_tour_library`; `wait_until(predicate)` waits for a job."""
    from pathlib import Path
    from tempfile import TemporaryDirectory

    from workbench.core import exchange
    from workbench.core.library import Library, seed_library
    from workbench.core.resources import resource_path

    places: list[Place] = []
    library = window.library
    prompt = library.find_prompt("Review sentiment")
    window.library_panel.select(prompt.id)
    settle()
    first = window_offenders(window, width, height)
    places.append(Place(f"main window at {width}x{height}", first))

    def visit(name: str, root: QWidget | None = None) -> None:
        settle()
        places.append(Place(name, offenders(root or window)))

    tabs = window.tabs
    for index in range(tabs.count()):
        tabs.setCurrentIndex(index)
        visit(f"tab {tabs.tabText(index)!r} (sentiment prompt)")
    runs = library.eval_runs_for(prompt.id)
    if runs:
        tabs.setCurrentWidget(window.evaluate)
        window.evaluate.show_run(runs[0])
        visit("tab 'Evaluate' with an earlier evaluation")
    graduated = _show_finished_graduation(window, library, prompt)
    if graduated:
        visit("tab 'Graduate' after a graduation")
        places.append(
            Place("main window after a graduation", window_offenders(window, width, height))
        )
    for name in ("Meeting notes → summary (chain)", "Word problems (chain of thought)"):
        other = library.find_prompt(name)
        window.library_panel.select(other.id)
        for widget in (window.editor, window.cot):
            tabs.setCurrentWidget(widget)
            visit(f"tab {tabs.tabText(tabs.currentIndex())!r} ({name})")
    window.library_panel.select(prompt.id)
    tabs.setCurrentWidget(window.editor)
    places.append(Place("main window after the tour", window_offenders(window, width, height)))

    # the Run dock's Compare
    history = window.run_panel.history
    if history.model().rowCount() >= 2:
        history.selectAll()
        dialog = window.run_panel.compare_selected()
        if dialog is not None:
            visit("Compare runs", dialog)
            dialog.close()

    window.show_export()
    if window.export_dialog is not None:
        visit("Export", window.export_dialog)
        window.export_dialog.close()

    with TemporaryDirectory() as tmp:
        other = Library(Path(tmp) / "colleague")
        seed_library(other, resource_path("sample_library"))
        theirs = other.get_prompt(prompt.id)
        other.save_prompt(theirs.model_copy(update={"description": "Tuned by a colleague."}))
        shared = Path(tmp) / "shared.zip"
        exchange.export(other, "bundle", shared)
        other.close()
        job = window.import_file(shared)
        if job is not None:
            wait_until(lambda: bool(window.import_dialog and window.import_dialog.isVisible()))
            visit("Import preview", window.import_dialog)
            window.import_dialog.reject()

    from workbench.ui.run_views import ServerDialog

    server = ServerDialog(window)
    server.show()
    visit("Add a server", server)
    server.close()

    error = window.errors.show_error(
        "The task 'run' failed", "Something went wrong while reading the model.", "Traceback"
    )
    visit("Error", error)
    error.close()

    from workbench.ui.optimise import OptimiseDialog

    optimise = OptimiseDialog(library, window.session, window.jobs, window.working)
    optimise.show()
    visit("Optimise", optimise)
    optimise.close()

    help_menu = next(
        (a.menu() for a in window.menuBar().actions() if "Help" in a.text() and a.menu()), None
    )
    for action in help_menu.actions() if help_menu is not None else []:
        label = _plain(action.text())
        if action.isSeparator() or not action.isEnabled() or "guide" in label.lower():
            continue  # the user guide may open a web browser
        before = {id(w) for w in _top_levels()}
        _check_modal(action.trigger, f"Help → {label}", places)
        for widget in _top_levels():
            if id(widget) not in before and widget.isVisible():
                visit(f"Help → {label}", widget)
                widget.close()
    return places


def _top_levels() -> list[QWidget]:
    from PySide6.QtWidgets import QApplication

    return [w for w in QApplication.topLevelWidgets() if w.isVisible() and w.isWindow()]
