"""How numbers read in the app and on the command line (workbench.core.flows.report)."""

from __future__ import annotations

import pytest

from workbench.core.evaluation import COST_METRICS, TEXT_METRICS
from workbench.core.flows import report
from workbench.core.flows.report import (
    METRIC_LABELS,
    format_duration,
    format_memory,
    format_metric,
    format_progress,
    format_stats,
    format_step,
    format_validation,
)
from workbench.core.models import RunStats
from workbench.core.tuning import StepEvent, ValidationEvent


def test_every_metric_has_a_label() -> None:
    for key in ["label", *TEXT_METRICS, *COST_METRICS]:
        assert METRIC_LABELS.get(key), key


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        ("exact", None, "–"),
        ("exact", 0.5, "0.500"),
        ("f1", 2 / 3, "0.667"),
        ("latency_s", 0.1234, "123 ms"),
        ("latency_s", 2.0, "2.0 s"),
        ("latency_s", 11.582, "11.6 s"),
        ("context_tokens", 411.6, "412"),
        ("completion_tokens", 12.0, "12"),
        ("errors", 3.0, "3"),
    ],
)
def test_format_metric(key: str, value: float | None, text: str) -> None:
    assert format_metric(key, value) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "under 1 s"),
        (0.99, "under 1 s"),
        (1.0, "1 s"),
        (28.0, "28 s"),
        (59.4, "59 s"),
        (59.6, "1 min 00 s"),
        (61.0, "1 min 01 s"),
        (3725.0, "62 min 05 s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_memory() -> None:
    assert format_memory(512.4) == "512 MB"
    assert format_memory(1023.0) == "1023 MB"
    assert format_memory(1024.0) == "1.0 GB"
    assert format_memory(2048.0 + 512) == "2.5 GB"


def test_format_stats_in_the_app() -> None:
    stats = RunStats(
        prompt_tokens=42,
        completion_tokens=7,
        time_to_first_token_s=0.125,
        tokens_per_s=31.25,
        finish_reason="stop",
    )
    # the Run panel: no model name, and only a stopped run says how it ended
    assert format_stats(stats) == (
        "first token after 125 ms · 31.2 tokens/s · 42 prompt + 7 generated"
    )
    stopped = stats.model_copy(update={"finish_reason": "cancelled"})
    assert format_stats(stopped).endswith(" · 42 prompt + 7 generated · stopped")
    bare = RunStats(completion_tokens=0, finish_reason="length")
    assert format_stats(bare) == "? prompt + 0 generated"


def test_format_stats_on_the_command_line() -> None:
    stats = RunStats(prompt_tokens=42, completion_tokens=7, tokens_per_s=10.0, finish_reason="stop")
    line = format_stats(stats, model="smollm2")
    assert line == "smollm2 · 10.0 tokens/s · 42 prompt + 7 generated · finish: stop"
    stopped = stats.model_copy(update={"finish_reason": "cancelled"})
    assert format_stats(stopped, model="smollm2").endswith(" · stopped")


def test_format_progress() -> None:
    assert format_progress(0, 60, None) == "0 of 60"
    assert format_progress(12, 60, 40.0) == "12 of 60 · about 40 s left"
    assert format_progress(30, 60, 90.0) == "30 of 60 · about 1 min 30 s left"
    assert format_progress(60, 60, 0.0) == "60 of 60"  # done: no time left to show


def test_format_step_as_the_graduate_panel_shows_it() -> None:
    line = format_step(StepEvent(3, 10, 0.5, 0.25, 28.0, 2048.0), paused=True)
    assert line == "step 3/10 · loss 0.5000 · 0.25 steps/s (4.0 s/step) · ETA 28 s · " + (
        "GPU memory 2.0 GB · paused"
    )
    fast = format_step(StepEvent(4, 10, 1.23456, 2.5, 2.4, 300.0))
    assert fast == "step 4/10 · loss 1.2346 · 2.50 steps/s · ETA 2 s · GPU memory 300 MB"
    # the last step has no ETA; a step before any speed is measured shows none
    done = format_step(StepEvent(10, 10, 0.5, 0.0, 0.0, 100.0))
    assert done == "step 10/10 · loss 0.5000 · GPU memory 100 MB"


def test_format_step_without_a_gpu_shows_peak_ram(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "peak_ram_mb", lambda: 3072.0)
    line = format_step(StepEvent(1, 2, 0.5, 1.0, 1.0, None))
    assert line.endswith(" · ETA 1 s · peak RAM 3.0 GB")
    monkeypatch.setattr(report, "peak_ram_mb", lambda: None)  # a platform that cannot tell
    assert format_step(StepEvent(1, 2, 0.5, 1.0, 1.0, None)).endswith("ETA 1 s")


def test_format_step_on_the_cpu_shows_resident_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "peak_ram_mb", lambda: 3072.0)
    line = format_step(StepEvent(1, 2, 0.5, 1.0, 1.0, None, 1536.0))
    assert line.endswith(" · ETA 1 s · RAM 1.5 GB (peak 3.0 GB)")


