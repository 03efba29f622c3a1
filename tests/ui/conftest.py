"""UI test fixtures: window settings go to a temporary folder, never the user's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QSettings
from PySide6.QtWidgets import QApplication

from workbench.ui.theme import apply_theme


@pytest.fixture(autouse=True)
def _isolated_qsettings(qapp, tmp_path: Path) -> None:
    QCoreApplication.setOrganizationName("prompt-workbench-tests")
    QCoreApplication.setApplicationName("prompt-workbench-tests")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path))


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread():
    """Windows of a finished test are freed here, on the GUI thread, not later in some
    worker thread of another test (see workbench/ui/jobs.py)."""
    yield
    import gc

    gc.collect()


@pytest.fixture
def themed(qapp: QApplication) -> Iterator[QApplication]:
    """The app's look (Fusion, palette, stylesheet) for one test, then the plain one:
    sizes measured without it are not the ones a user gets."""
    style, palette, sheet = qapp.style().name(), qapp.palette(), qapp.styleSheet()
    apply_theme(qapp, "light")
    yield qapp
    qapp.setStyleSheet(sheet)
    qapp.setPalette(palette)
    qapp.setStyle(style)
