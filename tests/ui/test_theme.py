"""The app's look: the stylesheet is found through the resources helper (so it ships in
a wheel and a PyInstaller bundle), both themes fill every colour token and apply, the
system's colour scheme picks the theme, and text stays readable on every surface."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QLabel, QPushButton

from workbench.core import resources
from workbench.ui import theme
from workbench.ui.app import create_application


@pytest.fixture
def restored(qapp: QApplication) -> Iterator[QApplication]:
    style, palette, sheet = qapp.style().name(), qapp.palette(), qapp.styleSheet()
    yield qapp
    qapp.setStyleSheet(sheet)
    qapp.setPalette(palette)
    qapp.setStyle(style)
    qapp.setProperty("workbenchTheme", None)


@pytest.mark.parametrize("name", ["light", "dark"])
def test_the_stylesheet_and_its_images_are_runtime_resources(name: str) -> None:
    path = resources.resource_path(*theme.STYLESHEET)
    assert path.parent.parent == resources.resources_dir()
    # the arrows and check marks it draws are beside it, found the same way
    images = re.findall(r'url\("([^"]+)"\)', theme.stylesheet(theme.THEMES[name]))
    assert len(images) >= 3
    for image in images:
        assert Path(image).is_file(), image
        assert Path(image).parent == path.parent


@pytest.mark.parametrize("name", ["light", "dark"])
def test_each_theme_fills_every_token(name: str) -> None:
    sheet = theme.stylesheet(theme.THEMES[name])
    assert "$" not in sheet
    assert theme.THEMES[name].accent in sheet
    assert sheet.count("{") == sheet.count("}")
    assert resources.resource_path("style", "arrow-down.svg").as_posix() in sheet


def test_a_token_the_theme_lacks_is_an_error_not_a_dropped_rule(monkeypatch) -> None:
    monkeypatch.setattr(theme.Theme, "tokens", lambda self: {"text": "#000"})
    with pytest.raises(KeyError):
        theme.stylesheet(theme.LIGHT)


@pytest.mark.parametrize("name", ["light", "dark"])
def test_each_theme_applies_its_palette_and_stylesheet(qtbot, restored, name: str) -> None:
    applied = theme.apply_theme(restored, name)
    assert applied is theme.THEMES[name]
    assert restored.styleSheet() == theme.stylesheet(applied)
    assert restored.property("workbenchStyle") == "fusion"
    assert restored.property("workbenchTheme") == name
    window = restored.palette().color(QPalette.ColorRole.Window)
    assert window == QColor(applied.window)
    # a primary button takes the accent; a plain one does not
    run = QPushButton("Run")
    run.setObjectName("runButton")
    plain = QPushButton("Cancel")
    for button in (run, plain):
        qtbot.addWidget(button)
        button.show()
    qtbot.waitExposed(run)
    assert _middle(run) == QColor(applied.accent)
    assert _middle(plain) != QColor(applied.accent)


def _middle(button: QPushButton) -> QColor:
    """The colour at the left middle of a button's background (clear of its text)."""
    image = button.grab().toImage()
    return QColor(image.pixel(4, image.height() // 2))


def test_create_application_applies_the_system_theme(restored, monkeypatch) -> None:
    monkeypatch.setenv(theme.THEME_ENV, "dark")
    app = create_application()
    assert app is restored
    assert app.property("workbenchTheme") == "dark"
    assert app.palette().color(QPalette.ColorRole.Base) == QColor(theme.DARK.surface)


def test_the_system_scheme_picks_the_theme_and_light_is_the_fallback(monkeypatch) -> None:
    monkeypatch.delenv(theme.THEME_ENV, raising=False)

    class Hints:
        def __init__(self, scheme: Qt.ColorScheme) -> None:
            self.scheme = scheme

        def colorScheme(self) -> Qt.ColorScheme:
            return self.scheme

    for scheme, expected in (
        (Qt.ColorScheme.Dark, "dark"),
        (Qt.ColorScheme.Light, "light"),
        (Qt.ColorScheme.Unknown, "light"),
    ):
        monkeypatch.setattr(QGuiApplication, "styleHints", lambda s=scheme: Hints(s))
        assert theme.system_theme() == expected
    monkeypatch.setattr(QGuiApplication, "styleHints", lambda: object())  # Qt < 6.5
    assert theme.system_theme() == "light"
    monkeypatch.setenv(theme.THEME_ENV, "dark")
    assert theme.system_theme() == "dark"


def test_a_missing_stylesheet_leaves_the_default_look(restored, monkeypatch, caplog) -> None:
    before = restored.styleSheet()

    def missing(*parts: str) -> None:
        raise resources.ResourceNotFoundError("missing resource: style/workbench.qss")

    monkeypatch.setattr(theme, "resource_path", missing)
    theme.apply_theme(restored, "dark")
    assert restored.styleSheet() == before
    assert "stylesheet could not be read" in caplog.text


def _luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    q = QColor(colour)
    return 0.2126 * channel(q.red()) + 0.7152 * channel(q.green()) + 0.0722 * channel(q.blue())


def _contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("name", ["light", "dark"])
def test_text_is_readable_on_every_surface(name: str) -> None:
    t = theme.THEMES[name]
    for background in (t.window, t.surface, t.surface_alt, t.raised):
        assert _contrast(t.text, background) >= 7, background  # WCAG AAA body text
        assert _contrast(t.muted, background) >= 4.5, background  # AA secondary text
        assert _contrast(t.error, background) >= 4.5, background
    assert _contrast(t.accent_text, t.accent) >= 4.5
    assert _contrast(t.selection_text, t.selection) >= 7
    assert _contrast(t.tooltip_text, t.tooltip) >= 7


def test_an_error_message_line_takes_the_theme_error_colour(qtbot, restored) -> None:
    theme.apply_theme(restored, "dark")
    label = QLabel("Could not load the model")
    label.setProperty("error", True)
    qtbot.addWidget(label)
    label.show()
    label.style().unpolish(label)
    label.style().polish(label)
    assert label.palette().color(QPalette.ColorRole.WindowText) == QColor(theme.DARK.error)


def test_a_bundle_finds_its_own_stylesheet(tmp_path: Path, monkeypatch) -> None:
    """In a PyInstaller bundle the stylesheet is read from sys._MEIPASS/resources (the
    spec ships the whole resources/ folder), not from a checkout."""
    import shutil
    import sys

    bundled = tmp_path / "_internal" / "resources"
    (bundled / "sample_library").mkdir(parents=True)
    shutil.copytree(resources.resource_path("style"), bundled / "style")
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "_internal"), raising=False)
    resources.resources_dir.cache_clear()
    try:
        sheet = theme.stylesheet(theme.LIGHT)
    finally:
        resources.resources_dir.cache_clear()
    assert f'url("{(bundled / "style").as_posix()}/arrow-down.svg")' in sheet
