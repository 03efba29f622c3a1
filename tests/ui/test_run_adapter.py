"""The Run panel's Tuned picker with a LoRA adapter: listed (never picked for the user)
and marked as an adapter; a run applies it for that run only (the output changes, the
record names the adapter, the model is as it was afterwards) on transformers and, with a
GGUF model, on llama.cpp; an adapter for another model, or on a model served over HTTP,
is refused with a clear message and nothing is run or recorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ui.graduate.helpers import MODEL_TIMEOUT_MS, save_tiny_model
from workbench.core.backends.registry import EMBEDDED_ID, embedded_spec, spec_for
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


def stored_adapter(library: Library, prompt: Prompt, base_model: str) -> LoraAdapter:
    """Adapter metadata with no usable weights: what is refused before it is read."""
    adapter = LoraAdapter(
        name="word adapter",
        prompt_id=prompt.id,
        base_model=base_model,
        base_model_hash="0" * 64,
        folder="word-adapter",
    )
    library.save_lora_adapter(adapter, {"adapter_config.json": b"{}"})
    return adapter


def runs_with_and_without(qtbot, panel: RunPanel, adapter: LoraAdapter) -> None:
    """Without the adapter, with it, and without it again: it changes the output of
    that run only, and its run record names it."""
    plain = run_once(qtbot, panel)
    assert plain.adapter_id is None and plain.output
    panel.soft_prompt.setCurrentIndex(panel.soft_prompt.findData(adapter.id))
    assert panel.run_warnings.isHidden()  # this backend runs it: nothing to warn about
    tuned = run_once(qtbot, panel)
    assert tuned.adapter_id == adapter.id and tuned.soft_prompt_id is None
    assert tuned.output != plain.output  # the adapter was in the model for this run
    panel.soft_prompt.setCurrentIndex(0)  # "none"
    again = run_once(qtbot, panel)
    assert again.adapter_id is None and again.output == plain.output  # and out again
    stored = {r.id: r for r in Library(panel.library.root).runs_for(tuned.prompt_id or "")}
    assert stored[tuned.id].adapter_id == adapter.id  # the record kept the adapter


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
    assert (f"{adapter.name} (LoRA adapter)", adapter.id) in picker_entries(panel)
    assert panel.soft_prompt.currentData() is None  # listed, never picked for the user
    tip = panel.soft_prompt.itemData(panel.soft_prompt.findData(adapter.id), 3)  # ToolTip
    assert "runs on transformers" in tip

    weights = {n: p.detach().clone() for n, p in backend.model.named_parameters()}
    runs_with_and_without(qtbot, panel, adapter)
    # the model's own weights again (merged and unmerged: up to float rounding), no
    # LoRA layers left behind
    after = dict(backend.model.named_parameters())
    assert after.keys() == weights.keys()
    assert all(bool(after[n].allclose(w, atol=1e-5)) for n, w in weights.items())

    # an adapter made for another model is refused when the run checks its weights
    other = stored_adapter(library, prompt, EMBEDDED_ID)
    panel.soft_prompt_added(other)
    panel.soft_prompt.setCurrentIndex(panel.soft_prompt.findData(other.id))
    before = len(library.runs_for(prompt.id))
    panel.run()
    qtbot.waitUntil(lambda: not panel.running, timeout=MODEL_TIMEOUT_MS)
    message = panel.run_message.text()
    assert message.startswith("Run failed: LoRA adapter 'word adapter' was made for model")
    assert f"load '{EMBEDDED_ID}' to use it" in message
    assert len(library.runs_for(prompt.id)) == before  # nothing run, nothing recorded


@pytest.mark.integration
def test_a_lora_adapter_runs_on_llama_cpp_with_the_gguf_model(qtbot, built, tmp_path: Path) -> None:
    from workbench.core.backends.hf import gguf_as_hf_folder
    from workbench.core.backends.registry import embedded_model_path

    library, session, panel = built
    prompt = word_prompt(library)
    panel.selection.select(prompt)
    assert session.selected_key == (EMBEDDED_ID, "llama.cpp")
    folder = gguf_as_hf_folder(embedded_model_path())  # the converted-model cache
    adapter = import_lora_adapter(
        library, peft_adapter(folder, tmp_path / "peft"), embedded_spec(), prompt.id
    )
    panel.soft_prompt_added(adapter)
    tip = panel.soft_prompt.itemData(panel.soft_prompt.findData(adapter.id), 3)
    assert "runs on llama.cpp or transformers" in tip
    session.load_selected()
    qtbot.waitUntil(lambda: session.backend is not None, timeout=MODEL_TIMEOUT_MS)
    assert session.backend is not None and session.backend.name == "llama.cpp"
    runs_with_and_without(qtbot, panel, adapter)


def test_a_lora_adapter_is_refused_on_a_server_model(qtbot, built) -> None:
    library, session, panel = built
    prompt = word_prompt(library)
    panel.selection.select(prompt)
    adapter = stored_adapter(library, prompt, EMBEDDED_ID)
    panel.soft_prompt_added(adapter)
    panel.soft_prompt.setCurrentIndex(panel.soft_prompt.findData(adapter.id))
    assert panel.run_warnings.isHidden()  # the embedded model on llama.cpp runs it
    server = session.catalog.add(spec_for("http://127.0.0.1:9/v1", name="a server"))
    session.select(server.id, "openai", load=False)
    # said beside Run as soon as the server is picked, and Run refuses it before
    # anything runs
    assert panel.run_warnings.isVisible()
    assert "“word adapter” needs a local model" in panel.run_warnings.text()
    panel.run()
    assert not panel.running
    message = panel.run_message.text()
    assert panel.run_message.isVisible() and "served over HTTP" in message
    assert EMBEDDED_ID in message  # which model to pick instead
    assert panel.history_model.rowCount() == 0 and library.runs_for(prompt.id) == []
    session.select(EMBEDDED_ID, "transformers", load=False)
    assert panel.run_warnings.isHidden()
