"""UI test fixtures: window settings go to a temporary folder, never the user's."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QSettings


@pytest.fixture(autouse=True)
def _isolated_qsettings(qapp, tmp_path: Path) -> None:
    QCoreApplication.setOrganizationName("prompt-workbench-tests")
    QCoreApplication.setApplicationName("prompt-workbench-tests")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path))
