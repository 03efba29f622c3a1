"""How numbers read, the same in the app and on the command line: metrics, durations,
memory, generation stats, evaluation progress and training steps."""

from __future__ import annotations

import sys
from typing import Any

METRIC_LABELS: dict[str, str] = {
    "label": "label accuracy",
    "exact": "exact match",
    "normalised": "normalised match",
    "contains": "contains",
    "regex": "regex match",
    "f1": "token F1",
    "latency_s": "latency",
    "context_tokens": "context tokens",
    "completion_tokens": "completion tokens",
    "errors": "errors",
}


def format_metric(key: str, value: float | None) -> str:
    """A metric value as summaries show it (`evaluation.format_table` agrees)."""
    if value is None:
        return "–"
    if key == "latency_s":
        return f"{value * 1000:.0f} ms"
    if key in ("context_tokens", "completion_tokens", "errors"):
        return f"{value:.0f}"
    return f"{value:.3f}"


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return "under 1 s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest:02d} s"


def format_memory(mb: float) -> str:
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb:.0f} MB"


def peak_ram_mb() -> float | None:
    """This process's peak resident memory (None where the platform cannot tell)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS


def format_stats(stats: Any, model: str | None = None) -> str:
    """A run's `RunStats` on one line: speed, tokens and how it ended."""
    parts = [model] if model else []
    if stats.time_to_first_token_s is not None:
        parts.append(f"first token {stats.time_to_first_token_s * 1000:.0f} ms")
    if stats.tokens_per_s is not None:
        parts.append(f"{stats.tokens_per_s:.1f} tokens/s")
    prompt = stats.prompt_tokens if stats.prompt_tokens is not None else "?"
    parts.append(f"{prompt} prompt + {stats.completion_tokens} generated")
    if stats.finish_reason == "cancelled":
        parts.append("stopped")
    elif model:  # the command line says how every run ended
        parts.append(f"finish: {stats.finish_reason}")
    return " · ".join(parts)


def format_progress(done: int, total: int, eta_s: float | None) -> str:
    """Evaluation progress: "12 of 60 · about 40 s left"."""
    eta = f" · about {format_duration(eta_s)} left" if eta_s else ""
    return f"{done} of {total}{eta}"


def format_step(event: Any, paused: bool = False) -> str:
    """A training `StepEvent` on one line: step, loss, speed, ETA and memory."""
    parts = [f"step {event.step}/{event.total_steps}", f"loss {event.loss:.4f}"]
    if event.steps_per_s > 0:
        speed = f"{event.steps_per_s:.2f} steps/s"
        if event.steps_per_s < 1:
            speed += f" ({1 / event.steps_per_s:.1f} s/step)"
        parts.append(speed)
    if event.step < event.total_steps:
        parts.append(f"ETA {format_duration(event.eta_s)}")
    if event.memory_mb is not None:
        parts.append(f"GPU memory {format_memory(event.memory_mb)}")
    else:
        peak = peak_ram_mb()
        ram = event.ram_mb
        if ram is not None:
            peak_text = f" (peak {format_memory(peak)})" if peak is not None else ""
            parts.append(f"RAM {format_memory(ram)}{peak_text}")
        elif peak is not None:
            parts.append(f"peak RAM {format_memory(peak)}")
    if paused:
        parts.append("paused")
    return " · ".join(parts)


def format_validation(event: Any) -> str:
    """A training `ValidationEvent` on one line."""
    accuracy = f" · accuracy {event.accuracy:.3f}" if event.accuracy is not None else ""
    best = " (best)" if event.best else ""
    return f"validation at step {event.step}: loss {event.loss:.4f}{accuracy}{best}"
