"""The Run panel's Tuned picker with a LoRA adapter: listed (never picked for the user)
and marked as transformers-only; a run on transformers merges it for the run only (the
output changes, the record names the adapter, the model gets its own weights back); on
llama.cpp the run is refused with a clear message and nothing is run or recorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ui.graduate.helpers import MODEL_TIMEOUT_MS, save_tiny_model
from workbench.core.backends.registry import EMBEDDED_ID
from workbench.core.library import Library
from workbench.core.lora_io import import_lora_adapter
from workbench.core.models import GenerationParams, LoraAdapter, Prompt, RunRecord
from workbench.ui.jobs import JobRunner
from workbench.ui.run import RunPanel
from workbench.ui.session import ModelSession, PromptSelection


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture
def built(qtbot, library_dir: Path) -> Iterator[tuple[Library, ModelSession, RunPanel]]:
    library = Library(library_dir)
    jobs = JobRunner()
    session = ModelSession(jobs)
    try:
        panel = RunPanel(library, jobs, session, PromptSelection(), lambda _params: None)
        qtbot.addWidget(panel)
        panel.show()
        yield library, session, panel
    finally:
        session.close()
        jobs.shutdown()
        library.close()


def word_prompt(library: Library) -> Prompt:
    return library.new_prompt(
        "Word",
        user_template="Say {{ word }}",
        sample_values={"word": "hello"},
        params=GenerationParams(temperature=0.0, max_new_tokens=6, seed=0),
    )


def peft_adapter(model_dir: Path, out: Path) -> Path:
    """A LoRA adapter as PEFT makes it, with non-zero B (it changes the model)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(2)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    config = LoraConfig(
        r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    get_peft_model(model, config).save_pretrained(str(out))
    return out


def picker_entries(panel: RunPanel) -> list[tuple[str, Any]]:
    picker = panel.soft_prompt
    return [(picker.itemText(i), picker.itemData(i)) for i in range(picker.count())]


def run_once(qtbot, panel: RunPanel) -> RunRecord:
    with qtbot.waitSignal(panel.run_saved, timeout=MODEL_TIMEOUT_MS) as saved:
        panel.run()
    qtbot.waitUntil(lambda: not panel.running, timeout=MODEL_TIMEOUT_MS)
    record: RunRecord = saved.args[0]
    return record


@pytest.mark.integration
def test_a_lora_adapter_runs_on_transformers_for_that_run_only(
    qtbot, built, tiny_model_dir: Path, tmp_path: Path
) -> None:
    library, session, panel = built
    prompt = word_prompt(library)
    panel.selection.select(prompt)
    spec = session.add_model(str(tiny_model_dir))  # loads it on transformers
    qtbot.waitUntil(lambda: session.backend is not None, timeout=MODEL_TIMEOUT_MS)
    backend: Any = session.backend
    adapter = import_lora_adapter(
        library, peft_adapter(tiny_model_dir, tmp_path / "peft"), spec, prompt.id
    )
    panel.soft_prompt_added(adapter)
    entries = picker_entries(panel)
    assert (f"{adapter.name} (LoRA, transformers only)", adapter.id) in entries
    assert panel.soft_prompt.currentData() is None  # listed, never picked for the user

    weights = {n: p.detach().clone() for n, p in backend.model.named_parameters()}
    plain = run_once(qtbot, panel)
    assert plain.adapter_id is None and plain.output
    panel.soft_prompt.setCurrentIndex(panel.soft_prompt.findData(adapter.id))
    assert panel.run_warnings.isHidden()  # transformers: nothing to warn about
    tuned = run_once(qtbot, panel)
    assert tuned.adapter_id == adapter.id and tuned.soft_prompt_id is None
    assert tuned.output != plain.output  # the adapter was in the model for this run
    # and out of it again: the model's own weights (merged and unmerged: up to float
    # rounding), no LoRA layers left behind
    after = dict(backend.model.named_parameters())
    assert after.keys() == weights.keys()
    assert all(bool(after[n].allclose(w, atol=1e-5)) for n, w in weights.items())
    panel.soft_prompt.setCurrentIndex(0)  # "none"
    again = run_once(qtbot, panel)
    assert again.adapter_id is None and again.output == plain.output
    stored = {r.id: r for r in Library(library.root).runs_for(prompt.id)}
    assert stored[tuned.id].adapter_id == adapter.id  # the record kept the adapter


def test_a_lora_adapter_is_refused_on_llama_cpp(qtbot, built) -> None:
    library, session, panel = built
    prompt = word_prompt(library)
    panel.selection.select(prompt)
    assert session.selected_key == (EMBEDDED_ID, "llama.cpp")
    adapter = LoraAdapter(
        name="word adapter",
        prompt_id=prompt.id,
        base_model=EMBEDDED_ID,
        base_model_hash="0" * 64,
        folder="word-adapter",
    )
    library.save_lora_adapter(adapter, {"adapter_config.json": b"{}"})
    panel.soft_prompt_added(adapter)
    panel.soft_prompt.setCurrentIndex(panel.soft_prompt.findData(adapter.id))
    # said beside Run as soon as it is picked, and Run refuses it before anything runs
    assert panel.run_warnings.isVisible()
    assert "runs on the transformers backend" in panel.run_warnings.text()
    panel.run()
    assert not panel.running
    message = panel.run_message.text()
    assert panel.run_message.isVisible() and "“word adapter” runs on the transformers" in message
    assert "— transformers" in message  # which choice in the model list to make
    assert panel.history_model.rowCount() == 0 and library.runs_for(prompt.id) == []
    # picking its transformers backend takes the warning away
    session.select(EMBEDDED_ID, "transformers", load=False)
    assert panel.run_warnings.isHidden()
