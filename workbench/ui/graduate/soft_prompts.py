"""What was trained for a prompt — its soft prompts and LoRA adapters, marked by kind —
the list and what it shows of the selected one (settings, metrics, trainable
parameters, a soft prompt's nearest tokens), and exporting or importing one as a PEFT
adapter folder (jobs: a GGUF model may need converting, peft is imported, a model file
is hashed)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHeaderView,
    QListView,
    QPushButton,
    QSplitter,
    QTableView,
    QWidget,
)

from workbench.core import graduation
from workbench.core.flows.report import (
    count,
    describe_training_metrics,
    display_name,
    format_percent,
)
from workbench.core.library import Library
from workbench.core.models import LoraAdapter, ModelSpec, Prompt, SoftPrompt
from workbench.core.names import slug
from workbench.core.placement import PLACEMENT_LABELS
from workbench.ui.graduate.nearest import NearestTokens, NearestTokensModel, Neighbours
from workbench.ui.graduate.settings import selected_spec
from workbench.ui.jobs import Job, JobRunner
from workbench.ui.models import NewestFirstModel
from workbench.ui.session import ModelSession
from workbench.ui.widgets import MessageLine, named, titled_column, wrapping_list

log = logging.getLogger(__name__)


Trained = SoftPrompt | LoraAdapter
"""What the list holds: a soft prompt or a LoRA adapter of the prompt."""


def kind_label(item: Trained) -> str:
    return "LoRA adapter" if isinstance(item, LoraAdapter) else "soft prompt"


class SoftPromptListModel(NewestFirstModel):
    """A prompt's soft prompts and LoRA adapters, newest first, each marked by kind."""

    def _text(self, item: Trained) -> str:
        when = item.created.astimezone().strftime("%d %b %H:%M")
        accuracy = item.metrics.get("best_val_accuracy")
        score = f" · validation {format_percent(accuracy)}" if accuracy is not None else ""
        return f"[{kind_label(item)}] {item.name} · {when}{score}"

    def _tooltip(self, item: Trained) -> str:
        if isinstance(item, LoraAdapter):
            shape = f"LoRA rank {item.lora.rank} on {item.base_model} (runs on transformers)"
        else:
            shape = f"{item.num_virtual_tokens} virtual tokens on {item.base_model}"
        version = f"prompt version {item.prompt_version}" if item.prompt_version else "imported"
        return f"{item.name}\n{shape}\n{version}"


def describe_soft_prompt(soft: SoftPrompt) -> str:
    """Its settings and final metrics, two lines."""
    metrics = describe_training_metrics(soft.metrics)
    config = soft.train_config
    return (
        f"{soft.num_virtual_tokens} virtual tokens, {PLACEMENT_LABELS[soft.placement]} · "
        f"lr {config.learning_rate:g} · batch {config.batch_size} · "
        f"init {display_name(soft.init)}\n{metrics or 'no metrics'}"
    )


def describe_lora_adapter(adapter: LoraAdapter) -> str:
    """Its shape, training settings, trainable parameters and final metrics, two lines."""
    lora = adapter.lora
    layers = ", ".join(lora.target_modules) or "layers found from the model"
    parts = [f"LoRA rank {lora.rank}, alpha {lora.alpha:g}, dropout {lora.dropout:g} on {layers}"]
    if adapter.train_config is not None:
        config = adapter.train_config
        parts.append(f"lr {config.learning_rate:g} · batch {config.batch_size}")
    if adapter.trainable_parameters is not None:
        parts.append(f"{count(adapter.trainable_parameters, 'trainable parameter')}")
    metrics = describe_training_metrics(adapter.metrics)
    return " · ".join(parts) + f"\n{metrics or 'no metrics (imported)'}"


def _peft_type(folder: Path) -> str | None:
    """The `peft_type` a PEFT adapter folder declares (None: unreadable; the import
    then says what is wrong)."""
    import json

    try:
        config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    kind = config.get("peft_type") if isinstance(config, dict) else None
    return str(kind) if kind is not None else None


def describe_trained(item: Trained) -> str:
    if isinstance(item, LoraAdapter):
        return describe_lora_adapter(item)
    return describe_soft_prompt(item)


