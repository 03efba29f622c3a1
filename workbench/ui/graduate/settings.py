"""The training settings form: the model and test set, TrainConfig <-> widgets, the
"train for" steps/epochs row and the device label (torch is asked on the worker)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any, get_args

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from workbench.core import graduation
from workbench.core.lora import LORA_LEARNING_RATE, lora_settings
from workbench.core.models import (
    Device,
    InitMode,
    LoraSettings,
    ModelSpec,
    Precision,
    Prompt,
    SoftPromptPlacement,
    TestSet,
    TrainConfig,
    TuneMethod,
)
from workbench.core.placement import PLACEMENT_LABELS
from workbench.core.tuning import init_text
from workbench.ui.jobs import JobRunner
from workbench.ui.session import ModelSession
from workbench.ui.widgets import ElidedComboBox, named

log = logging.getLogger(__name__)

NO_TEST_SET = ""  # the test-set picker's data for "none"

DEVICES: tuple[str, ...] = get_args(Device)
PRECISIONS: tuple[str, ...] = get_args(Precision)
INIT_LABELS: dict[str, str] = {
    "text": "text (the prompt's instruction)",
    "vocab": "vocabulary sample",
    "random": "random",
}
INITS: tuple[tuple[str, str], ...] = tuple((m, INIT_LABELS[m]) for m in get_args(InitMode))
PLACEMENT_TIPS: dict[str, str] = {
    "replace": "The virtual tokens take the place of the system message (its text becomes "
    "their initialisation): each call sends only them and the user turn.",
    "add": "The virtual tokens follow the system message, which is still sent with every call.",
    "start": "The virtual tokens come before the whole prompt (how soft prompts were "
    "placed before this choice existed).",
}
DEFAULTS = TrainConfig()  # the form starts from the schema's defaults
LORA_DEFAULTS = LoraSettings()
METHODS: tuple[tuple[str, str], ...] = (
    ("soft", "Soft prompt"),
    ("lora", "LoRA fine-tuning"),
)
METHOD_TIPS: dict[str, str] = {
    "soft": "Train virtual tokens in front of the prompt; the model stays frozen. Runs on "
    "both backends.",
    "lora": "Train low-rank updates of some of the model's layers (a LoRA adapter), on "
    "the same data, split and early stopping. Runs on the transformers backend.",
}
DEFAULT_LEARNING_RATE: dict[str, float] = {
    "soft": DEFAULTS.learning_rate,
    "lora": LORA_LEARNING_RATE,
}
TARGETS_TIP = (
    "Names of the linear layers the adapter goes into, separated by commas.\n"
    "Empty: found from the model (the attention's query and value projections where it "
    "has them)."
)


def selected_spec(session: ModelSession) -> ModelSpec | None:
    """The session's selected model, or None (a model removed from the catalogue)."""
    try:
        spec, _backend = session.selected_model()
    except Exception:  # nothing picked, or a model removed from the catalogue
        return None
    return spec


def _spin(name: str, low: int, high: int, value: int) -> QSpinBox:
    box = named(QSpinBox(), name)
    box.setRange(low, high)
    box.setValue(value)
    return box


def _narrow_combo(name: str, length: int) -> ElidedComboBox:
    """A combo box whose long item texts never widen the settings: the current text is
    cut with "…" and shown whole on hover; the popup shows every item whole."""
    return named(ElidedComboBox(min_chars=length), name)


