"""Import and export of prompt libraries in the formats people use.

One module per format (bundle, promptfoo, prompty, openai_jsonl, langchain, markdown),
each with `export_bytes(ExportSet) -> {file name: bytes}` and `parse(bytes, source) ->
Package`, its mapping in its docstring and what is lost each way in `EXPORT_LOSSES` /
`IMPORT_LOSSES` (the app shows them). To add a format, write such a module and list it in
`FORMATS`.

Import is two steps: `read_package` parses and validates (raising `ImportFailed` with
every problem), `plan_import` matches it against the library; the plan is shown, then
applied in one library transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from workbench.core.exchange import bundle, langchain, markdown, openai_jsonl, promptfoo, prompty
from workbench.core.exchange.base import (
    MAX_TEXT_BYTES,
    ExportFailed,
    ExportSet,
    Format,
    ImportFailed,
    Package,
    Problem,
    collect,
)
from workbench.core.exchange.plan import ImportPlan, ImportResult, Resolution, plan_import
from workbench.core.flows.report import count
from workbench.core.fsutil import Cancelled, atomic_write_bytes
from workbench.core.library import Library
from workbench.core.models import SchemaError
from workbench.core.templates import TemplateError

_MODULES: tuple[Format, ...] = (bundle, promptfoo, prompty, openai_jsonl, langchain, markdown)
FORMATS: dict[str, Format] = {m.NAME: m for m in _MODULES}

MAX_FOLDER_FILES = 2000


def can_import(name: str) -> bool:
    return format_module(name).CAN_IMPORT


def format_module(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        known = ", ".join(FORMATS)
        raise ValueError(f"unknown format {name!r} (known: {known})") from None


def guess_format(path: Path) -> str:
    """The format a file name suggests (by its extension)."""
    suffix = path.suffix.lower()
    for name, module in FORMATS.items():
        if suffix in module.EXTENSIONS:
            return name
    raise ValueError(
        f"cannot tell the format of {path.name!r} from its extension; choose one with --format"
    )


@dataclass
class ExportReport:
    paths: list[Path]
    losses: tuple[str, ...]


class ExportWouldOverwrite(ExportFailed):
    """`export(..., overwrite=False)` found files it would replace (in `paths`)."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        names = ", ".join(p.name for p in paths[:5]) + (" …" if len(paths) > 5 else "")
        verb = "exists" if len(paths) == 1 else "exist"
        super().__init__(f"{count(len(paths), 'file')} {verb} already: {names}")


def export(
    library: Library,
    name: str,
    out: Path,
    prompt_ids: Sequence[str] | None = None,
    overwrite: bool = True,
    cancel: threading.Event | None = None,
) -> ExportReport:
    """Write the selection (None = the whole library) as `out`: a file, or a folder of
    files for one-prompt-per-file formats with several prompts. With `overwrite` False,
    existing files are reported (ExportWouldOverwrite) and nothing is written. A set
    `cancel` stops before the next file is written (`Cancelled`; each file is whole)."""
    module = format_module(name)
    items: ExportSet = collect(library, prompt_ids)
    if not items.prompts and not items.test_sets:
        raise ExportFailed("nothing to export: the selection holds no prompts")
    files: dict[str, bytes] = module.export_bytes(items)
    out = Path(out)
    if len(files) == 1 and not out.is_dir():
        targets = {out: next(iter(files.values()))}
    elif out.suffix and not out.is_dir():
        raise ExportFailed(
            f"{module.LABEL} holds one prompt per file and {len(files)} prompts are selected: "
            f"choose a folder, not {out.name}"
        )
    else:
        targets = {out / file_name: body for file_name, body in files.items()}
    existing = sorted(p for p in targets if p.exists())
    if existing and not overwrite:
        raise ExportWouldOverwrite(existing)
    for path, body in targets.items():
        if cancel is not None and cancel.is_set():
            raise Cancelled("the export was stopped")
        atomic_write_bytes(path, body)
    return ExportReport(sorted(targets), tuple(module.EXPORT_LOSSES))