class SoftPrompts(QSplitter):
    """The nearest-tokens table (left) and the list of what was trained (right)."""

    shown = Signal(object)
    """A soft prompt or LoRA adapter was picked in the list (the `SoftPrompt`, the
    `LoraAdapter`)."""
    message = Signal(str)
    """A line for the panel's message label (export and import outcomes)."""
    exported = Signal(object)
    """The folder a PEFT adapter was written to (a `Path`)."""
    imported = Signal(object)
    """The soft prompt made from an imported PEFT adapter (a `SoftPrompt`)."""

    def __init__(
        self,
        library: Library,
        jobs: JobRunner,
        session: ModelSession,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.library = library
        self.jobs = jobs
        self.session = session
        self._prompt: Prompt | None = None
        self._shown: Trained | None = None
        self.nearest = NearestTokens(jobs)

        self.nearest_model = NearestTokensModel(self)
        self.nearest_view = named(QTableView(), "gradNearest")
        self.nearest_view.setModel(self.nearest_model)
        self.nearest_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        # each neighbour as wide as its token and cosine: squeezed to the width at 1366 px
        # they read "'…"; the farther ones scroll into view instead
        header = self.nearest_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.nearest_view.setWordWrap(False)
        self.nearest_status = named(MessageLine(), "gradNearestStatus")  # wraps: errors are long
        self.soft_model = SoftPromptListModel(self)
        self.soft_list = named(wrapping_list(QListView()), "gradSoftPrompts")
        self.soft_list.setModel(self.soft_model)
        self.metrics_label = named(MessageLine(), "gradMetrics")
        self.export_button = named(QPushButton("Export as PEFT adapter…"), "gradExport")
        self.export_button.setEnabled(False)
        self.export_button.setToolTip(
            "Write the selected soft prompt or LoRA adapter as a folder "
            "peft.PeftModel.from_pretrained loads"
        )
        self.import_button = named(QPushButton("Import PEFT adapter…"), "gradImport")
        self.import_button.setToolTip(
            "Add an adapter saved by PEFT (safetensors) to this prompt, for the model picked "
            "in the Run panel: a prompt-tuning adapter as a soft prompt, a LoRA adapter as "
            "a LoRA adapter"
        )
        self.addWidget(
            titled_column(
                "Nearest tokens of each virtual token (cosine)",
                (self.nearest_view, 1),
                self.nearest_status,
            )
        )
        self.addWidget(
            titled_column(
                "Trained for this prompt",
                (self.soft_list, 1),
                self.metrics_label,
                self.export_button,
                self.import_button,
            )
        )
        self.setStretchFactor(0, 2)
        self.setStretchFactor(1, 1)

        self.export_button.clicked.connect(self._export_dialog)
        self.import_button.clicked.connect(self._import_dialog)
        self.soft_list.selectionModel().currentChanged.connect(
            lambda current, _previous: self.show_row(current.row())
        )
        self.soft_list.clicked.connect(lambda index: self.show_row(index.row()))

    # -- the list ----------------------------------------------------------------------

    def set_prompt(self, prompt: Prompt | None) -> None:
        """List another prompt's soft prompts and adapters (nothing shown until one is
        picked)."""
        self._prompt = prompt
        items: list[Trained] = []
        if prompt is not None:
            items = [
                *self.library.soft_prompts_for(prompt.id),
                *self.library.lora_adapters_for(prompt.id),
            ]
        self.soft_model.set_items(items)
        self._shown = None
        self.metrics_label.clear()
        self.nearest_model.set_tokens([])
        self.nearest_status.clear()
        self.update_buttons(idle=True)

    def add(self, soft: Trained) -> None:
        """List (and pick) a new soft prompt or adapter when it belongs to the listed
        prompt."""
        if self._prompt is not None and soft.prompt_id == self._prompt.id:
            row = self.soft_model.add(soft)
            self.soft_list.setCurrentIndex(self.soft_model.index(row, 0))

    def selected(self) -> Trained | None:
        item: Trained | None = self.soft_model.at(self.soft_list.currentIndex().row())
        return item

    def show_row(self, row: int) -> None:
        item: Trained | None = self.soft_model.at(row)
        if item is None:
            return
        self._shown = item
        self.metrics_label.setText(describe_trained(item))
        if isinstance(item, LoraAdapter):
            self.nearest_model.set_tokens([])
            self.nearest_status.setText("A LoRA adapter has no virtual tokens to show.")
        else:
            rows = self.nearest.get(item.id)
            self.nearest_model.set_tokens(rows or [])
            if rows is not None:
                self.nearest_status.clear()
        self.shown.emit(item)

    def update_buttons(self, idle: bool) -> None:
        self.export_button.setEnabled(self.selected() is not None)
        self.import_button.setEnabled(idle and self._prompt is not None)

    # -- nearest tokens ------------------------------------------------------------------

    def find_nearest(self, soft: SoftPrompt) -> Job | None:
        """Find each virtual token's nearest vocabulary tokens, in a job."""
        if self.nearest.get(soft.id) is not None or self.nearest.busy_with(soft.id):
            return None
        try:
            spec = self.session.catalog.get(soft.base_model)
        except Exception as exc:
            self.nearest_status.setText(f"Nearest tokens unavailable: {exc}")
            return None
        if spec.source == "openai":
            self.nearest_status.setText("Nearest tokens need a local model.")
            return None
        self.nearest_status.setText("Finding the nearest tokens…")

        def found(rows: Neighbours) -> None:
            if self._shown is not None and self._shown.id == soft.id:
                self.nearest_model.set_tokens(rows)
                self.nearest_status.clear()

        def failed(exc: BaseException) -> None:
            if self._shown is not None and self._shown.id == soft.id:
                self.nearest_status.setText(
                    f"Could not find the nearest tokens: {graduation.describe_training_error(exc)}"
                )

        return self.nearest.find(
            soft.id,
            soft.name,
            spec,
            self.library.soft_prompt_tensor_path(soft),
            self.session.backend,  # read here, on the GUI thread
            found,
            failed,
        )

    # -- PEFT adapters -------------------------------------------------------------------

    def export_peft(self, folder: Path, soft: Trained | None = None) -> Job | None:
        """Write the selected soft prompt as a PEFT prompt-tuning adapter folder (a LoRA
        adapter: its PEFT LoRA folder)."""
        soft = soft or self.selected()
        if soft is None:
            self.message.emit("Select a soft prompt or LoRA adapter to export.")
            return None
        if isinstance(soft, LoraAdapter):
            return self._export_lora(Path(folder), soft)
        try:
            spec = self.session.catalog.get(soft.base_model)
        except Exception as exc:
            self.message.emit(f"Cannot export: {exc}")
            return None
        path = self.library.soft_prompt_tensor_path(soft)
        target = Path(folder)

        def work(cancel: threading.Event) -> Path:
            from workbench.core.peft_io import export_peft_adapter
            from workbench.core.softprompt import load_soft_prompt_tensor

            tensor = load_soft_prompt_tensor(path)
            base = graduation.model_folder(spec)
            return export_peft_adapter(tensor, soft, str(base), target)

        from workbench.core.peft_io import placement_caveat

        caveat = placement_caveat(soft)
        note = f" — note: {caveat}" if caveat else ""
        return self._run_export(soft.name, work, "a PEFT adapter", note)

    def _export_lora(self, target: Path, adapter: LoraAdapter) -> Job:
        library = self.library

        def work(cancel: threading.Event) -> Path:
            from workbench.core.lora_io import export_lora_adapter

            return export_lora_adapter(library, adapter, target)

        return self._run_export(adapter.name, work, "a PEFT LoRA adapter")

    def _run_export(
        self, name: str, work: Callable[[threading.Event], Path], what: str, note: str = ""
    ) -> Job:
        """An export as a job, said on the message line as it starts, ends or fails."""

        def done(written: Any) -> None:
            self.message.emit(f"Exported “{name}” as {what} to {written}{note}")
            self.exported.emit(Path(written))

        def failed(exc: BaseException, trace: str) -> None:
            log.error("export of %s failed: %s\n%s", name, exc, trace)
            self.message.emit(f"Export failed: {graduation.describe_training_error(exc)}")

        self.message.emit(f"Exporting “{name}”…")
        return self.jobs.run(
            f"export {name}",
            work,
            on_done=done,
            on_error=failed,
            on_cancelled=lambda: self.message.emit(f"Export of “{name}” stopped."),
        )

    def _export_dialog(self) -> None:
        soft = self.selected()
        if soft is None:
            return
        chosen = QFileDialog.getExistingDirectory(self, "Export as a PEFT adapter into a folder")
        if not chosen:
            return
        folder = Path(chosen)
        if (
            folder.is_dir()
            and any(folder.iterdir())
            and not (folder / "adapter_config.json").exists()
        ):
            # a folder with other things in it: write the adapter into a new subfolder
            folder = folder / slug(soft.name, soft.id)
        if (folder / "adapter_config.json").exists():
            self.message.emit(f"{folder} already holds an adapter; pick an empty folder.")
            return
        self.export_peft(folder, soft)

    def import_peft(self, folder: Path) -> Job | None:
        """Add a PEFT prompt-tuning adapter as a soft prompt of the listed prompt, for
        the session's selected model (the adapter's base model)."""
        spec: ModelSpec | None = selected_spec(self.session)
        prompt = self._prompt
        if prompt is None or spec is None or spec.source == "openai":
            self.message.emit("Pick a prompt and a local model (the adapter's base model).")
            return None
        library = self.library
        source = Path(folder)

        def work(cancel: threading.Event) -> Trained:
            if _peft_type(source) == "LORA":
                from workbench.core.lora_io import import_lora_adapter

                return import_lora_adapter(library, source, spec, prompt.id, cancel=cancel)
            from workbench.core.peft_io import import_adapter_into_library

            return import_adapter_into_library(library, source, spec, prompt.id)

        def done(soft: Trained) -> None:
            self.add(soft)
            if isinstance(soft, LoraAdapter):
                what = f"a LoRA adapter of rank {soft.lora.rank}"
            else:
                what = f"{soft.num_virtual_tokens} virtual tokens"
            self.message.emit(f"Imported “{soft.name}”: {what} for {spec.name}.")
            self.imported.emit(soft)

        def failed(exc: BaseException, trace: str) -> None:
            log.error("import of %s failed: %s\n%s", source, exc, trace)
            self.message.emit(f"Import failed: {graduation.describe_training_error(exc)}")

        self.message.emit(f"Importing {source.name}…")
        return self.jobs.run(
            f"import {source.name}",
            work,
            on_done=done,
            on_error=failed,
            on_cancelled=lambda: self.message.emit(f"Import of {source.name} stopped."),
        )

    def _import_dialog(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Import a PEFT adapter folder")
        if chosen:
            self.import_peft(Path(chosen))
