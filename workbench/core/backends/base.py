"""The Backend protocol, its events and errors, and helpers every backend shares.

A backend wraps one loaded model. `stream()` is a generator (the threading model of
docs/architecture.md): it yields a `TokenEvent` per generated token and ends with one
`Finished` event carrying the stats; it checks the cancel event once per token.
"""

from __future__ import annotations

import math
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.models import GenerationParams, Message, ModelSpec, RunStats

# One model job at a time in this process: on 2 cores two jobs oversubscribe the CPU,
# and llama.cpp's Llama crashes when two threads call it at once.
MODEL_JOB_LOCK = threading.RLock()


class BackendError(Exception):
    """A model could not be used; the message names the model and what to do."""


class ModelLoadError(BackendError):
    """The model file/folder/server is missing, unreadable, or in an unsupported format."""


class ContextOverflowError(BackendError):
    """The prompt does not fit the model's context window."""


class OutOfMemoryError(BackendError):
    """The device ran out of memory; the process stays usable."""


@dataclass(frozen=True)
class TokenEvent:
    """One generated token: its text piece, id, log-probability and top alternatives."""

    text: str
    token_id: int | None = None
    logprob: float | None = None
    top: tuple[tuple[str, float], ...] | None = None


@dataclass(frozen=True)
class Finished:
    """The last event of a stream."""

    text: str
    stats: RunStats
    token_ids: tuple[int, ...] = ()


StreamEvent = TokenEvent | Finished
Prompt = Sequence[Message] | str  # chat messages, or raw text fed to the model as-is


def physical_cores() -> int:
    """Physical CPU cores available to this process (the default thread count)."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    cores: set[tuple[str, str]] = set()
    try:
        physical, core = "0", None
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "physical id":
                physical = value
            elif key == "core id":
                core = value
                cores.add((physical, core))
    except OSError:
        pass
    return max(1, min(available, len(cores) or available))


@dataclass
class BackendSettings:
    """Settings shared by local backends (a user setting; CLI flags override)."""

    threads: int = field(default_factory=physical_cores)
    device: str = "auto"  # auto | cpu | cuda | mps (transformers)
    n_ctx: int = 2048  # llama.cpp context; a multiple of 256, at least 256
    allow_pickle: bool = False  # transformers: accept .bin (pickle) weights

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ValueError("threads must be at least 1")
        self.n_ctx = normalise_n_ctx(self.n_ctx)


SETTINGS_FILE = "settings.json"


def load_settings(folder: Path | None = None) -> BackendSettings:
    """The user's saved settings (config folder's settings.json); defaults where unset or
    unreadable (a damaged file never stops the app)."""
    import json

    from workbench.core.paths import config_dir

    path = (folder or config_dir()) / SETTINGS_FILE
    try:
        raw = json.loads(path.read_text("utf-8"))
        saved = raw.get("backend", {}) if isinstance(raw, dict) else {}
        kwargs = {k: saved[k] for k in ("threads", "device", "n_ctx") if k in saved}
        return BackendSettings(**kwargs)
    except (OSError, ValueError, TypeError, AttributeError):
        return BackendSettings()


def save_settings(settings: BackendSettings, folder: Path | None = None) -> None:
    import json

    from workbench.core.fsutil import atomic_write_text
    from workbench.core.paths import config_dir

    body = {
        "backend": {"threads": settings.threads, "device": settings.device, "n_ctx": settings.n_ctx}
    }
    atomic_write_text((folder or config_dir()) / SETTINGS_FILE, json.dumps(body, indent=2))


def normalise_n_ctx(n_ctx: int) -> int:
    """llama.cpp crashes on long prompts with n_ctx < 256 or not a multiple of 256."""
    return max(256, -(-int(n_ctx) // 256) * 256)


class StopMatcher:
    """Finds stop strings in streamed text, holding back text that may start one."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self._pending = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        """Add a piece; return the text safe to emit now ('' while a stop may be forming)."""
        if self.stopped:
            return ""
        text = self._pending + piece
        if not self.stops:
            self._pending = ""
            return text
        cut = min((i for i in (text.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._pending = ""
            return text[:cut]
        hold = 0
        for stop in self.stops:
            for k in range(min(len(stop) - 1, len(text)), 0, -1):
                if text.endswith(stop[:k]):
                    hold = max(hold, k)
                    break
        self._pending = text[len(text) - hold :] if hold else ""
        return text[: len(text) - hold]

    def flush(self) -> str:
        rest, self._pending = self._pending, ""
        return "" if self.stopped else rest


class Timer:
    """Time to first token and tokens/s for a stream."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.first: float | None = None
        self.count = 0

    def token(self) -> None:
        self.count += 1
        if self.first is None:
            self.first = time.perf_counter()

    def stats(self, prompt_tokens: int | None, finish_reason: str) -> RunStats:
        end = time.perf_counter()
        ttft = (self.first - self.start) if self.first is not None else None
        decode_time = end - self.first if self.first is not None else 0.0
        rate = (self.count - 1) / decode_time if self.count > 1 and decode_time > 0 else None
        return RunStats(
            prompt_tokens=prompt_tokens,
            completion_tokens=self.count,
            time_to_first_token_s=ttft,
            tokens_per_s=rate,
            total_s=end - self.start,
            finish_reason=finish_reason,
        )


