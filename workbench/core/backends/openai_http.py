"""OpenAI-compatible HTTP backend (chat completions with streaming), for models served
elsewhere: vLLM, a llama.cpp server, Ollama. Standard library only (urllib)."""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any

from workbench.core.backends.base import (
    Backend,
    BackendError,
    BackendSettings,
    Finished,
    ModelLoadError,
    StopMatcher,
    StreamEvent,
    Timer,
    TokenEvent,
)
from workbench.core.models import GenerationParams, Message, ModelSpec

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 300.0


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(self, spec: ModelSpec, settings: BackendSettings | None = None) -> None:
        super().__init__(spec, settings)
        self.base = (spec.url or "").rstrip("/")
        if not self.base.endswith("/v1"):
            self.base += "/v1"
        self._messages: list[Message] | None = None
        models = self._get("/models", timeout=CONNECT_TIMEOUT_S)
        available = [m.get("id") for m in models.get("data", []) if isinstance(m, dict)]
        self.remote_model = spec.remote_model or (available[0] if available else "default")
        self._context = 0
        for entry in models.get("data", []):
            if isinstance(entry, dict) and entry.get("id") == self.remote_model:
                for key in ("max_model_len", "context_length", "n_ctx"):
                    if isinstance(entry.get(key), int):
                        self._context = entry[key]

    # -- HTTP -----------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.spec.api_key_env:
            key = os.environ.get(self.spec.api_key_env)
            if not key:
                raise ModelLoadError(
                    f"model {self.spec.name!r}: environment variable {self.spec.api_key_env} "
                    "(the API key) is not set"
                )
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _open(
        self, path: str, body: dict[str, Any] | None, timeout: float, api: bool = True
    ) -> Any:
        """Open `path` under /v1 (api) or under the server's root."""
        data = json.dumps(body).encode() if body is not None else None
        url = (self.base if api else self.base.removesuffix("/v1")) + path
        request = urllib.request.Request(
            url, data=data, headers=self._headers(), method="POST" if data is not None else "GET"
        )
        try:
            return urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", errors="replace")[:500]
            raise BackendError(
                f"server {self.base} answered {exc.code} for {path}: {detail}"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ModelLoadError(
                f"model {self.spec.name!r}: cannot reach {self.base} ({reason})"
            ) from None

    def _get(self, path: str, timeout: float) -> dict[str, Any]:
        with self._open(path, None, timeout) as response:
            try:
                parsed = json.loads(response.read())
            except ValueError:
                raise BackendError(f"{self.base}{path} did not answer JSON") from None
        return parsed if isinstance(parsed, dict) else {}

    # -- protocol --------------------------------------------------------------

    @property
    def context_length(self) -> int:
        return self._context  # 0 = the server did not say

    def count_tokens(self, text: str) -> int:
        for path, body in (
            ("/extras/tokenize", {"input": text}),
            ("/tokenize", {"prompt": text, "model": self.remote_model}),
        ):
            try:
                with self._open(path, body, CONNECT_TIMEOUT_S, api=False) as response:
                    parsed = json.loads(response.read())
            except (BackendError, ValueError):
                continue
            tokens = parsed.get("tokens") if isinstance(parsed, dict) else None
            if isinstance(tokens, list):
                return len(tokens)
            if isinstance(parsed, dict) and isinstance(parsed.get("count"), int):
                return int(parsed["count"])
        raise BackendError(f"server {self.base} cannot count tokens")

    def apply_chat_template(self, messages: Sequence[Message]) -> str:
        # the server applies its own template; this is a readable stand-in for previews
        lines = [f"<{m.role}>\n{m.content}" for m in messages]
        return "\n".join([*lines, "<assistant>"])

    def stream(
        self,
        prompt: Sequence[Message] | str,
        params: GenerationParams | None = None,
        cancel: threading.Event | None = None,
        soft_prompt: Any = None,
    ) -> Iterator[StreamEvent]:
        if soft_prompt is not None:
            raise BackendError(
                f"model {self.spec.name!r} is served over HTTP; soft prompts need the "
                "llama.cpp or transformers backend"
            )
        # keep the structured messages: the server applies the chat template itself
        self._messages = None if isinstance(prompt, str) else list(prompt)
        text = prompt if isinstance(prompt, str) else ""
        params = params or GenerationParams()
        cancel = cancel or threading.Event()
        with self.lock:  # no process-wide lock: the work happens on the server
            yield from self._stream(text, params, cancel)

    def _body(self, text: str, params: GenerationParams) -> tuple[str, dict[str, Any]]:
        if params.grammar:
            raise ValueError("GBNF grammars run on the llama.cpp backend, not over HTTP")
        body: dict[str, Any] = {
            "model": self.remote_model,
            "stream": True,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_new_tokens,
        }
        if params.stop:
            body["stop"] = params.stop
        if params.seed is not None:
            body["seed"] = params.seed
        if params.top_k:
            body["top_k"] = params.top_k
        # llama.cpp's server defaults to 1.1; send ours so 1.0 means 1.0 there too
        body["repeat_penalty"] = params.repetition_penalty
        if params.repetition_penalty != 1.0:
            body["repetition_penalty"] = params.repetition_penalty  # vLLM's name
        if params.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": params.json_schema},
            }
        if self._messages is not None:
            body["messages"] = [m.model_dump() for m in self._messages]
            if params.logprobs or params.top_logprobs:
                body["logprobs"] = True
                body["top_logprobs"] = params.top_logprobs
            return "/chat/completions", body
        body["prompt"] = text
        if params.logprobs or params.top_logprobs:
            body["logprobs"] = max(1, params.top_logprobs)
        return "/completions", body

    def _stream(
        self, text: str, params: GenerationParams, cancel: threading.Event
    ) -> Iterator[StreamEvent]:
        timer = Timer()
        path, body = self._body(text, params)
        stops = StopMatcher(params.stop)  # servers apply stops too; this also trims
        pieces: list[str] = []
        finish = "length"
        usage_prompt: int | None = None
        response = self._open(path, body, READ_TIMEOUT_S)
        try:
            for raw_line in response:
                if cancel.is_set():
                    finish = "cancelled"
                    break
                line = raw_line.decode("utf-8", errors="replace").strip()
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                try:
                    chunk = json.loads(payload)
                except ValueError:
                    raise BackendError(f"server sent malformed data: {payload[:200]}") from None
                if isinstance(chunk.get("usage"), dict):
                    usage_prompt = chunk["usage"].get("prompt_tokens", usage_prompt)
                for choice in chunk.get("choices") or []:
                    piece, logprob, top = _choice_piece(choice)
                    if choice.get("finish_reason"):
                        finish = "stop" if choice["finish_reason"] == "stop" else "length"
                    if not piece and logprob is None:
                        continue
                    timer.token()
                    emitted = stops.feed(piece)
                    pieces.append(emitted)
                    yield TokenEvent(emitted, None, logprob, top)
                if stops.stopped:
                    finish = "stop"
                    break
        finally:
            response.close()
        tail = stops.flush()
        if tail:
            pieces.append(tail)
            yield TokenEvent(tail)
        yield Finished("".join(pieces), timer.stats(usage_prompt, finish))


def _choice_piece(choice: dict[str, Any]) -> tuple[str, float | None, Any]:
    delta = choice.get("delta")
    piece = (delta.get("content") if isinstance(delta, dict) else choice.get("text")) or ""
    logprob = top = None
    info = choice.get("logprobs")
    if isinstance(info, dict):
        content = info.get("content")
        if isinstance(content, list) and content:
            first = content[0]
            logprob = first.get("logprob")
            alts = first.get("top_logprobs") or []
            top = tuple((a.get("token", ""), float(a.get("logprob", 0.0))) for a in alts) or None
        elif isinstance(info.get("token_logprobs"), list) and info["token_logprobs"]:
            logprob = info["token_logprobs"][0]
            alts = (info.get("top_logprobs") or [{}])[0] or {}
            top = (
                tuple(sorted(((k, float(v)) for k, v in alts.items()), key=lambda kv: -kv[1]))
                or None
            )
    return str(piece), (float(logprob) if logprob is not None else None), top
