"""Model backends behind one protocol: llama.cpp, transformers, OpenAI-compatible HTTP."""

from workbench.core.backends.base import (
    MODEL_JOB_LOCK,
    Backend,
    BackendError,
    BackendSettings,
    ContextOverflowError,
    Finished,
    ModelLoadError,
    OutOfMemoryError,
    StreamEvent,
    TokenEvent,
)

__all__ = [
    "MODEL_JOB_LOCK",
    "Backend",
    "BackendError",
    "BackendSettings",
    "ContextOverflowError",
    "Finished",
    "ModelLoadError",
    "OutOfMemoryError",
    "StreamEvent",
    "TokenEvent",
]
