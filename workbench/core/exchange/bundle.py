"""The native bundle: a zip of library documents, lossless, with a manifest and a schema.

Layout (every path is listed in the manifest with its SHA-256):

    manifest.json                     format name and version, app version, contents
    bundle.schema.json                the JSON Schema of this format (`bundle_schema()`)
    prompts/<id>.json                 the current version of each prompt
    history/<id>/v000003.json         its earlier versions
    test_sets/<id>.json
    soft_prompts/<id>.json            soft prompt metadata
    soft_prompts/<id>.safetensors     its [virtual tokens, hidden size] tensor
    lora_adapters/<id>.json           LoRA adapter metadata
    lora_adapters/<id>/adapter_config.json        its PEFT adapter folder: the config
    lora_adapters/<id>/adapter_model.safetensors  and the lora_A / lora_B tensors

Documents are the library's own files, byte for byte, so a bundle exported, imported
into an empty library and exported again is the same file (entries are sorted and
carry a fixed timestamp).

Reading refuses hostile archives before anything is extracted: entry names must match
the layout above (no absolute paths, no `..`, no links — nothing can land outside the
library, as every name is rebuilt from a validated id); entry count, sizes and the
compression ratio are limited (a zip bomb stops at the limit, whatever the header
claims); tensors are read as safetensors (a header and raw numbers; never pickle). A
LoRA adapter's config must be a PEFT LoRA config this release runs, and its tensors
`base_model.model.<layer>.lora_A.weight` / `.lora_B.weight` pairs of finite floats
whose ranks agree (the checks `lora_io.read_adapter_folder` makes, without torch).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
import zlib
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, ValidationError

from workbench import __version__
from workbench.core.exchange.base import (
    Collector,
    ExportSet,
    ImportedPrompt,
    ImportFailed,
    Package,
    Problem,
    schema_problems,
)
from workbench.core.library import document_bytes
from workbench.core.lora_io import KEY_PREFIX, LoraAdapterError, check_config
from workbench.core.models import (
    SCHEMA_VERSION,
    LoraAdapter,
    Prompt,
    SchemaError,
    SoftPrompt,
    TestSet,
    _Model,
    load_document,
)
from workbench.core.peft_io import CONFIG_FILE, WEIGHTS_FILE

NAME = "bundle"
LABEL = "Prompt Workbench bundle (.zip)"
EXTENSIONS: tuple[str, ...] = (".zip", ".pwbundle")
ONE_PROMPT_PER_FILE = False
LOSSLESS = True
CAN_IMPORT = True
EXPORT_LOSSES: tuple[str, ...] = (
    "nothing: prompts, every version, test sets, soft prompts, LoRA adapters",
)
IMPORT_LOSSES: tuple[str, ...] = ()

FORMAT_ID: Literal["prompt-workbench-bundle"] = "prompt-workbench-bundle"
FORMAT_VERSION = 1

MAX_ENTRIES = 20_000
MAX_ENTRY_BYTES = 256 * 1024 * 1024
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
MAX_RATIO = 200  # uncompressed / compressed, for entries over 1 MiB
MAX_BUNDLE_BYTES = 2 * 1024 * 1024 * 1024

_ID = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
_LAYOUT = re.compile(
    rf"^(?:manifest\.json|bundle\.schema\.json|prompts/{_ID}\.json|history/{_ID}/v\d{{6}}\.json"
    rf"|test_sets/{_ID}\.json|soft_prompts/{_ID}\.(?:json|safetensors)"
    rf"|lora_adapters/{_ID}\.json"
    rf"|lora_adapters/{_ID}/(?:adapter_config\.json|adapter_model\.safetensors))$"
)
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


class ManifestEntry(_Model):
    path: str = Field(description="path inside the zip")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class Manifest(_Model):
    """`manifest.json` of a bundle."""

    format: Literal["prompt-workbench-bundle"] = FORMAT_ID
    format_version: int = Field(default=FORMAT_VERSION, ge=1)
    schema_version: int = Field(default=SCHEMA_VERSION, ge=1, description="of the documents")
    app_version: str = __version__
    whole_library: bool = False
    contents: list[ManifestEntry] = Field(default_factory=list)


def bundle_schema() -> dict[str, Any]:
    """The published JSON Schema of the bundle: the manifest and each document kind,
    with the path pattern that says which schema a zip entry follows."""
    defs: dict[str, Any] = {}

    def add(name: str, model: type[_Model]) -> dict[str, str]:
        schema = model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        defs[name] = schema
        return {"$ref": f"#/$defs/{name}"}

    entries = {
        "manifest.json": add("Manifest", Manifest),
        "prompts/<id>.json, history/<id>/v<NNNNNN>.json": add("Prompt", Prompt),
        "test_sets/<id>.json": add("TestSet", TestSet),
        "soft_prompts/<id>.json": add("SoftPrompt", SoftPrompt),
        "lora_adapters/<id>.json": add("LoraAdapter", LoraAdapter),
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Prompt Workbench bundle",
        "description": (
            f"A zip archive, format {FORMAT_ID!r} version {FORMAT_VERSION}. Each entry named "
            "on the left of `x-entries` follows the schema on the right; "
            "soft_prompts/<id>.safetensors holds one float tensor 'prompt_embeddings' of "
            "shape [num_virtual_tokens, hidden_size]; lora_adapters/<id>/ is the adapter's "
            "PEFT folder: adapter_config.json (a PEFT LoraConfig) and "
            "adapter_model.safetensors (base_model.model.<layer>.lora_A.weight [r, in] and "
            ".lora_B.weight [out, r] per adapted layer)."
        ),
        "x-entries": entries,
        "$ref": "#/$defs/Manifest",
        "$defs": dict(sorted(defs.items())),
    }


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def export_bytes(items: ExportSet) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for prompt in items.prompts:
        files[f"prompts/{prompt.id}.json"] = document_bytes(prompt)
        for old in items.history.get(prompt.id, []):
            files[f"history/{prompt.id}/v{old.version:06d}.json"] = document_bytes(old)
    for test_set in items.test_sets:
        files[f"test_sets/{test_set.id}.json"] = document_bytes(test_set)
    for soft, tensor in items.soft_prompts:
        meta = soft.model_copy(update={"tensor_file": f"{soft.id}.safetensors"})
        files[f"soft_prompts/{soft.id}.json"] = document_bytes(meta)
        files[f"soft_prompts/{soft.id}.safetensors"] = tensor
    for adapter, folder in items.lora_adapters:
        stored = adapter.model_copy(update={"folder": adapter.id})
        files[f"lora_adapters/{adapter.id}.json"] = document_bytes(stored)
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            files[f"lora_adapters/{adapter.id}/{name}"] = folder[name]
    files["bundle.schema.json"] = _json_bytes(bundle_schema())
    manifest = Manifest(
        whole_library=items.whole_library,
        contents=[
            ManifestEntry(path=p, sha256=hashlib.sha256(b).hexdigest(), size=len(b))
            for p, b in sorted(files.items())
        ],
    )
    files["manifest.json"] = (manifest.model_dump_json(indent=2) + "\n").encode()
    return {"bundle.zip": zip_bytes(files)}


def zip_bytes(files: Mapping[str, bytes]) -> bytes:
    """A deterministic zip: sorted entries, fixed timestamps and permissions."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(files):
            info = zipfile.ZipInfo(path, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            archive.writestr(info, files[path], compresslevel=6)
    return buffer.getvalue()


# -- reading -------------------------------------------------------------------


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes:
    """An entry's bytes, stopping at the declared size or the budget (a lying header or a
    bomb gets no further than the limit)."""
    limit = min(info.file_size, MAX_ENTRY_BYTES, budget)
    chunks: list[bytes] = []
    total = 0
    with archive.open(info) as stream:
        while True:
            chunk = stream.read(min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise ValueError("larger than its header claims, or than allowed")
            chunks.append(chunk)
    return b"".join(chunks)


def _entries(data: bytes, source: str) -> dict[str, bytes]:
    problems = Collector(source)
    if len(data) > MAX_BUNDLE_BYTES:
        problems.add("", "bundle larger than 2 GiB; refused")
        problems.check()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError, NotImplementedError) as exc:
        raise ImportFailed([Problem(source, f"not a zip archive: {exc}")]) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES:
            problems.add("", f"{len(infos)} entries (at most {MAX_ENTRIES}); refused")
            problems.check()
        total = 0
        seen: set[str] = set()
        for info in infos:
            name = info.filename
            mode = info.external_attr >> 16
            if not _LAYOUT.fullmatch(name):
                problems.add(name, "not a bundle path (unknown, absolute, `..` or a folder)")
            elif name.casefold() in seen:  # twice, or in two cases (one file on macOS)
                problems.add(name, "appears twice")
            elif info.create_system == 3 and mode & 0o170000 not in (0, 0o100000):
                problems.add(name, "not a plain file (a link or device)")
            elif info.flag_bits & 0x1:
                problems.add(name, "encrypted")
            elif info.file_size > MAX_ENTRY_BYTES:
                problems.add(name, f"{info.file_size} bytes (at most {MAX_ENTRY_BYTES})")
            elif info.file_size > 1 << 20 and info.file_size > MAX_RATIO * max(
                info.compress_size, 1
            ):
                problems.add(name, "compressed more than 200:1 (a zip bomb?)")
            seen.add(name.casefold())
            total += info.file_size
        if total > MAX_TOTAL_BYTES:
            problems.add("", f"{total} bytes uncompressed (at most {MAX_TOTAL_BYTES})")
        problems.check()
        files: dict[str, bytes] = {}
        budget = MAX_TOTAL_BYTES
        for info in infos:
            try:
                body = _read_entry(archive, info, budget)
            except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as exc:
                problems.add(info.filename, f"cannot be read: {exc}")
                continue
            except zlib.error as exc:  # a corrupt deflate stream
                problems.add(info.filename, f"cannot be read: {exc}")
                continue
            budget -= len(body)
            files[info.filename] = body
        problems.check()
    return files


def _check_manifest(files: dict[str, bytes], problems: Collector) -> Manifest | None:
    raw = files.get("manifest.json")
    if raw is None:
        problems.add("manifest.json", "missing: not a Prompt Workbench bundle")
        return None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSON and UTF-8 errors are ValueErrors
        problems.add("manifest.json", f"not valid JSON: {exc}")
        return None
    if isinstance(data, dict) and data.get("format") != FORMAT_ID:
        problems.add("manifest.json: format", f"is {data.get('format')!r}, not {FORMAT_ID!r}")
        return None
    version = data.get("format_version") if isinstance(data, dict) else None
    if isinstance(version, int) and version > FORMAT_VERSION:
        problems.add(
            "manifest.json: format_version",
            f"{version} is newer than this release reads ({FORMAT_VERSION})",
        )
        return None
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = ".".join(str(p) for p in error["loc"])
            problems.add(f"manifest.json: {loc}", error["msg"])
        return None
    listed = {e.path: e for e in manifest.contents}
    for path, body in files.items():
        if path == "manifest.json":
            continue
        entry = listed.get(path)
        if entry is None:
            problems.add(path, "not listed in the manifest")
        elif hashlib.sha256(body).hexdigest() != entry.sha256:
            problems.add(path, "does not match its SHA-256 in the manifest (damaged?)")
    for path in listed:
        if path not in files:
            problems.add(path, "listed in the manifest but missing")
    return manifest


def _document(files: dict[str, bytes], path: str, problems: Collector) -> Any:
    try:
        data = json.loads(files[path])
    except (ValueError, RecursionError) as exc:  # JSON and UTF-8 errors are ValueErrors
        problems.add(path, f"not valid JSON: {exc}")
        return None
    try:
        return load_document(data, path)
    except SchemaError as exc:
        problems.problems += schema_problems(exc, f"{problems.source}: {path}")
        return None


def _safetensors_header(body: bytes) -> tuple[dict[str, Any], int]:
    """A safetensors file's tensor entries (name → dtype, shape, data offsets) and where
    its data starts; ValueError when the header is not one."""
    header_len = int.from_bytes(body[:8], "little")
    if len(body) < 8 or header_len > len(body) - 8 or header_len > 100_000_000:
        raise ValueError("truncated header")
    header = json.loads(body[8 : 8 + header_len])
    if not isinstance(header, dict):
        raise ValueError("header is not an object")
    return {k: v for k, v in header.items() if k != "__metadata__"}, 8 + header_len


_WIDTH = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}