def parse_bytes(name: str, data: bytes, source: str) -> Package:
    """One file's bytes through a format's importer. Only ImportFailed comes out."""
    module = format_module(name)
    if not can_import(name):
        raise ImportFailed([Problem(source, f"{module.LABEL} cannot be imported")])
    try:
        package: Package = module.parse(data, source)
    except ImportFailed:
        raise
    except SchemaError as exc:
        raise ImportFailed(
            [Problem(f"{source}: {loc}", msg) for loc, msg in exc.problems]
        ) from None
    except ValidationError as exc:
        raise ImportFailed(
            [
                Problem(f"{source}: {'.'.join(str(p) for p in e['loc'])}", e["msg"])
                for e in exc.errors()
            ]
        ) from None
    except TemplateError as exc:
        raise ImportFailed([Problem(source, str(exc))]) from None
    except Exception as exc:  # a backstop: no input may crash an import
        message = f"{UNEXPECTED} ({type(exc).__name__}: {exc})"
        raise ImportFailed([Problem(source, message)]) from None
    _check_writable(package, source)
    return package


UNEXPECTED = "cannot be read: unexpected content"
"""The start of a problem caught by the backstop; the fuzz tests look for it, since each
such case is a reader bug to fix with a precise message."""


def _check_writable(package: Package, source: str) -> None:
    """Every document can be written as the library writes it (text that is not valid
    Unicode, such as a lone surrogate from a JSON escape, cannot): found now, with its
    place, rather than when the import is applied."""
    from pydantic_core import PydanticSerializationError

    from workbench.core.library import document_bytes

    documents: list[tuple[str, Any]] = []
    for imported in package.prompts:
        documents += [(f"prompt {imported.prompt.name!r}", imported.prompt)]
        documents += [(f"prompt {h.name!r} v{h.version}", h) for h in imported.history]
    documents += [(f"test set {t.name!r}", t) for t in package.test_sets]
    documents += [(f"soft prompt {sp.name!r}", sp) for sp, _ in package.soft_prompts]
    documents += [(f"LoRA adapter {a.name!r}", a) for a, _ in package.lora_adapters]
    problems = []
    for where, document in documents:
        try:
            document_bytes(document)
        except (PydanticSerializationError, UnicodeError, ValueError) as exc:
            problems.append(Problem(f"{source}: {where}", f"holds text that is not valid: {exc}"))
    if problems:
        raise ImportFailed(problems)


def read_package(
    path: Path, name: str | None = None, cancel: threading.Event | None = None
) -> Package:
    """Parse a file, or every file of the format in a folder (all or nothing). A set
    `cancel` stops before the next file is read (`Cancelled`)."""
    path = Path(path)
    if path.is_dir():
        if name is None:
            raise ImportFailed([Problem(str(path), "choose the format of the folder's files")])
        extensions = format_module(name).EXTENSIONS
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in extensions)
        if not files:
            raise ImportFailed([Problem(str(path), f"no {'/'.join(extensions)} files in it")])
        if len(files) > MAX_FOLDER_FILES:
            raise ImportFailed([Problem(str(path), f"more than {MAX_FOLDER_FILES} files")])
    else:
        files = [path]
        name = name or guess_format(path)
    package = Package()
    problems: list[Problem] = []
    limit = bundle.MAX_BUNDLE_BYTES if name == bundle.NAME else MAX_TEXT_BYTES
    for file in files:
        if cancel is not None and cancel.is_set():
            raise Cancelled("the import was stopped; nothing was imported")
        try:
            if not file.is_file():  # a FIFO or a device would block or never end
                raise ImportFailed([Problem(str(file), "not a regular file")])
            size = file.stat().st_size
            if size > limit:
                raise ImportFailed([Problem(str(file), f"larger than {limit >> 20} MiB; refused")])
            data = file.read_bytes()
        except OSError as exc:
            problems.append(Problem(str(file), f"cannot read: {exc.strerror or exc}"))
            continue
        except ImportFailed as exc:
            problems += exc.problems
            continue
        try:
            package.extend(parse_bytes(name, data, str(file)))
        except ImportFailed as exc:
            problems += exc.problems
    if problems:
        raise ImportFailed(problems)
    return package


def plan_file(
    library: Library,
    path: Path,
    name: str | None = None,
    on_clash: Resolution = Resolution.COPY,
) -> ImportPlan:
    return plan_import(library, read_package(path, name), str(path), on_clash)


__all__ = [
    "FORMATS",
    "ExportFailed",
    "ExportReport",
    "ExportWouldOverwrite",
    "ImportFailed",
    "ImportPlan",
    "ImportResult",
    "Package",
    "Problem",
    "Resolution",
    "can_import",
    "export",
    "format_module",
    "guess_format",
    "parse_bytes",
    "plan_file",
    "plan_import",
    "read_package",
]