class TrainingSettings(QGroupBox):
    """The "Settings" box; `config()` reads it, `set_config()` fills it."""

    data_changed = Signal()
    """The test set or the seed changed: what training uses must be counted again
    (seed edits arrive a little later, once per pause in typing)."""

    costs_stale = Signal()
    """The per-call cost of the placements must be counted again (virtual tokens changed)."""

    method_changed = Signal(str)
    """Soft prompt or LoRA was picked ("soft" / "lora")."""

    def __init__(self, jobs: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__("Settings", parent)
        self.jobs = jobs
        self._train_examples: int | None = None
        self._editable = True
        self._auto_init_text = ""
        self._device_text: dict[str, str] = {}
        self._device_pending: set[str] = set()

        self.method_combo = _narrow_combo("gradMethod", 12)
        for value, label in METHODS:
            self.method_combo.addItem(label, value)
            index = self.method_combo.count() - 1
            self.method_combo.setItemData(index, METHOD_TIPS[value], Qt.ItemDataRole.ToolTipRole)
        self.method_combo.set_help(
            "What to train: a soft prompt (prompt tuning), or a LoRA adapter (fine-tuning)"
        )
        self._method: str = "soft"
        self.model_label = named(QLabel(), "gradModel")
        self.model_label.setWordWrap(True)
        self.model_label.setToolTip("The model picked in the Run panel")
        self.test_set_combo = _narrow_combo("gradTestSet", 14)
        self.test_set_combo.set_help(
            "Its train split trains (with the few-shot examples), its validation split stops "
            "early, its held-out test split compares hard and soft prompts.\n"
            "none: train on the few-shot examples only, no comparison."
        )
        self.data_label = named(QLabel(), "gradData")
        self.data_label.setWordWrap(True)
        self.tokens = _spin("gradTokens", 1, 512, DEFAULTS.num_virtual_tokens)
        self.tokens.setToolTip("Virtual tokens: the soft prompt's length (they count as context)")
        self.placement_combo = _narrow_combo("gradPlacement", 14)
        for value in get_args(SoftPromptPlacement):
            self.placement_combo.addItem(PLACEMENT_LABELS[value], value)
            index = self.placement_combo.count() - 1
            self.placement_combo.setItemData(
                index, PLACEMENT_TIPS[value], Qt.ItemDataRole.ToolTipRole
            )
        self.placement_combo.setCurrentIndex(self.placement_combo.findData(DEFAULTS.placement))
        self.placement_combo.set_help("Where the virtual tokens go, and what each call sends")
        self.placement_cost = named(QLabel(), "gradPlacementCost")
        self.placement_cost.setWordWrap(True)
        self._costs: dict[str, int] = {}
        self.init_combo = _narrow_combo("gradInit", 10)
        for value, label in INITS:
            self.init_combo.addItem(label, value)
        self.init_combo.set_help("What the virtual tokens start as")
        self.init_text = named(QLineEdit(), "gradInitText")
        self.init_text.setToolTip("Text init: the virtual tokens start as this text's tokens")
        self.lora_rank = _spin("gradLoraRank", 1, 1024, LORA_DEFAULTS.rank)
        self.lora_rank.setToolTip("The rank r of each low-rank update (more: more parameters)")
        self.lora_alpha = named(QDoubleSpinBox(), "gradLoraAlpha")
        self.lora_alpha.setRange(0.01, 100_000)
        self.lora_alpha.setDecimals(2)
        self.lora_alpha.setValue(LORA_DEFAULTS.alpha)
        self.lora_alpha.setToolTip("Scaling: each update is multiplied by alpha / rank")
        self.lora_dropout = named(QDoubleSpinBox(), "gradLoraDropout")
        self.lora_dropout.setRange(0.0, 0.99)
        self.lora_dropout.setDecimals(2)
        self.lora_dropout.setSingleStep(0.05)
        self.lora_dropout.setValue(LORA_DEFAULTS.dropout)
        self.lora_dropout.setToolTip("Dropout on the adapter's input while training")
        self.lora_targets = named(QLineEdit(), "gradLoraTargets")
        self.lora_targets.setPlaceholderText("found from the model")
        self.lora_targets.setToolTip(TARGETS_TIP)
        self.learning_rate = named(QDoubleSpinBox(), "gradLr")
        self.learning_rate.setDecimals(5)
        self.learning_rate.setRange(0.00001, 10.0)
        self.learning_rate.setSingleStep(0.005)
        self.learning_rate.setValue(DEFAULTS.learning_rate)
        self.steps = _spin("gradSteps", 1, 1_000_000, DEFAULTS.steps)
        self.epochs = named(QDoubleSpinBox(), "gradEpochs")
        self.epochs.setRange(0.1, 100_000)
        self.epochs.setDecimals(1)
        self.epochs.setValue(10)
        self.epochs.hide()
        self.length_unit = named(QComboBox(), "gradLengthUnit")
        self.length_unit.addItem("steps", "steps")
        self.length_unit.addItem("epochs", "epochs")
        self.length_unit.setToolTip(
            "Train for a number of optimiser steps, or of passes over the training data"
        )
        self.length_info = named(QLabel(), "gradLengthInfo")
        self.length_info.setWordWrap(True)
        length = QWidget()
        length_row = QHBoxLayout(length)
        length_row.setContentsMargins(0, 0, 0, 0)
        for widget in (self.steps, self.epochs, self.length_unit):
            length_row.addWidget(widget)
        length_row.addStretch(1)
        self.batch = _spin("gradBatch", 1, 4096, DEFAULTS.batch_size)
        self.eval_every = _spin("gradEvalEvery", 1, 1_000_000, DEFAULTS.eval_every)
        self.eval_every.setToolTip("Validate every N steps (and at the last step)")
        self.patience = _spin("gradPatience", 0, 10_000, DEFAULTS.early_stopping_patience or 0)
        self.patience.setSpecialValueText("off")
        self.patience.setSuffix(" evaluations")
        self.patience.setToolTip("Stop after this many validations without improvement")
        self.device_combo = named(QComboBox(), "gradDevice")
        for device in DEVICES:
            self.device_combo.addItem(device, device)
        self.device_info = named(QLabel("(shown when the panel opens)"), "gradDeviceInfo")
        self.device_info.setWordWrap(True)
        self.precision_combo = named(QComboBox(), "gradPrecision")
        for precision in PRECISIONS:
            self.precision_combo.addItem(precision, precision)
        self.precision_combo.setToolTip("auto: bf16 (or fp16) on a GPU, fp32 on the CPU")
        self.seed = _spin("gradSeed", 0, 2**31 - 1, 0)
        self.seed.setToolTip("Seeds the split, the initialisation and the batch order")

        form = QFormLayout(self)
        self._form = form
        form.addRow("Method", self.method_combo)
        form.addRow("Model", self.model_label)
        form.addRow("Test set", self.test_set_combo)
        form.addRow("Data", self.data_label)
        form.addRow("Virtual tokens", self.tokens)
        form.addRow("Soft prompt", self.placement_combo)
        form.addRow("", self.placement_cost)
        form.addRow("Initialisation", self.init_combo)
        form.addRow("Init text", self.init_text)
        form.addRow("LoRA rank", self.lora_rank)
        form.addRow("LoRA alpha", self.lora_alpha)
        form.addRow("LoRA dropout", self.lora_dropout)
        form.addRow("Target layers", self.lora_targets)
        form.addRow("Learning rate", self.learning_rate)
        form.addRow("Train for", length)
        form.addRow("", self.length_info)
        form.addRow("Batch size", self.batch)
        form.addRow("Evaluate every", self.eval_every)
        form.addRow("Early stop after", self.patience)
        form.addRow("Device", self.device_combo)
        form.addRow("", self.device_info)
        form.addRow("Precision", self.precision_combo)
        form.addRow("Seed", self.seed)

        # a seed typed digit by digit is counted once, a little after the last digit
        self._seed_timer = QTimer(self, singleShot=True, interval=250)
        self._seed_timer.timeout.connect(self.data_changed)
        self.test_set_combo.currentIndexChanged.connect(lambda _: self.data_changed.emit())
        self.seed.valueChanged.connect(lambda _: self._seed_timer.start())
        self.length_unit.currentIndexChanged.connect(lambda _: self._show_length())
        self.epochs.valueChanged.connect(lambda _: self._show_length())
        self.batch.valueChanged.connect(lambda _: self._show_length())
        self.init_combo.currentIndexChanged.connect(lambda _: self.set_editable(self._editable))
        self.device_combo.currentIndexChanged.connect(lambda _: self.show_device_info())
        self.placement_combo.currentIndexChanged.connect(lambda _: self._show_costs())
        self.tokens.valueChanged.connect(lambda _: self.costs_stale.emit())
        self.method_combo.currentIndexChanged.connect(lambda _: self._method_changed())
        self._show_method_rows()

    # -- the method ------------------------------------------------------------------

    def method(self) -> TuneMethod:
        return "lora" if self.method_combo.currentData() == "lora" else "soft"

    def set_method(self, method: TuneMethod) -> None:
        self.method_combo.setCurrentIndex(self.method_combo.findData(method))

    def _soft_rows(self) -> tuple[QWidget, ...]:
        return (
            self.tokens,
            self.placement_combo,
            self.placement_cost,
            self.init_combo,
            self.init_text,
        )

    def _lora_rows(self) -> tuple[QWidget, ...]:
        return (self.lora_rank, self.lora_alpha, self.lora_dropout, self.lora_targets)

    def _show_method_rows(self) -> None:
        lora = self.method() == "lora"
        for widget in self._soft_rows():
            self._form.setRowVisible(widget, not lora)
        for widget in self._lora_rows():
            self._form.setRowVisible(widget, lora)

    def _method_changed(self) -> None:
        """Show the picked method's rows; the learning rate follows the method's
        default unless the user changed it."""
        previous, method = self._method, self.method()
        if previous == method:
            return
        self._method = method
        if abs(self.learning_rate.value() - DEFAULT_LEARNING_RATE[previous]) < 1e-9:
            self.learning_rate.setValue(DEFAULT_LEARNING_RATE[method])
        self._show_method_rows()
        self.method_changed.emit(method)

    def lora_options(self) -> dict[str, Any]:
        """The LoRA rows by LoraSettings field (empty target layers: found from the model)."""
        targets = [name.strip() for name in self.lora_targets.text().split(",") if name.strip()]
        return {
            "rank": self.lora_rank.value(),
            "alpha": self.lora_alpha.value(),
            "dropout": self.lora_dropout.value(),
            "target_modules": targets,
        }

    def lora(self) -> LoraSettings:
        """The LoRA rows as LoraSettings (`SchemaError` names a bad setting)."""
        return lora_settings(self.lora_options())

    def set_lora(self, settings: LoraSettings) -> None:
        self.lora_rank.setValue(settings.rank)
        self.lora_alpha.setValue(settings.alpha)
        self.lora_dropout.setValue(settings.dropout)
        self.lora_targets.setText(", ".join(settings.target_modules))

    def show_target_layers(self, found: str) -> None:
        """What the model's layers are, for the target layers' tooltip ("" : unknown)."""
        self.lora_targets.setToolTip(f"{TARGETS_TIP}\n{found}" if found else TARGETS_TIP)

    # -- TrainConfig <-> widgets -----------------------------------------------------

    def options(self) -> dict[str, Any]:
        """The form's values by TrainConfig field, for `graduation.train_config` (a LoRA
        run leaves the soft-prompt fields at their defaults: it does not use them)."""
        init = str(self.init_combo.currentData())
        text = self.init_text.text().strip()
        by_epochs = self.length_unit.currentData() == "epochs"
        soft = self.method() == "soft"
        return {
            "num_virtual_tokens": self.tokens.value() if soft else None,
            "placement": self.placement_combo.currentData() if soft else None,
            "init": init if soft else None,
            "init_text": text if soft and init == "text" and text else None,
            "learning_rate": self.learning_rate.value(),
            "steps": self.steps.value(),
            "epochs": self.epochs.value() if by_epochs else None,
            "batch_size": self.batch.value(),
            "eval_every": self.eval_every.value(),
            "early_stopping_patience": self.patience.value(),  # 0 = off
            "device": self.device_combo.currentData(),
            "precision": self.precision_combo.currentData(),
            "seed": self.seed.value(),
        }

    def config(self) -> TrainConfig:
        """The form as a TrainConfig (`SchemaError` names a bad setting)."""
        return graduation.train_config(self.options())

    def set_config(self, config: TrainConfig) -> None:
        """Fill the form from a TrainConfig (e.g. to repeat an earlier run)."""
        self.tokens.setValue(config.num_virtual_tokens)
        self.placement_combo.setCurrentIndex(self.placement_combo.findData(config.placement))
        self.init_combo.setCurrentIndex(self.init_combo.findData(config.init))
        if config.init_text:
            self.init_text.setText(config.init_text)
            self.init_text.setCursorPosition(0)  # its start in view, not its end
        self.learning_rate.setValue(config.learning_rate)
        self.steps.setValue(config.steps)
        if config.epochs is not None:
            self.epochs.setValue(config.epochs)
        self.length_unit.setCurrentIndex(
            self.length_unit.findData("epochs" if config.epochs is not None else "steps")
        )
        self.batch.setValue(config.batch_size)
        self.eval_every.setValue(config.eval_every)
        self.patience.setValue(config.early_stopping_patience or 0)
        self.device_combo.setCurrentIndex(self.device_combo.findData(config.device))
        self.precision_combo.setCurrentIndex(self.precision_combo.findData(config.precision))
        self.seed.setValue(config.seed)

    def follow_prompt(self, prompt: Prompt | None, same: bool) -> None:
        """The init text follows the prompt's instruction until the user edits it
        (`same`: an edit of the prompt already shown, not another prompt)."""
        auto = init_text(prompt) if prompt is not None else ""
        if not same or self.init_text.text() == self._auto_init_text:
            self.init_text.setText(auto)
            self.init_text.setCursorPosition(0)
        self._auto_init_text = auto

    def set_editable(self, editable: bool) -> None:
        """Editable while idle with a prompt; the init text only for a text init."""
        self._editable = editable
        self.setEnabled(editable)
        self.init_text.setEnabled(editable and self.init_combo.currentData() == "text")

    # -- what a call costs -------------------------------------------------------------

    def show_costs(self, costs: dict[str, int]) -> None:
        """Context tokens per call (`graduation.per_call_tokens`; empty: unknown)."""
        self._costs = dict(costs)
        self._show_costs()

    def _show_costs(self) -> None:
        placement = str(self.placement_combo.currentData())
        costs = self._costs
        if placement not in costs:
            self.placement_cost.setText(
                "Load the model in the Run panel to see what each call costs."
                if placement != "start"
                else ""
            )
            return
        few = costs.get("few-shot")
        share = f", {costs[placement] / few:.0%} of the few-shot prompt's {few}" if few else ""
        other = "add" if placement == "replace" else "replace"
        self.placement_cost.setText(
            f"About {costs[placement]} tokens per call{share} "
            f"({PLACEMENT_LABELS[other]}: {costs.get(other, '?')}; zero-shot hard prompt: "
            f"{costs.get('zero-shot', '?')})."
        )

    # -- model, test sets and length -------------------------------------------------

    def show_model(self, spec: ModelSpec | None) -> None:
        if spec is None:
            self.model_label.setText("No model picked in the Run panel")
        elif spec.source == "openai":
            self.model_label.setText(
                f"{spec.name}: served over HTTP, cannot be trained; pick a local model in the "
                "Run panel"
            )
        else:
            self.model_label.setText(f"{spec.name} (picked in the Run panel)")

    def set_test_sets(self, sets: Sequence[TestSet], keep: bool = True) -> None:
        """List these test sets. `keep`: keep the current pick when it is still listed
        (else the first test set is picked, the one `graduation.training_test_set` uses:
        most prompts train on theirs). Quiet: the caller counts the data again."""
        current = self.test_set_combo.currentData() if keep else None
        self.test_set_combo.blockSignals(True)
        self.test_set_combo.clear()
        self.test_set_combo.addItem("none (few-shot examples only, no comparison)", NO_TEST_SET)
        for test_set in sets:
            labels = f", labels: {', '.join(test_set.labels)}" if test_set.labels else ""
            self.test_set_combo.addItem(
                f"{test_set.name} ({len(test_set.rows)} rows{labels})", test_set.id
            )
        index = self.test_set_combo.findData(current) if current is not None else -1
        if index < 0:
            index = 1 if sets else 0
        self.test_set_combo.setCurrentIndex(index)
        self.test_set_combo.blockSignals(False)

    def test_set_id(self) -> str | None:
        return str(self.test_set_combo.currentData() or "") or None

    def select_test_set(self, test_set_id: str | None) -> None:
        index = self.test_set_combo.findData(test_set_id or NO_TEST_SET)
        if index >= 0:
            self.test_set_combo.setCurrentIndex(index)

    def show_length(self, train_examples: int | None) -> None:
        """Remember how many examples train (None: unknown) and show the length row."""
        self._train_examples = train_examples
        self._show_length()

    def _show_length(self) -> None:
        """Steps or epochs: show the box in use, and what epochs come to in steps."""
        by_epochs = self.length_unit.currentData() == "epochs"
        self.steps.setVisible(not by_epochs)
        self.epochs.setVisible(by_epochs)
        examples = self._train_examples
        if by_epochs and examples:
            config = TrainConfig(epochs=self.epochs.value(), batch_size=self.batch.value())
            steps = config.total_steps(examples)
            self.length_info.setText(
                f"= {steps} steps of {self.batch.value()} over {examples} examples"
            )
        else:
            self.length_info.clear()

    # -- the device label ------------------------------------------------------------

    def show_device_info(self) -> None:
        """What the picked device means here, asked once per choice in a job (it
        imports torch, never on the GUI thread)."""
        choice = str(self.device_combo.currentData())
        if choice in self._device_text:
            self.device_info.setText(self._device_text[choice])
            return
        self.device_info.setText("checking the device…")
        if choice in self._device_pending:
            return
        self._device_pending.add(choice)

        def work(cancel: threading.Event) -> str:
            from workbench.core import tuning

            device = tuning.pick_device(choice)
            description = tuning.device_description(device)
            return f"auto picks {description}" if choice == "auto" else description

        def show(text: str) -> None:
            self._device_pending.discard(choice)
            self._device_text[choice] = text
            if self.device_combo.currentData() == choice:
                self.device_info.setText(text)

        def failed(exc: BaseException, trace: str) -> None:
            log.error("describing device %s failed: %s\n%s", choice, exc, trace)
            show(f"not available: {graduation.describe_training_error(exc)}")

        self.jobs.run(
            f"describe device {choice}",
            work,
            on_done=lambda text: show(str(text)),
            on_error=failed,
            on_cancelled=lambda: self._device_pending.discard(choice),
        )