def _float_rows(body: bytes, start: int, spec: Any) -> Any:
    """A tensor's values as float32 (numpy), from its raw little-endian bytes."""
    import numpy as np

    raw = body[start + spec["data_offsets"][0] : start + spec["data_offsets"][1]]
    if spec["dtype"] == "BF16":  # the high half of a float32
        return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
    return np.frombuffer(raw, {"F64": "<f8", "F32": "<f4", "F16": "<f2"}[spec["dtype"]])


def _check_lora_files(
    files: dict[str, bytes], adapter: LoraAdapter, where: str, problems: Collector
) -> bool:
    """A LoRA adapter's PEFT files: a LoRA config this release runs, matching the
    metadata's rank, and safetensors holding lora_A / lora_B pairs of 2-D finite floats
    with agreeing ranks, laid out without gaps or overlaps (no pickle, no torch)."""
    import numpy as np

    config_path, weights_path = f"{where}/{CONFIG_FILE}", f"{where}/{WEIGHTS_FILE}"
    try:
        config = check_config(json.loads(files[config_path]), config_path)
    except LoraAdapterError as exc:  # its message starts with the path
        problems.add(config_path, str(exc).removeprefix(f"{config_path}: "))
        return False
    except (ValueError, RecursionError) as exc:  # JSON and UTF-8 errors are ValueErrors
        problems.add(config_path, f"not valid JSON: {exc}")
        return False
    if config["r"] != adapter.lora.rank and not config.get("rank_pattern"):
        problems.add(config_path, f"rank {config['r']} but the metadata says {adapter.lora.rank}")
        return False
    body = files[weights_path]
    try:
        tensors, start = _safetensors_header(body)
        pairs: dict[str, dict[str, list[int]]] = {}
        spans: list[tuple[int, int]] = []
        for key, spec in tensors.items():
            part = key.rsplit(".", 2)[-2:] if key.startswith(KEY_PREFIX) else []
            if part not in (["lora_A", "weight"], ["lora_B", "weight"]):
                raise ValueError(f"tensor {key!r} is not a LoRA weight")
            shape, dtype = spec["shape"], spec["dtype"]
            if dtype not in _WIDTH:
                raise ValueError(f"tensor {key!r} has dtype {dtype}, expected a float type")
            if len(shape) != 2 or not all(isinstance(d, int) and d > 0 for d in shape):
                raise ValueError(f"tensor {key!r} has shape {shape}, expected 2-D")
            first, end = spec["data_offsets"]
            if not (isinstance(first, int) and isinstance(end, int)) or (
                end - first != shape[0] * shape[1] * _WIDTH[dtype]
            ):
                raise ValueError(f"tensor {key!r}: data offsets do not match its shape")
            spans.append((first, end))
            if not np.isfinite(_float_rows(body, start, spec)).all():
                raise ValueError(f"tensor {key!r} holds NaN or infinite values")
            pairs.setdefault(key[len(KEY_PREFIX) : -len(".lora_A.weight")], {})[part[0]] = shape
        position = 0
        for first, end in sorted(spans):
            if first != position:
                raise ValueError("tensor data overlaps or leaves gaps")
            position = end
        if start + position != len(body):
            raise ValueError("data is truncated or has bytes after the tensors")
        if not pairs:
            raise ValueError("no LoRA tensors")
        for layer, found in pairs.items():
            if set(found) != {"lora_A", "lora_B"}:
                raise ValueError(f"layer {layer!r} lacks one of lora_A / lora_B")
            if found["lora_A"][0] != found["lora_B"][1]:
                raise ValueError(f"layer {layer!r}: lora_A and lora_B ranks differ")
            if not config.get("rank_pattern") and found["lora_A"][0] != config["r"]:
                raise ValueError(f"layer {layer!r} has rank {found['lora_A'][0]}, not r")
    except (ValueError, KeyError, TypeError, IndexError, RecursionError) as exc:
        problems.add(weights_path, f"not a valid LoRA adapter: {exc}")
        return False
    return True