def test_peak_ram_is_a_positive_number_or_unknown() -> None:
    peak = report.peak_ram_mb()
    assert peak is None or peak > 0


def test_format_validation() -> None:
    assert format_validation(ValidationEvent(20, 0.25, 0.75, True)) == (
        "validation at step 20: loss 0.2500 · accuracy 0.750 (best)"
    )
    assert format_validation(ValidationEvent(40, 0.3, None, False)) == (
        "validation at step 40: loss 0.3000"
    )


def test_counts_read_with_their_plural() -> None:
    assert report.count(1, "prompt") == "1 prompt"
    assert report.count(4, "test set") == "4 test sets"
    assert report.count(3, "variant") == "3 variants"
    assert report.count(2, "entry") == "2 entries"
    assert report.count(1200, "case") == "1,200 cases"
    assert report.join_counts([(4, "prompt"), (0, "run"), (4, "test set")]) == (
        "4 prompts and 4 test sets"
    )
    assert report.join_counts([]) == "nothing"


def test_display_names_for_stored_keys() -> None:
    assert report.display_name("zero_shot") == "zero-shot"
    assert report.display_name("best_val_accuracy") == "best validation accuracy"
    assert report.display_name("label") == "label accuracy"
    assert report.display_name("some_new_key") == "some new key"


def test_percent_and_latency() -> None:
    assert report.format_percent(0.8167) == "81.7 %"
    assert report.format_percent(0.8167, (0.701, 0.896)) == "81.7 % (70.1–89.6)"
    assert report.format_percent(None) == "–"
    assert report.format_latency(0.24) == "240 ms"
    assert report.format_latency(75) == "1 min 15 s"
    assert report.format_rate(41.2) == "41.2 tokens/s"


def test_training_metrics_read_as_a_sentence() -> None:
    from workbench.core.flows.report import describe_training_metrics

    text = describe_training_metrics(
        {
            "steps": 5.0,
            "best_step": 4.0,
            "best_val_accuracy": 0.75,
            "best_val_loss": 0.9123,
            "stopped": 1.0,
        }
    )
    assert text == (
        "5 steps, best at step 4 · best validation accuracy 75.0 % · "
        "best validation loss 0.912 · stopped early"
    )
    assert describe_training_metrics({"steps": 1.0, "best_step": 1.0, "stopped": 0.0}) == "1 step"
    # what the run cost, in people's units (not "train s 44.859 · peak rss mb 1817.67")
    costs = {"steps": 24.0, "train_s": 44.859, "peak_rss_mb": 1817.67, "peak_cuda_mb": 512.0}
    assert describe_training_metrics(costs) == (
        "24 steps · trained in 45 s · peak memory 1.8 GB · peak GPU memory 512 MB"
    )


def test_scores_of_a_share_of_the_cases_read_as_percentages() -> None:
    assert report.format_score("label", 0.3667) == "36.7 %"
    assert report.format_score("f1", 0.5) == "50.0 %"
    assert report.format_score("latency_s", 0.075) == "75 ms"
    assert report.format_score("context_tokens", 58.0) == "58"
    assert report.format_score("label", None) == "–"
