"""The app's look: one stylesheet (`resources/style/workbench.qss`) over the Fusion style,
in a light and a dark palette that follow the system's colour scheme.

The stylesheet holds the spacing, the type sizes and which widgets carry the accent; it
names colours as `$token`s, filled in from a `Theme` here, so both themes share every
rule. `apply_theme(app)` picks the theme (the `WORKBENCH_THEME` environment variable
`light`/`dark` wins, then `QStyleHints.colorScheme()`, then light), sets the palette and
the stylesheet, and follows the system when its scheme changes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from string import Template
from typing import Literal

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QWidget
from shiboken6 import isValid

from workbench.core.resources import ResourceNotFoundError, resource_path

log = logging.getLogger(__name__)

ThemeName = Literal["light", "dark"]
STYLESHEET = ("style", "workbench.qss")
THEME_ENV = "WORKBENCH_THEME"


@dataclass(frozen=True)
class Theme:
    """The colours of one theme. `accent` is the one accent colour (selection, focus,
    the primary buttons, the current tab); the rest are neutrals."""

    name: ThemeName
    window: str  # the window and panel background
    surface: str  # text fields, tables and lists
    surface_alt: str  # alternating rows, headers, inactive tabs
    raised: str  # buttons
    raised_hover: str
    border: str
    border_strong: str
    text: str
    muted: str  # secondary text: hints, status bar, disabled
    disabled: str
    accent: str
    accent_hover: str
    accent_text: str  # text on the accent colour
    selection: str  # a selected row: the accent, softened
    selection_text: str
    error: str
    tooltip: str
    tooltip_text: str

    def tokens(self) -> dict[str, str]:
        return {key: value for key, value in asdict(self).items() if key != "name"}


LIGHT = Theme(
    name="light",
    window="#f4f5f7",
    surface="#ffffff",
    surface_alt="#eef0f3",
    raised="#ffffff",
    raised_hover="#eaeef6",
    border="#d3d7de",
    border_strong="#a9b0bc",
    text="#1c2230",
    muted="#5a6474",
    disabled="#9aa1ad",
    accent="#2f62d6",
    accent_hover="#2553bb",
    accent_text="#ffffff",
    selection="#d6e2fb",
    selection_text="#10203f",
    error="#c62828",
    tooltip="#1c2230",
    tooltip_text="#f4f5f7",
)

DARK = Theme(
    name="dark",
    window="#1d2026",
    surface="#15171c",
    surface_alt="#252930",
    raised="#2b3038",
    raised_hover="#343a44",
    border="#3a404a",
    border_strong="#56606e",
    text="#e4e7ec",
    muted="#a0a8b4",
    disabled="#6b7380",
    accent="#6b93f5",
    accent_hover="#84a6f7",
    accent_text="#0d1424",
    selection="#2c3f66",
    selection_text="#eef2fb",
    error="#f58383",
    tooltip="#e4e7ec",
    tooltip_text="#1d2026",
)

THEMES: dict[ThemeName, Theme] = {"light": LIGHT, "dark": DARK}


def system_theme() -> ThemeName:
    """`dark` when the system asks for a dark colour scheme; light otherwise (also when
    it says nothing, or Qt is older than 6.5)."""
    forced = os.environ.get(THEME_ENV, "").strip().lower()
    if forced in THEMES:
        return forced  # type: ignore[return-value]
    hints = QGuiApplication.styleHints()
    scheme = getattr(hints, "colorScheme", None)
    if scheme is not None and scheme() == Qt.ColorScheme.Dark:
        return "dark"
    return "light"


def stylesheet(theme: Theme) -> str:
    """The stylesheet with this theme's colours filled in. A token the theme lacks is an
    error here (and in the tests), not a rule Qt silently drops."""
    path = resource_path(*STYLESHEET)
    tokens = {**theme.tokens(), "style_dir": path.parent.as_posix(), "theme": theme.name}
    return Template(path.read_text(encoding="utf-8")).substitute(tokens)


def palette(theme: Theme) -> QPalette:
    """The Fusion palette for `theme`: what the stylesheet does not restyle (check marks,
    menus' separators, item views' text) follows it."""
    result = QPalette()
    role = QPalette.ColorRole
    pairs = {
        role.Window: theme.window,
        role.WindowText: theme.text,
        role.Base: theme.surface,
        role.AlternateBase: theme.surface_alt,
        role.Text: theme.text,
        role.Button: theme.raised,
        role.ButtonText: theme.text,
        role.BrightText: theme.error,
        role.Highlight: theme.accent,
        role.HighlightedText: theme.accent_text,
        role.ToolTipBase: theme.tooltip,
        role.ToolTipText: theme.tooltip_text,
        role.PlaceholderText: theme.muted,
        role.Link: theme.accent,
        role.LinkVisited: theme.accent,
        role.Light: theme.raised_hover,
        role.Midlight: theme.border,
        role.Mid: theme.border_strong,
        role.Dark: theme.border_strong,
        role.Shadow: theme.border_strong,
    }
    for colour_role, value in pairs.items():
        result.setColor(colour_role, QColor(value))
    disabled = QPalette.ColorGroup.Disabled
    for colour_role in (role.WindowText, role.Text, role.ButtonText):
        result.setColor(disabled, colour_role, QColor(theme.disabled))
    result.setColor(disabled, role.Highlight, QColor(theme.border_strong))
    return result


def apply_theme(
    app: QApplication, name: ThemeName | None = None, *, when_shown: bool = False
) -> Theme:
    """Fusion, the palette and the stylesheet of `name` (the system's when None). The
    app keeps its look if the stylesheet cannot be found (logged).

    `when_shown` sets the style and palette now and the stylesheet just before the first
    window appears: with a stylesheet in place every widget is polished again each time
    it is put into a layout, which made building the main window three times slower
    (about 55 → 160 ms here); set once over the finished window it costs about 30 ms."""
    theme = THEMES[name or system_theme()]
    try:
        sheet = stylesheet(theme)
    except (ResourceNotFoundError, OSError, KeyError, ValueError):
        log.exception("the stylesheet could not be read; the app keeps its default look")
        return theme
    app.setStyle("Fusion")  # the same widgets on every system; the palette colours them
    app.setProperty("workbenchStyle", "fusion")
    app.setPalette(palette(theme))
    app.setProperty("workbenchTheme", theme.name)
    if when_shown:
        _FirstWindow.install(app, sheet)
    else:
        app.setStyleSheet(sheet)
    return theme


class _FirstWindow(QObject):
    """Sets the app's stylesheet when the first window is about to be shown (its show
    event comes before it reaches the screen), then removes itself."""

    def __init__(self, app: QApplication, sheet: str) -> None:
        super().__init__(app)
        self.app = app
        self.sheet = sheet

    @classmethod
    def install(cls, app: QApplication, sheet: str) -> None:
        for old in app.findChildren(cls):
            app.removeEventFilter(old)
            old.deleteLater()
        if any(w.isVisible() for w in app.topLevelWidgets()):
            app.setStyleSheet(sheet)  # a window is already up: no reason to wait
            return
        app.installEventFilter(cls(app, sheet))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        shown = event.type() == QEvent.Type.Show
        if shown and isinstance(watched, QWidget) and watched.isWindow():
            self.app.removeEventFilter(self)
            self.app.setStyleSheet(self.sheet)
            self.deleteLater()
        return False


def pause_first_window_wait() -> Callable[[], None]:
    """While the first window is built, the stylesheet `apply_theme(..., when_shown=True)`
    holds back need not look at the app's every event (thousands, each a call into
    Python): this stops looking and returns the function that starts again."""
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return lambda: None
    waiting = app.findChildren(_FirstWindow)
    for filter_ in waiting:
        app.removeEventFilter(filter_)

    def resume() -> None:
        for filter_ in waiting:
            if isValid(filter_):  # not deleted meanwhile
                app.installEventFilter(filter_)

    return resume


def follow_system(app: QApplication) -> None:
    """Re-apply the theme when the system switches between light and dark (Qt 6.5+);
    a theme forced with WORKBENCH_THEME stays."""
    hints = QGuiApplication.styleHints()
    signal = getattr(hints, "colorSchemeChanged", None)
    if signal is None or app.property("workbenchFollowsSystem"):
        return
    app.setProperty("workbenchFollowsSystem", True)

    def changed(_scheme: object) -> None:
        name = system_theme()
        if name != app.property("workbenchTheme"):
            apply_theme(app, name)

    signal.connect(changed)