def _check_tensor(body: bytes, soft: SoftPrompt, where: str, problems: Collector) -> None:
    """A safetensors file with one 2-D float tensor of the declared shape (no pickle)."""
    try:
        tensors, data_start = _safetensors_header(body)
        if len(tensors) != 1:
            raise ValueError(f"{len(tensors)} tensors (expected 1)")
        (spec,) = tensors.values()
        shape = spec["shape"]
        if spec["dtype"] not in ("F32", "F16", "BF16"):
            raise ValueError(f"dtype {spec['dtype']} is not a float type")
        if len(shape) != 2 or shape[0] != soft.num_virtual_tokens:
            raise ValueError(f"shape {shape} does not match {soft.num_virtual_tokens} tokens")
        if soft.hidden_size is not None and shape[1] != soft.hidden_size:
            raise ValueError(f"shape {shape} does not match hidden size {soft.hidden_size}")
        start, end = spec["data_offsets"]
        width = {"F32": 4, "F16": 2, "BF16": 2}[spec["dtype"]]
        if not 0 <= start <= end or end - start != shape[0] * shape[1] * width:
            raise ValueError("data offsets do not match the shape")
        if data_start + end > len(body):
            raise ValueError("data is truncated")
    except (ValueError, KeyError, TypeError, IndexError, RecursionError) as exc:
        problems.add(where, f"not a valid soft prompt tensor: {exc}")


