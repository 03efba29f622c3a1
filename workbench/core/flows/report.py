"""What people read, the same in the app and on the command line: metrics, durations,
memory, counts with their plural, display names for stored keys and enum values,
generation stats, evaluation progress and training steps. Panels and the CLI format
through these functions, never with their own f-strings for the same things."""

from __future__ import annotations

import math
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


# Display names for stored keys and enum values (Literal choices, provenance fields).
DISPLAY_NAMES: dict[str, str] = {
    "zero_shot": "zero-shot",
    "few_shot": "few-shot",
    "cot": "chain of thought",
    "soft": "soft prompt",
    "best_step": "best step",
    "best_val_accuracy": "best validation accuracy",
    "best_val_loss": "best validation loss",
    "final_train_loss": "final training loss",
    "stopped": "stopped early",
    "train": "train",
    "validation": "validation",
    "test": "test",
    "replace": "replace the instruction",
    "add": "add to the prompt",
    "start": "before the whole input",
    "text": "from text",
    "vocab": "from vocabulary",
    "random": "random",
    "generate": "generate and compare",
    "likelihood": "label likelihood",
    "auto": "automatic",
    "fp32": "fp32",
    "bf16": "bf16",
    "fp16": "fp16",
    "cpu": "CPU",
    "cuda": "CUDA GPU",
    "mps": "Apple GPU",
    "finish_reason": "finish",
    "macro_f1": "macro-F1",
    "micro_f1": "micro-F1",
    "group_gap": "largest group gap",
    "cross_entropy": "cross-entropy",
    "thumbs_up": "thumbs-up share",
    "stars": "star rating",
    "stop": "stop string",
    "length": "token limit",
    "eos": "end of text",
    "cancelled": "stopped",
    "error": "error",
    **METRIC_LABELS,
}

_IRREGULAR = {"variant": "variants", "case": "cases", "query": "queries", "entry": "entries"}


def display_name(key: str) -> str:
    """A stored key or enum value as a person reads it: "zero_shot" → "zero-shot"."""
    if key in DISPLAY_NAMES:
        return DISPLAY_NAMES[key]
    return key.replace("_", " ")


def plural(word: str, n: int) -> str:
    """`word` in the form that agrees with `n` ("1 prompt", "2 prompts")."""
    if n == 1:
        return word
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word.endswith(("s", "x", "sh", "ch")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in tuple("aeiou"):
        return word[:-1] + "ies"
    return word + "s"


def count(n: int, word: str) -> str:
    """A count with its noun: count(1, "prompt") → "1 prompt", count(4, "test set") →
    "4 test sets" (the last word takes the plural)."""
    head, _, last = word.rpartition(" ")
    noun = plural(last, n)
    return f"{n:,} {head + ' ' if head else ''}{noun}"


def join_counts(parts: list[tuple[int, str]]) -> str:
    """Several counts read as one phrase, leaving out zeros: "4 prompts and 4 test sets"."""
    words = [count(n, w) for n, w in parts if n]
    if not words:
        return "nothing"
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " and " + words[-1]


def format_percent(value: float | None, interval: tuple[float, float] | None = None) -> str:
    """A proportion as a percentage, with its interval when one is known:
    "81.7 %" or "81.7 % (70.1–89.6)"."""
    if value is None:
        return "–"
    text = f"{value * 100:.1f} %"
    if interval is not None:
        text += f" ({interval[0] * 100:.1f}–{interval[1] * 100:.1f})"
    return text


def format_latency(seconds: float | None) -> str:
    """A wait as people read it: "240 ms" under a second, "11.6 s" above, minutes past 60 s."""
    if seconds is None:
        return "–"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return format_duration(seconds)


def format_rate(per_s: float | None, unit: str = "tokens") -> str:
    if per_s is None:
        return "–"
    return f"{per_s:.1f} {unit}/s" if per_s >= 1 else f"{1 / per_s:.1f} s per {unit.rstrip('s')}"


def format_metric(key: str, value: float | None) -> str:
    """A metric value as summaries show it (`evaluation.format_table` agrees)."""
    if value is None:
        return "–"
    if key == "latency_s":
        return format_latency(value)
    if key in ("context_tokens", "completion_tokens", "errors"):
        return f"{value:.0f}"
    return f"{value:.3f}"


PROPORTION_METRICS = ("label", "exact", "normalised", "contains", "regex", "f1")
"""Metrics that are a share of the cases (or a mean of 0–1 scores): shown as percentages."""


def format_score(key: str, value: float | None) -> str:
    """A metric as people read it in the app: a percentage for a share of the cases
    ("36.7 %"), else as `format_metric` gives it (latency, token counts, losses)."""
    return format_percent(value) if key in PROPORTION_METRICS else format_metric(key, value)


def describe_training_metrics(metrics: dict[str, float]) -> str:
    """A trained soft prompt's (or adapter's) stored metrics as a sentence:
    "5 steps, best at step 4 · best validation accuracy 75.0 % · best validation loss
    0.912 · final training loss 0.801 · stopped early · trained in 45 s · peak memory
    1.8 GB"."""
    known = {
        "steps",
        "best_step",
        "best_val_accuracy",
        "best_val_loss",
        "final_train_loss",
        "train_s",
        "peak_rss_mb",
        "peak_cuda_mb",
    }
    parts = []
    steps, best = metrics.get("steps"), metrics.get("best_step")
    if steps is not None:
        text = count(int(steps), "step")
        if best is not None and best != steps:
            text += f", best at step {int(best)}"
        parts.append(text)
    if metrics.get("best_val_accuracy") is not None:
        parts.append(f"best validation accuracy {format_percent(metrics['best_val_accuracy'])}")
    for key in ("best_val_loss", "final_train_loss"):
        if metrics.get(key) is not None and math.isfinite(metrics[key]):
            parts.append(f"{display_name(key)} {metrics[key]:.3f}")
    if metrics.get("stopped"):
        parts.append("stopped early")
    if metrics.get("train_s") is not None and math.isfinite(metrics["train_s"]):
        parts.append(f"trained in {format_duration(metrics['train_s'])}")
    for key, where in (("peak_rss_mb", "peak memory"), ("peak_cuda_mb", "peak GPU memory")):
        if metrics.get(key) is not None and math.isfinite(metrics[key]):
            parts.append(f"{where} {format_memory(metrics[key])}")
    for key, value in sorted(metrics.items()):
        if key not in known and key != "stopped" and math.isfinite(value):
            parts.append(f"{display_name(key)} {value:g}")
    return " · ".join(parts)


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
        parts.append(f"first token after {format_latency(stats.time_to_first_token_s)}")
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