def top_from_logprobs(
    logprobs: Sequence[float], k: int, decode: object
) -> tuple[tuple[str, float], ...]:
    """The k best (text, logprob) pairs from a full log-probability row, best first."""
    import numpy as np

    row = np.asarray(logprobs)
    k = min(k, row.shape[-1])
    best = np.argpartition(-row, k - 1)[:k]
    best = best[np.argsort(-row[best], kind="stable")]
    to_text = decode  # a callable int -> str
    return tuple((to_text(int(i)), float(row[i])) for i in best)  # type: ignore[operator]


def check_logprob(value: float) -> float:
    return value if math.isfinite(value) else -1e30


class Backend(ABC):
    """One loaded model behind a uniform interface."""

    name: str = ""

    def __init__(self, spec: ModelSpec, settings: BackendSettings | None = None) -> None:
        self.spec = spec
        self.settings = settings or BackendSettings()
        self.lock = threading.Lock()  # one job at a time on this model

    @property
    @abstractmethod
    def context_length(self) -> int:
        """Maximum tokens (prompt + generation) this model accepts."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens in `text` as this model tokenises it (special tokens parsed)."""

    @abstractmethod
    def apply_chat_template(self, messages: Sequence[Message]) -> str:
        """The text the model sees for these messages, ending with the assistant's turn."""

    @abstractmethod
    def _stream(
        self, text: str, params: GenerationParams, cancel: threading.Event
    ) -> Iterator[StreamEvent]:
        """Generate from fully rendered text; called with the locks held."""

    def _stream_soft(
        self,
        head: str,
        tail: str,
        params: GenerationParams,
        cancel: threading.Event,
        soft_prompt: Any,
    ) -> Iterator[StreamEvent]:
        """Generate from `head`, a soft prompt (numpy float32 [N, d], already checked
        against `hidden_size`) fed as N virtual tokens, then `tail` (see
        `core/placement.py`); called with the locks held."""
        raise BackendError(
            f"the {self.name} backend cannot use soft prompts; run model "
            f"{self.spec.name!r} on llama.cpp or transformers"
        )

    def tokenize(self, text: str) -> list[int]:
        """Token ids of `text` at the start of a sequence (BOS where the model wants one)."""
        raise BackendError(f"the {self.name} backend does not tokenize locally")

    def tokenize_tail(self, text: str) -> list[int]:
        """Token ids of `text` continuing a sequence (no BOS; special tokens parsed)."""
        raise BackendError(f"the {self.name} backend does not tokenize locally")

    def soft_prompt_ids(self, head: str, tail: str) -> tuple[list[int], list[int]]:
        """Token ids before and after the virtual tokens. With nothing before them the
        tail is tokenised as the start of the text (as soft prompts always were)."""
        from workbench.core.placement import token_pieces

        return token_pieces(head, tail, self.tokenize, self.tokenize_tail)

    def _placed(self, prompt: Prompt, soft_prompt: Any) -> tuple[str, str, Any]:
        """(head, tail, embeddings) for a soft prompt given as `VirtualTokens` or a bare
        array (placed at the start), its width checked against the model."""
        from workbench.core.placement import as_virtual_tokens, split_text
        from workbench.core.softprompt import check_array_fits

        tokens = as_virtual_tokens(soft_prompt)
        assert tokens is not None
        embeddings = check_array_fits(tokens.embeddings, self)
        head, tail = split_text(prompt, tokens.placement, self.apply_chat_template)
        return head, tail, embeddings

    def prompt_text(self, prompt: Prompt) -> str:
        return prompt if isinstance(prompt, str) else self.apply_chat_template(prompt)

    def stream(
        self,
        prompt: Prompt,
        params: GenerationParams | None = None,
        cancel: threading.Event | None = None,
        soft_prompt: Any = None,
    ) -> Iterator[StreamEvent]:
        """Stream tokens for chat messages (through the chat template) or raw text.

        `soft_prompt`: `placement.VirtualTokens` (embeddings and where they go), or a bare
        numpy float32 array [N, d_model] fed before the first token of the text; virtual
        tokens count towards the context."""
        params = params or GenerationParams()
        cancel = cancel or threading.Event()
        if soft_prompt is None:
            text = self.prompt_text(prompt)
            with MODEL_JOB_LOCK, self.lock:
                yield from self._stream(text, params, cancel)
            return
        head, tail, embeddings = self._placed(prompt, soft_prompt)
        with MODEL_JOB_LOCK, self.lock:
            yield from self._stream_soft(head, tail, params, cancel, embeddings)

    def generate(
        self, prompt: Prompt, params: GenerationParams | None = None, soft_prompt: Any = None
    ) -> Finished:
        """Run to completion; the final event."""
        final: Finished | None = None
        events = (
            self.stream(prompt, params)
            if soft_prompt is None
            else self.stream(prompt, params, soft_prompt=soft_prompt)
        )
        for event in events:
            if isinstance(event, Finished):
                final = event
        assert final is not None
        return final

    def check_fits(self, prompt_tokens: int, params: GenerationParams) -> None:
        limit = self.context_length
        if limit and prompt_tokens >= limit:
            raise ContextOverflowError(
                f"the prompt is {prompt_tokens} tokens but model {self.spec.name!r} "
                f"has a context of {limit} tokens; shorten the prompt or few-shot examples"
                + (
                    ' or raise the context size (`--n-ctx`, or "n_ctx" under "backend" in '
                    "the config folder's settings.json)"
                    if self.name == "llama.cpp"
                    else ""
                )
            )

    def score_continuations(
        self, prompt: Prompt, continuations: Sequence[str], soft_prompt: Any = None
    ) -> list[float]:
        """Log-likelihood of each continuation right after the prompt (summed over its
        tokens): how evaluation scores a fixed label set without sampling noise.
        `soft_prompt` as in `stream`."""
        if soft_prompt is None:
            text = self.prompt_text(prompt)
            with MODEL_JOB_LOCK, self.lock:
                return self._score(text, list(continuations))
        head, tail, embeddings = self._placed(prompt, soft_prompt)
        with MODEL_JOB_LOCK, self.lock:
            return self._score_soft(head, tail, list(continuations), embeddings)

    def score_cases(
        self,
        prompts: Sequence[Prompt],
        continuations: Sequence[str],
        soft_prompt: Any = None,
    ) -> Iterator[list[float]]:
        """`score_continuations` for many prompts with the same continuations, one case at
        a time (a generator: the caller may stop between cases). Backends that can reuse
        what the prompts share (the transformers backend) override it."""
        for prompt in prompts:
            yield self.score_continuations(prompt, continuations, soft_prompt)

    def context_tokens(self, prompt: Prompt, soft_prompt: Any = None) -> int:
        """Tokens of context one call takes: the rendered prompt, or with a soft prompt
        the text around its virtual tokens plus the virtual tokens themselves."""
        if soft_prompt is None:
            return self.count_tokens(self.prompt_text(prompt))
        head, tail, embeddings = self._placed(prompt, soft_prompt)
        n_virtual = int(embeddings.shape[0])
        try:
            before, after = self.soft_prompt_ids(head, tail)
        except BackendError:  # no local tokenizer: count the two pieces as texts
            return (self.count_tokens(head) if head else 0) + n_virtual + self.count_tokens(tail)
        return len(before) + n_virtual + len(after)

    def _score(self, text: str, continuations: list[str]) -> list[float]:
        raise BackendError(f"the {self.name} backend cannot score labels by likelihood")

    def _score_soft(
        self, head: str, tail: str, continuations: list[str], soft_prompt: Any
    ) -> list[float]:
        raise BackendError(
            f"the {self.name} backend cannot score labels after a soft prompt; run model "
            f"{self.spec.name!r} on llama.cpp or transformers"
        )

    @property
    def hidden_size(self) -> int | None:
        """Width of the model's input embeddings (a soft prompt's d); None if unknown."""
        return None

    @property
    def model_hash(self) -> str:
        """Identity of the loaded weights (see `softprompt.model_hash_for_spec`), which a
        soft prompt's `base_model_hash` must equal; computed once per backend."""
        cached: str | None = getattr(self, "_model_hash", None)
        if cached is None:
            from workbench.core.softprompt import model_hash_for_spec

            cached = model_hash_for_spec(self.spec)
            self._model_hash = cached
        return cached

    def close(self) -> None:  # noqa: B027 - optional hook
        """Free the model's memory."""

    @property
    def description(self) -> str:
        return f"{self.spec.name} ({self.name})"
