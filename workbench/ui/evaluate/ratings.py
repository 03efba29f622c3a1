"""Rating a variant's output: thumbs up or down, 1–5 stars and a note, by keyboard on the
grid (`+`/`-` thumbs, `1`–`5` stars, `0` clears, `N` edits the note), by its context menu
or by the rating bar above the case detail. What a rating action does to a rating is
`rated`; the browser applies it to the run (`core.analysis.set_rating`) and saves it."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QAction, QKeyEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMenu,
    QToolButton,
    QWidget,
)

from workbench.core.models import CaseRating
from workbench.ui.widgets import named

UP, DOWN, CLEAR, NOTE = "up", "down", "clear", "note"
STARS = tuple(str(n) for n in range(1, 6))
KEYS = {"+": UP, "=": UP, "-": DOWN, "0": CLEAR, "n": NOTE, "N": NOTE, **{s: s for s in STARS}}
RATING_HELP = "Rate the selected output: + / − thumbs, 1–5 stars, 0 clears, N note"


def rated(rating: CaseRating | None, action: str, note: str | None = None) -> CaseRating | None:
    """The rating after `action` (UP, DOWN, "1"…"5", CLEAR, or NOTE with `note`); the same
    thumbs or stars again take them back. None = no rating left."""
    current = rating or CaseRating()
    if action == CLEAR:
        return None
    if action in (UP, DOWN):
        thumbs = None if current.thumbs == action else action
        new = current.model_copy(update={"thumbs": thumbs})
    elif action in STARS:
        stars = None if current.stars == int(action) else int(action)
        new = current.model_copy(update={"stars": stars})
    elif action == NOTE:
        new = current.model_copy(update={"note": (note or "").strip()})
    else:
        raise ValueError(f"unknown rating action {action!r}")
    return None if new.is_empty() else new


def rating_marks(rating: CaseRating | None) -> str:
    """A rating as a grid cell shows it: "▲ ★4 ✎" (empty for none)."""
    if rating is None:
        return ""
    marks = []
    if rating.thumbs:
        marks.append("▲" if rating.thumbs == UP else "▼")
    if rating.stars:
        marks.append(f"★{rating.stars}")
    if rating.note.strip():
        marks.append("✎")
    return " ".join(marks)


def rating_text(rating: CaseRating | None) -> str:
    """A rating in words, for the detail pane and tooltips."""
    if rating is None:
        return "not rated"
    parts = []
    if rating.thumbs:
        parts.append("thumbs up" if rating.thumbs == UP else "thumbs down")
    if rating.stars:
        parts.append(f"{rating.stars} of 5 stars")
    if rating.note.strip():
        parts.append(f"note: {rating.note.strip()}")
    return ", ".join(parts) or "not rated"


def ask_note(parent: QWidget, current: str) -> str | None:
    """The note for an output (a dialog); None = cancelled."""
    text, ok = QInputDialog.getMultiLineText(parent, "Note on this output", "Note:", current)
    return text if ok else None


class RatingKeys(QObject):
    """An event filter for the grid: a rating key pressed emits `action` (see KEYS)."""

    action = Signal(str)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
            plain = modifiers in (
                Qt.KeyboardModifier.NoModifier,
                Qt.KeyboardModifier.ShiftModifier,
            )
            found = KEYS.get(event.text()) if plain else None
            if found is not None:
                self.action.emit(found)
                return True
        return super().eventFilter(watched, event)


def rating_actions(parent: QWidget, menu: QMenu, emit: object) -> None:
    """The rating entries of a context menu; each calls `emit(action)`."""
    entries = [
        (UP, "▲ Thumbs up\t+"),
        (DOWN, "▼ Thumbs down\t-"),
        *[(s, f"{'★' * int(s)} {s} of 5\t{s}") for s in STARS],
        (NOTE, "Note…\tN"),
        (CLEAR, "Clear rating\t0"),
    ]
    for key, text in entries:
        action = QAction(text, parent)
        action.triggered.connect(lambda _=False, k=key: emit(k))  # type: ignore[operator]
        menu.addAction(action)


class RatingBar(QWidget):
    """Thumbs, stars, a note and clear for the picked output; `action` as for the keys."""

    action = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("evalRatingBar")
        self.setToolTip(RATING_HELP)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.target = named(QLabel(), "evalRatingTarget")
        layout.addWidget(self.target)
        self.buttons: dict[str, QToolButton] = {}
        for key, text, tip in [
            (UP, "▲", "Thumbs up (+)"),
            (DOWN, "▼", "Thumbs down (−)"),
            *[(s, f"★{s}", f"{s} of 5 stars ({s})") for s in STARS],
            (NOTE, "Note…", "A note on this output (N)"),
            (CLEAR, "Clear", "Clear the rating (0)"),
        ]:
            button = named(QToolButton(), f"evalRate_{key}")
            button.setText(text)
            button.setToolTip(tip)
            button.setCheckable(key not in (NOTE, CLEAR))
            button.clicked.connect(lambda _=False, k=key: self.action.emit(k))
            layout.addWidget(button)
            self.buttons[key] = button
        layout.addStretch(1)
        self.show_rating(None, None)

    def show_rating(self, name: str | None, rating: CaseRating | None) -> None:
        """The picked output's variant and rating (name None = nothing to rate)."""
        self.target.setText(f"Rate {name}:" if name else "Pick an output to rate it")
        for key, button in self.buttons.items():
            button.setEnabled(name is not None)
            if key in (UP, DOWN):
                button.setChecked(rating is not None and rating.thumbs == key)
            elif key in STARS:
                button.setChecked(rating is not None and rating.stars == int(key))