def parse(data: bytes, source: str) -> Package:
    files = _entries(data, source)
    problems = Collector(source)
    _check_manifest(files, problems)
    problems.check()
    package = Package()
    prompts: dict[str, Prompt] = {}
    history: dict[str, list[Prompt]] = {}
    for path in sorted(files):
        folder, _, rest = path.partition("/")
        if folder == "prompts":
            doc = _document(files, path, problems)
            if doc is not None and not isinstance(doc, Prompt):
                problems.add(path, f"holds a {doc.kind}, not a prompt")
            elif doc is not None and doc.id != rest[:-5]:
                problems.add(path, f"file name does not match its id {doc.id!r}")
            elif doc is not None:
                prompts[doc.id] = doc
        elif folder == "history":
            owner = rest.split("/")[0]
            doc = _document(files, path, problems)
            if doc is not None and (not isinstance(doc, Prompt) or doc.id != owner):
                problems.add(path, "is not an earlier version of prompt " + repr(owner))
            elif doc is not None:
                if path != f"history/{owner}/v{doc.version:06d}.json":
                    problems.add(path, f"holds version {doc.version}")
                history.setdefault(owner, []).append(doc)
        elif folder == "test_sets":
            doc = _document(files, path, problems)
            if doc is not None and (not isinstance(doc, TestSet) or doc.id != rest[:-5]):
                problems.add(path, "is not the test set its name says")
            elif doc is not None:
                package.test_sets.append(doc)
        elif folder == "soft_prompts" and path.endswith(".json"):
            doc = _document(files, path, problems)
            if doc is not None and (not isinstance(doc, SoftPrompt) or doc.id != rest[:-5]):
                problems.add(path, "is not the soft prompt its name says")
            elif doc is not None:
                tensor_path = f"soft_prompts/{doc.id}.safetensors"
                if doc.tensor_file != f"{doc.id}.safetensors" or tensor_path not in files:
                    problems.add(path, f"its tensor {tensor_path} is missing")
                else:
                    _check_tensor(files[tensor_path], doc, tensor_path, problems)
                    package.soft_prompts.append((doc, files[tensor_path]))
        elif folder == "lora_adapters" and "/" not in rest:
            doc = _document(files, path, problems)
            if doc is not None and (not isinstance(doc, LoraAdapter) or doc.id != rest[:-5]):
                problems.add(path, "is not the LoRA adapter its name says")
            elif doc is not None:
                where = f"lora_adapters/{doc.id}"
                missing = [n for n in (CONFIG_FILE, WEIGHTS_FILE) if f"{where}/{n}" not in files]
                if doc.folder != doc.id or missing:
                    problems.add(path, f"its PEFT folder {where}/ lacks {', '.join(missing)}")
                elif _check_lora_files(files, doc, where, problems):
                    adapter_files = {n: files[f"{where}/{n}"] for n in (CONFIG_FILE, WEIGHTS_FILE)}
                    package.lora_adapters.append((doc, adapter_files))
        elif folder == "lora_adapters":
            owner = rest.split("/")[0]
            if f"lora_adapters/{owner}.json" not in files:
                problems.add(path, f"belongs to no LoRA adapter in the bundle ({owner}.json)")
    for owner, versions in history.items():
        current = prompts.get(owner)
        if current is None:
            problems.add(f"history/{owner}", "history of a prompt the bundle does not hold")
        elif any(v.version >= current.version for v in versions):
            problems.add(f"history/{owner}", "holds a version not older than the current one")
    problems.check()
    for prompt_id in sorted(prompts):
        versions = sorted(history.get(prompt_id, []), key=lambda p: p.version)
        package.prompts.append(ImportedPrompt(prompts[prompt_id], versions))
    return package
