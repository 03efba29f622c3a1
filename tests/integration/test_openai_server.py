"""The OpenAI-compatible HTTP backend against llama-cpp-python's real server on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from workbench.core.backends.base import BackendError, Finished, ModelLoadError
from workbench.core.backends.registry import load_backend, spec_for
from workbench.core.models import GenerationParams, Message

pytestmark = pytest.mark.integration

QUESTION = [Message(role="user", content="What is the capital of France? Answer in one sentence.")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server_url(embedded_spec, tmp_path_factory):
    port = _free_port()
    # the server logs a lot while loading: a file, not a pipe nobody drains
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            embedded_spec.path,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--n_threads",
            "1",
            "--model_alias",
            "smollm2",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:  # readiness: the server answers /v1/models (bounded wait)
        if proc.poll() is not None:
            pytest.fail(f"llama_cpp.server exited: {log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("llama_cpp.server did not start within 120 s")
        time.sleep(0.25)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def test_streams_the_same_greedy_answer_as_local_llama_cpp(server_url, llama_backend) -> None:
    backend = load_backend(spec_for(server_url + "/v1"))
    assert backend.remote_model == "smollm2"
    params = GenerationParams(temperature=0.0, max_new_tokens=24)
    events = list(backend.stream(QUESTION, params))
    final = events[-1]
    assert isinstance(final, Finished)
    assert len(events) > 3  # really streamed, piece by piece
    assert "Paris" in final.text
    assert final.text == llama_backend.generate(QUESTION, params).text


def test_cancel_and_stop_over_http(server_url) -> None:
    backend = load_backend(spec_for(server_url))
    cancel = threading.Event()
    final = None
    prompt = [Message(role="user", content="Write a long story about a lighthouse keeper.")]
    events = backend.stream(prompt, GenerationParams(max_new_tokens=200), cancel)
    for seen, event in enumerate(events, start=1):
        if isinstance(event, Finished):
            final = event
            break
        if seen == 3:
            cancel.set()
    assert final is not None and final.stats.finish_reason == "cancelled"
    assert final.stats.completion_tokens <= 5
    counted = backend.count_tokens("Hello world")
    assert 1 <= counted <= 4


def test_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(ModelLoadError, match="cannot reach"):
        load_backend(spec_for(f"http://127.0.0.1:{_free_port()}/v1"))


def test_server_error_is_reported(server_url) -> None:
    backend = load_backend(spec_for(server_url))
    with pytest.raises(BackendError, match="answered"):
        list(
            backend.stream(
                QUESTION,
                GenerationParams(max_new_tokens=8, top_p=0.5, json_schema={"type": "nonsense"}),
            )
        )
