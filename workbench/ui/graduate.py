"""The Graduate panel: train a soft prompt from the working prompt, watch it learn,
and compare it with the hard prompt.

The settings form is prefilled from the prompt and its test set (`graduation.prepare`
says what training will use: few-shot examples + the train split, the validation
split for early stopping, the held-out test split for the comparison). Start runs
`graduation.graduate()` as ONE job on the window's `JobRunner`: training, saving the
soft prompt in the library, and comparing zero-shot / few-shot / soft prompt on the
held-out rows. The events arrive here in batches; the loss curves live in ring
buffers and are redrawn by a timer at most `1000 / REDRAW_MS` times a second, and
only when new points arrived. Pause toggles a `threading.Event` the training loop
checks between steps; Stop sets the job's cancel event: the engine keeps the best
prompt so far and still saves it.

After a save, the nearest vocabulary tokens of each virtual token are computed in a
job (reading the embedding matrix from the model's Hugging Face folder, or from the
run panel's loaded transformers model), and the soft prompt can be exported as a PEFT
prompt-tuning adapter (also a job). Nothing heavy (torch, transformers, peft) is
imported on the GUI thread; pyqtgraph is imported the first time the panel is shown,
so building the main window stays fast.
"""

from __future__ import annotations

import json
import math
import re
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QFont, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from workbench.core import graduation
from workbench.core.backends.base import BackendError
from workbench.core.evaluation import CaseDone, EvalFinished, Progress, primary_metric
from workbench.core.library import Library
from workbench.core.models import EvalRun, ModelSpec, Prompt, SoftPrompt, TestSet, TrainConfig
from workbench.core.tuning import (
    StepEvent,
    TrainingError,
    TuningFinished,
    TuningResult,
    ValidationEvent,
    init_text,
)
from workbench.ui.evaluate import METRIC_LABELS, format_duration, format_metric
from workbench.ui.jobs import Job, JobRunner
from workbench.ui.models import NewestFirstModel
from workbench.ui.run import RunPanel
from workbench.ui.widgets import named, titled_column

_Index = QModelIndex | QPersistentModelIndex

MAX_POINTS = 100_000
"""Training-loss points kept per run (a ring buffer: the oldest go first)."""
REDRAW_MS = 66
"""The plot is redrawn at most ~15 times a second, and only when points arrived."""
NEAREST_K = 5
NO_TEST_SET = ""  # the test-set picker's data for "none"

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
INITS = (
    ("text", "text (the prompt's instruction)"),
    ("vocab", "vocabulary sample"),
    ("random", "random"),
)

TRAIN_COLOUR = "#1f77b4"
VAL_LOSS_COLOUR = "#d62728"
ACCURACY_COLOUR = "#2ca02c"


# ---------------------------------------------------------------------------
# Small helpers (no Qt widgets)


class RingSeries:
    """(x, y) points in preallocated numpy arrays; past `capacity` the oldest are dropped."""

    def __init__(self, capacity: int = MAX_POINTS) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._x: Any = np.zeros(capacity, dtype=np.float64)
        self._y: Any = np.zeros(capacity, dtype=np.float64)
        self._start = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @property
    def capacity(self) -> int:
        return int(self._x.shape[0])

    def clear(self) -> None:
        self._start = self._count = 0

    def append(self, x: float, y: float) -> None:
        capacity = self.capacity
        at = (self._start + self._count) % capacity
        self._x[at] = x
        self._y[at] = y
        if self._count < capacity:
            self._count += 1
        else:
            self._start = (self._start + 1) % capacity

    def extend(self, xs: Sequence[float], ys: Sequence[float]) -> None:
        for x, y in zip(xs, ys, strict=True):
            self.append(x, y)

    def arrays(self) -> tuple[Any, Any]:
        """Copies of the points, oldest first."""
        end = self._start + self._count
        if end <= self.capacity:
            return self._x[self._start : end].copy(), self._y[self._start : end].copy()
        wrap = end - self.capacity
        return (
            np.concatenate([self._x[self._start :], self._x[:wrap]]),
            np.concatenate([self._y[self._start :], self._y[:wrap]]),
        )


def describe_training_error(exc: BaseException) -> str:
    """A message for the panel (never a dialog): what failed and what to change."""
    text = str(exc)
    if isinstance(exc, TrainingError):
        return text
    if "OutOfMemory" in type(exc).__name__ or "out of memory" in text.lower():
        return f"out of memory ({text}); try a smaller batch size or fewer virtual tokens"
    if isinstance(exc, BackendError | ValueError | OSError):
        return text
    return f"{type(exc).__name__}: {exc}"


def _peak_ram_mb() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS


def format_memory(mb: float) -> str:
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb:.0f} MB"


def step_status(event: StepEvent, paused: bool = False) -> str:
    """One line: step, loss, speed, ETA and memory."""
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
        peak = _peak_ram_mb()
        if peak is not None:
            parts.append(f"peak RAM {format_memory(peak)}")
    if paused:
        parts.append("paused")
    return " · ".join(parts)


def describe_prepared(prepared: graduation.Prepared, few_shot: int) -> str:
    """What training will use, as the form's summary line shows it."""
    from_rows = prepared.train_examples - few_shot
    if prepared.test_set is None:
        train = f"{prepared.train_examples} training examples (few-shot examples only)"
    else:
        train = (
            f"{prepared.train_examples} training examples "
            f"({few_shot} few-shot + {from_rows} from the train split)"
        )
    validation = (
        f"{prepared.validation_examples} validation rows"
        if prepared.validation_examples
        else "no validation rows (no early stopping)"
    )
    held_out = (
        f"{prepared.held_out_rows} held-out rows for the comparison"
        if prepared.held_out_rows
        else "no held-out rows (no comparison)"
    )
    labels = f"labels: {', '.join(prepared.labels)}" if prepared.labels else "no label set"
    return " · ".join([train, validation, held_out, labels])


# ---------------------------------------------------------------------------
# Nearest tokens (run inside a job: reads big files and imports transformers)


_EMBEDDING_NAMES = ("embed_tokens", "wte", "word_embeddings", "tok_embeddings", "embed_in")


def find_embedding_key(shapes: dict[str, list[int]], hidden: int, vocab: int | None) -> str:
    """The input-embedding matrix among a checkpoint's tensors: a [vocab, hidden] tensor,
    preferring the usual embedding names over a (tied) output head."""
    candidates = [k for k, s in shapes.items() if len(s) == 2 and s[1] == hidden and s[0] > 1]
    if vocab is not None:
        exact = [k for k in candidates if shapes[k][0] == vocab]
        candidates = exact or candidates
    named = [k for k in candidates if any(n in k for n in _EMBEDDING_NAMES)]
    pool = named or [k for k in candidates if "head" not in k] or candidates
    if not pool:
        raise ValueError(f"no [vocabulary, {hidden}] embedding matrix in the checkpoint")
    return max(pool, key=lambda k: shapes[k][0])


def read_embedding_matrix(folder: Path, hidden: int) -> Any:
    """The [V, d] input-embedding matrix from a Hugging Face folder's safetensors."""
    from safetensors import safe_open

    vocab: int | None = None
    try:
        config = json.loads((folder / "config.json").read_text("utf-8"))
        text_config = config.get("text_config")
        if "vocab_size" not in config and isinstance(text_config, dict):
            config = text_config
        vocab = int(config["vocab_size"]) if "vocab_size" in config else None
    except (OSError, ValueError, TypeError):
        vocab = None
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ValueError(f"{folder} holds no .safetensors weights")
    shapes: dict[str, list[int]] = {}
    where: dict[str, Path] = {}
    for path in files:
        with safe_open(str(path), framework="numpy") as handle:
            for key in handle.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
                shapes[key] = list(handle.get_slice(key).get_shape())
                where[key] = path
    key = find_embedding_key(shapes, hidden, vocab)
    with safe_open(str(where[key]), framework="numpy") as handle:
        dtype = str(handle.get_slice(key).get_dtype())
        if dtype != "BF16":
            return np.asarray(handle.get_tensor(key), dtype=np.float32)
    with safe_open(str(where[key]), framework="pt") as handle:  # numpy has no bfloat16
        return handle.get_tensor(key).float().numpy()


def compute_nearest_tokens(
    spec: ModelSpec, tensor: Any, backend: Any = None, k: int = NEAREST_K
) -> list[list[tuple[str, float]]]:
    """For each virtual token its `k` nearest vocabulary tokens (cosine). Uses the run
    panel's loaded transformers model when it is the soft prompt's base model; else
    reads the embedding matrix from the model's Hugging Face folder."""
    from workbench.core.peft_io import nearest_tokens

    matrix: Any = None
    tokenizer: Any = None
    model = getattr(backend, "model", None)
    if (
        backend is not None
        and getattr(backend, "name", "") == "transformers"
        and backend.spec.id == spec.id
        and model is not None
        and getattr(backend, "tokenizer", None) is not None
    ):
        matrix = model.get_input_embeddings().weight.detach().float().cpu().numpy()
        tokenizer = backend.tokenizer
    if matrix is None or matrix.shape[1] != tensor.shape[1]:
        from transformers import AutoTokenizer

        folder = graduation.model_folder(spec)
        matrix = read_embedding_matrix(folder, int(tensor.shape[1]))
        tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)

    def decode(token_id: int) -> str:
        try:
            return str(tokenizer.decode([token_id]))
        except Exception:  # an id the tokenizer cannot decode on its own
            return str(tokenizer.convert_ids_to_tokens(token_id))

    return nearest_tokens(tensor, matrix, decode, k)


def token_text(text: str) -> str:
    """A vocabulary token made visible: quotes keep leading spaces and newlines readable."""
    return repr(text)


# ---------------------------------------------------------------------------
# Item models


class ComparisonModel(QAbstractTableModel):
    """Zero-shot / few-shot / soft prompt (rows) × accuracy, context tokens per call,
    latency (columns), from a comparison's `EvalRun.summaries`."""

    ValueRole = Qt.ItemDataRole.UserRole + 1
    """The raw float (None when not measured)."""

    COLUMNS = ("accuracy", "context tokens / call", "latency")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._run: EvalRun | None = None
        self._primary = "normalised"

    @property
    def run(self) -> EvalRun | None:
        return self._run

    def set_run(self, run: EvalRun | None) -> None:
        self.beginResetModel()
        self._run = run
        self._primary = primary_metric(run) if run is not None else "normalised"
        self.endResetModel()

    def _key(self, column: int) -> str:
        return (self._primary, "context_tokens", "latency_s")[column]

    def value(self, row: int, column: int) -> float | None:
        if self._run is None or not 0 <= row < len(self._run.summaries):
            return None
        if not 0 <= column < len(self.COLUMNS):
            return None
        return self._run.summaries[row].metrics.get(self._key(column))

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        if parent.isValid() or self._run is None:
            return 0
        return len(self._run.summaries)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal:
            if not 0 <= section < len(self.COLUMNS):
                return None
            if role == Qt.ItemDataRole.DisplayRole:
                if section == 0:
                    return f"accuracy ({METRIC_LABELS.get(self._primary, self._primary)})"
                return self.COLUMNS[section]
            if role == Qt.ItemDataRole.ToolTipRole:
                return (
                    f"{self._primary}: the run's primary metric",
                    "mean prompt tokens per call (the virtual tokens count for the soft prompt)",
                    "mean time per case",
                )[section]
            return None
        if self._run is None or not 0 <= section < len(self._run.summaries):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._run.summaries[section].name
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or self._run is None:
            return None
        row, column = index.row(), index.column()
        if not (0 <= row < self.rowCount() and 0 <= column < len(self.COLUMNS)):
            return None
        value = self.value(row, column)
        if role == Qt.ItemDataRole.DisplayRole:
            return format_metric(self._key(column), value)
        if role == self.ValueRole:
            return value
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.FontRole and self._run.summaries[row].name == "soft prompt":
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            summary = self._run.summaries[row]
            return f"{summary.name}: {self._key(column)} over {summary.cases} held-out case(s)"
        return None


class NearestTokensModel(QAbstractTableModel):
    """One row per virtual token; one column per neighbour: the token and its cosine."""

    SimilarityRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self, parent: QObject | None = None, k: int = NEAREST_K) -> None:
        super().__init__(parent)
        self._k = k
        self._rows: list[list[tuple[str, float]]] = []

    def set_tokens(self, rows: Sequence[Sequence[tuple[str, float]]]) -> None:
        self.beginResetModel()
        self._rows = [list(r) for r in rows]
        self.endResetModel()

    def tokens(self) -> list[list[tuple[str, float]]]:
        return [list(r) for r in self._rows]

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._k

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return f"#{section + 1}" if 0 <= section < self._k else None
        return f"v{section + 1}" if 0 <= section < len(self._rows) else None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, column = index.row(), index.column()
        if not (0 <= row < len(self._rows) and 0 <= column < self._k):
            return None
        neighbours = self._rows[row]
        if column >= len(neighbours):
            return None
        text, similarity = neighbours[column]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{token_text(text)}  {similarity:.2f}"
        if role == self.SimilarityRole:
            return similarity
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [f"{token_text(t)}  cosine {s:.3f}" for t, s in neighbours]
            return f"virtual token {row + 1}:\n" + "\n".join(lines)
        return None


class SoftPromptListModel(NewestFirstModel):
    """A prompt's soft prompts, newest first."""

    def _text(self, soft: SoftPrompt) -> str:
        when = soft.created.astimezone().strftime("%d %b %H:%M")
        accuracy = soft.metrics.get("best_val_accuracy")
        score = f" · val acc {accuracy:.2f}" if accuracy is not None else ""
        return f"{soft.name} · {when}{score}"

    def _tooltip(self, soft: SoftPrompt) -> str:
        return (
            f"{soft.name}\n{soft.num_virtual_tokens} virtual tokens on {soft.base_model}\n"
            f"prompt version {soft.prompt_version}"
        )


# ---------------------------------------------------------------------------
# The panel


@dataclass
class _Live:
    """The graduation in progress."""

    job: Job | None
    pause: threading.Event
    prompt_id: str
    started_comparison: bool = False
    result: TuningResult | None = None
    saved: SoftPrompt | None = None
    comparison: EvalRun | None = None
    last_step: StepEvent | None = None
    comparison_text: str = ""
    soft_ids_before: frozenset[str] = frozenset()

    def stopping(self) -> bool:
        return self.job is not None and self.job.cancel.is_set()


class GraduatePanel(QWidget):
    """Graduate the working prompt to a soft prompt; see the module docstring."""

    soft_prompt_saved = Signal(object)
    """The stored `SoftPrompt`, as soon as the run saved it."""
    run_finished = Signal(object)
    """The run ended (done, stopped or failed): its `TuningResult`, or None."""
    adapter_exported = Signal(object)
    """The folder a PEFT adapter was written to (a `Path`)."""
    adapter_imported = Signal(object)
    """The soft prompt made from an imported PEFT adapter (a `SoftPrompt`)."""

    def __init__(self, library: Library, jobs: JobRunner, run_panel: RunPanel) -> None:
        super().__init__()
        self.library = library
        self.jobs = jobs
        self.run_panel = run_panel
        self._prompt: Prompt | None = None
        self._live: _Live | None = None
        self.prepared: graduation.Prepared | None = None
        self._auto_init_text = ""
        self._device_text: dict[str, str] = {}
        self._device_pending: set[str] = set()
        self._nearest: dict[str, list[list[tuple[str, float]]]] = {}
        self._nearest_pending: set[str] = set()
        self._shown_soft: SoftPrompt | None = None

        # -- the plot's data (the plot itself is built on first show)
        self.train_series = RingSeries()
        self.val_loss_series = RingSeries(10_000)
        self.val_accuracy_series = RingSeries(10_000)
        self._dirty = False
        self.plot: Any = None
        self.loss_curve: Any = None
        self.val_loss_curve: Any = None
        self.accuracy_curve: Any = None
        self._accuracy_view: Any = None
        self.redraw_timer = QTimer(self, interval=REDRAW_MS)
        self.redraw_timer.timeout.connect(self._redraw_if_dirty)

        # -- settings
        self.data_label = named(QLabel(), "gradData")
        self.data_label.setWordWrap(True)
        self.test_set_combo = named(QComboBox(), "gradTestSet")
        # long test-set names must not widen the settings column (the popup shows them)
        self.test_set_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.test_set_combo.setMinimumContentsLength(14)
        self.test_set_combo.setToolTip(
            "Its train split trains (with the few-shot examples), its validation split stops "
            "early, its held-out test split compares hard and soft prompts.\n"
            "none: train on the few-shot examples only, no comparison."
        )
        self.model_label = named(QLabel(), "gradModel")
        self.model_label.setWordWrap(True)
        self.model_label.setToolTip("The model picked in the Run panel")
        self.tokens = named(QSpinBox(), "gradTokens")
        self.tokens.setRange(1, 512)
        self.tokens.setValue(20)
        self.tokens.setToolTip("Virtual tokens: the soft prompt's length (they count as context)")
        self.init_combo = named(QComboBox(), "gradInit")
        self.init_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.init_combo.setMinimumContentsLength(10)
        for value, label in INITS:
            self.init_combo.addItem(label, value)
        self.init_text = named(QLineEdit(), "gradInitText")
        self.init_text.setToolTip("Text init: the virtual tokens start as this text's tokens")
        self.learning_rate = named(QDoubleSpinBox(), "gradLr")
        self.learning_rate.setDecimals(5)
        self.learning_rate.setRange(0.00001, 10.0)
        self.learning_rate.setSingleStep(0.005)
        self.learning_rate.setValue(3e-2)
        self.steps = named(QSpinBox(), "gradSteps")
        self.steps.setRange(1, 1_000_000)
        self.steps.setValue(225)
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
        self.batch = named(QSpinBox(), "gradBatch")
        self.batch.setRange(1, 4096)
        self.batch.setValue(8)
        self.eval_every = named(QSpinBox(), "gradEvalEvery")
        self.eval_every.setRange(1, 1_000_000)
        self.eval_every.setValue(25)
        self.eval_every.setToolTip("Validate every N steps (and at the last step)")
        self.patience = named(QSpinBox(), "gradPatience")
        self.patience.setRange(0, 10_000)
        self.patience.setValue(4)
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
        self.seed = named(QSpinBox(), "gradSeed")
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("Seeds the split, the initialisation and the batch order")

        form = QFormLayout()
        form.addRow("Model", self.model_label)
        form.addRow("Test set", self.test_set_combo)
        form.addRow("Data", self.data_label)
        form.addRow("Virtual tokens", self.tokens)
        form.addRow("Initialisation", self.init_combo)
        form.addRow("Init text", self.init_text)
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
        self.settings_box = QGroupBox("Settings")
        self.settings_box.setLayout(form)

        # -- run controls
        self.start_button = named(QPushButton("Start"), "gradStart")
        self.start_button.setToolTip("Train, save and compare (one background job)")
        self.pause_button = named(QPushButton("Pause"), "gradPause")
        self.pause_button.setEnabled(False)
        self.stop_button = named(QPushButton("Stop"), "gradStop")
        self.stop_button.setEnabled(False)
        self.stop_button.setToolTip("Stop; the best prompt so far is kept and saved")
        self.status = named(QLabel(), "gradStatus")
        self.status.setWordWrap(True)
        self.message = named(QLabel(), "gradMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.saved_label = named(QLabel(), "gradSaved")
        self.saved_label.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.pause_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.settings_box)
        left_layout.addLayout(buttons)
        left_layout.addWidget(self.status)
        left_layout.addWidget(self.message)
        left_layout.addWidget(self.saved_label)
        left_layout.addStretch(1)
        left_scroll = QScrollArea()
        left_scroll.setWidgetResizable(True)
        left_scroll.setWidget(left)
        # the settings scroll up and down, never sideways: the splitter may not squeeze
        # them below the width their form needs (it did, down to the labels alone)
        left_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scrollbar = left_scroll.verticalScrollBar().sizeHint().width()
        left_scroll.setMinimumWidth(left.minimumSizeHint().width() + scrollbar + 4)

        # -- results
        self.plot_holder = QWidget()
        self.plot_layout = QVBoxLayout(self.plot_holder)
        self.plot_layout.setContentsMargins(0, 0, 0, 0)
        self.progress_label = named(QLabel(), "gradProgress")
        self.comparison_model = ComparisonModel(self)
        self.comparison_view = named(QTableView(), "gradComparison")
        self.comparison_view.setModel(self.comparison_model)
        self.comparison_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.comparison_view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.comparison_view.setMaximumHeight(140)
        self.nearest_model = NearestTokensModel(self)
        self.nearest_view = named(QTableView(), "gradNearest")
        self.nearest_view.setModel(self.nearest_model)
        self.nearest_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.nearest_view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.nearest_status = named(QLabel(), "gradNearestStatus")
        self.soft_model = SoftPromptListModel(self)
        self.soft_list = named(QListView(), "gradSoftPrompts")
        self.soft_list.setModel(self.soft_model)
        self.soft_list.setWordWrap(True)
        self.metrics_label = named(QLabel(), "gradMetrics")
        self.metrics_label.setWordWrap(True)
        self.export_button = named(QPushButton("Export as PEFT adapter…"), "gradExport")
        self.export_button.setEnabled(False)
        self.import_button = named(QPushButton("Import PEFT adapter…"), "gradImport")
        self.import_button.setToolTip(
            "Add a prompt-tuning adapter saved by PEFT (safetensors) as a soft prompt of "
            "this prompt, for the model picked in the Run panel"
        )

        comparison_box = titled_column(
            "Held-out comparison", self.progress_label, self.comparison_view
        )
        nearest_box = titled_column(
            "Nearest tokens of each virtual token (cosine)",
            (self.nearest_view, 1),
            self.nearest_status,
        )
        soft_box = titled_column(
            "Soft prompts of this prompt",
            (self.soft_list, 1),
            self.metrics_label,
            self.export_button,
            self.import_button,
        )
        lower = QSplitter(Qt.Orientation.Horizontal)
        lower.addWidget(nearest_box)
        lower.addWidget(soft_box)
        lower.setStretchFactor(0, 2)
        lower.setStretchFactor(1, 1)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.plot_holder)
        right.addWidget(comparison_box)
        right.addWidget(lower)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(2, 2)
        # the plot is built on first show; reserve its room so the splitter does not
        # collapse the empty placeholder
        self.plot_holder.setMinimumHeight(260)
        right.setSizes([420, 160, 300])
        main = QSplitter(Qt.Orientation.Horizontal)
        main.addWidget(left_scroll)
        main.addWidget(right)
        main.setCollapsible(0, False)
        main.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(main)

        # -- wiring
        self._summary_timer = QTimer(self, singleShot=True, interval=250)
        self._summary_timer.timeout.connect(self._update_data_summary)
        self.test_set_combo.currentIndexChanged.connect(lambda _: self._update_data_summary())
        self.seed.valueChanged.connect(lambda _: self._summary_timer.start())
        self.length_unit.currentIndexChanged.connect(lambda _: self._show_length())
        self.epochs.valueChanged.connect(lambda _: self._show_length())
        self.batch.valueChanged.connect(lambda _: self._show_length())
        self.init_combo.currentIndexChanged.connect(lambda _: self._init_changed())
        self.device_combo.currentIndexChanged.connect(lambda _: self._show_device_info())
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.stop)
        self.export_button.clicked.connect(self._export_dialog)
        self.import_button.clicked.connect(self._import_dialog)
        self.soft_list.selectionModel().currentChanged.connect(
            lambda current, _previous: self.show_soft_prompt_row(current.row())
        )
        self.soft_list.clicked.connect(lambda index: self.show_soft_prompt_row(index.row()))
        run_panel.model_picker.currentIndexChanged.connect(lambda _: self._update_model_label())

        self._update_model_label()
        self.set_prompt(None)

    # -- prompt, test sets, model --------------------------------------------------

    def set_prompt(self, prompt: Prompt | None) -> None:
        """Show the working copy of the selected prompt; call again after each edit."""
        previous = self._prompt
        same = prompt is not None and previous is not None and prompt.id == previous.id
        self._prompt = prompt
        auto = init_text(prompt) if prompt is not None else ""
        if not same or self.init_text.text() == self._auto_init_text:
            self.init_text.setText(auto)  # follows the prompt until the user edits it
        self._auto_init_text = auto
        if same:
            self._summary_timer.start()  # per keystroke: re-count a little later
            return
        self.refresh_test_sets(keep=False)
        self.soft_model.set_items(self.library.soft_prompts_for(prompt.id) if prompt else [])
        self._shown_soft = None
        self.metrics_label.clear()
        self.nearest_model.set_tokens([])
        self.nearest_status.clear()
        if self._live is None:
            self.comparison_model.set_run(None)
            self.progress_label.clear()
            self._clear_curves()
            self.message.clear()
            self.saved_label.clear()
            self.status.clear()
        self._update_buttons()

    def refresh_test_sets(self, keep: bool = True) -> None:
        """Re-list the prompt's test sets. `keep`: keep the current pick when it still
        exists (else the first test set is picked: most prompts train on theirs)."""
        current = self.test_set_combo.currentData() if keep else None
        sets = self.library.test_sets_for(self._prompt.id) if self._prompt else []
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
        self._update_data_summary()

    def selected_test_set(self) -> TestSet | None:
        test_set_id = self.test_set_combo.currentData()
        return self.library.test_sets.get(test_set_id) if test_set_id else None

    def select_test_set(self, test_set_id: str | None) -> None:
        """Pick a test set by id (None: train on the few-shot examples only)."""
        index = self.test_set_combo.findData(test_set_id or NO_TEST_SET)
        if index >= 0:
            self.test_set_combo.setCurrentIndex(index)

    def _update_data_summary(self) -> None:
        prompt = self._prompt
        if prompt is None:
            self.prepared = None
            self.data_label.setText("No prompt selected.")
            self._update_buttons()
            return
        try:
            prepared = graduation.prepare(None, prompt, self.selected_test_set(), self.seed.value())
        except Exception as exc:  # a broken template: say so, training would fail the same way
            self.prepared = None
            self.data_label.setText(f"Cannot prepare the training data: {exc}")
            self._update_buttons()
            return
        self.prepared = prepared
        text = describe_prepared(prepared, len(prompt.few_shot.examples))
        if prepared.train_examples == 0:
            text += "\nNo training data: add few-shot examples or pick a test set."
        self.data_label.setText(text)
        self._show_length()
        self._update_buttons()

    def _show_length(self) -> None:
        """Steps or epochs: show the box in use, and what epochs come to in steps."""
        by_epochs = self.length_unit.currentData() == "epochs"
        self.steps.setVisible(not by_epochs)
        self.epochs.setVisible(by_epochs)
        if by_epochs and self.prepared is not None and self.prepared.train_examples:
            config = TrainConfig(epochs=self.epochs.value(), batch_size=self.batch.value())
            steps = config.total_steps(self.prepared.train_examples)
            self.length_info.setText(
                f"= {steps} steps of {self.batch.value()} over "
                f"{self.prepared.train_examples} examples"
            )
        else:
            self.length_info.clear()

    def _update_model_label(self) -> None:
        spec = self._selected_spec()
        if spec is None:
            self.model_label.setText("No model picked in the Run panel")
        elif spec.source == "openai":
            self.model_label.setText(
                f"{spec.name}: served over HTTP, cannot be trained; pick a local model in the "
                "Run panel"
            )
        else:
            self.model_label.setText(f"{spec.name} (picked in the Run panel)")
        self._update_buttons()

    def _selected_spec(self) -> ModelSpec | None:
        try:
            spec, _backend = self.run_panel.selected_model()
        except Exception:  # nothing picked, or a model removed from the catalog
            return None
        return spec

    def _init_changed(self) -> None:
        self.init_text.setEnabled(self.init_combo.currentData() == "text" and self._live is None)

    # -- the device label (torch is imported on the worker, once the panel is shown) --

    def showEvent(self, event: QShowEvent) -> None:
        self._ensure_plot()
        self._show_device_info()
        self._update_model_label()  # models added in the Run panel re-fill its picker quietly
        if self._prompt is not None and self._live is None:
            self.refresh_test_sets()  # test sets are edited in another panel
        super().showEvent(event)

    def _show_device_info(self) -> None:
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

        def done(text: Any) -> None:
            self._device_pending.discard(choice)
            if text is None:  # the job was stopped before it ran
                return
            self._device_text[choice] = str(text)
            if self.device_combo.currentData() == choice:
                self.device_info.setText(str(text))

        def failed(exc: BaseException, trace: str) -> None:
            self._device_pending.discard(choice)
            self._device_text[choice] = f"not available: {describe_training_error(exc)}"
            if self.device_combo.currentData() == choice:
                self.device_info.setText(self._device_text[choice])

        self.jobs.run(f"describe device {choice}", work, on_done=done, on_error=failed)

    # -- the plot ------------------------------------------------------------------

    def _ensure_plot(self) -> Any:
        if self.plot is not None:
            return self.plot
        import pyqtgraph as pg  # type: ignore[import-untyped]

        plot = named(pg.PlotWidget(), "gradPlot")
        plot.setBackground("w")
        item = plot.getPlotItem()
        item.setClipToView(True)
        item.setDownsampling(auto=True, mode="peak")
        item.showGrid(x=True, y=True, alpha=0.25)
        item.setLabel("bottom", "step")
        item.setLabel("left", "loss")
        legend = item.addLegend(offset=(-10, 10))
        self.loss_curve = item.plot(pen=pg.mkPen(TRAIN_COLOUR, width=1.5), name="training loss")
        self.val_loss_curve = item.plot(
            pen=pg.mkPen(VAL_LOSS_COLOUR, width=2),
            symbol="o",
            symbolSize=7,
            symbolBrush=VAL_LOSS_COLOUR,
            symbolPen=None,
            name="validation loss",
        )
        # validation accuracy on its own right-hand axis (0 to 1), x linked to the loss
        view = pg.ViewBox()
        item.showAxis("right")
        item.scene().addItem(view)
        axis = item.getAxis("right")
        axis.linkToView(view)
        axis.setLabel("validation accuracy")
        view.setXLink(item.vb)
        view.setYRange(0.0, 1.0, padding=0.05)
        view.setMouseEnabled(x=False, y=False)
        self.accuracy_curve = pg.PlotDataItem(
            pen=pg.mkPen(ACCURACY_COLOUR, width=2, style=Qt.PenStyle.DashLine),
            symbol="s",
            symbolSize=7,
            symbolBrush=ACCURACY_COLOUR,
            symbolPen=None,
        )
        view.addItem(self.accuracy_curve)
        legend.addItem(self.accuracy_curve, "validation accuracy")
        self._accuracy_view = view

        def sync() -> None:
            view.setGeometry(item.vb.sceneBoundingRect())
            view.linkedViewChanged(item.vb, view.XAxis)

        item.vb.sigResized.connect(sync)
        sync()
        self.plot = plot
        self.plot_layout.addWidget(plot)
        self._dirty = True
        self._redraw_if_dirty()
        return plot

    def _clear_curves(self) -> None:
        self.train_series.clear()
        self.val_loss_series.clear()
        self.val_accuracy_series.clear()
        self._dirty = True
        self._redraw_if_dirty()

    def _redraw_if_dirty(self) -> None:
        if not self._dirty or self.plot is None:
            return
        self._dirty = False
        self.loss_curve.setData(*self.train_series.arrays())
        self.val_loss_curve.setData(*self.val_loss_series.arrays())
        self.accuracy_curve.setData(*self.val_accuracy_series.arrays())

    def show_curves(self, curves: dict[str, list[float]]) -> None:
        """A stored soft prompt's curves (`SoftPrompt.curves`)."""
        self.train_series.clear()
        self.val_loss_series.clear()
        self.val_accuracy_series.clear()
        train = curves.get("train_loss", [])
        self.train_series.extend([float(i + 1) for i in range(len(train))], train)
        val_steps = curves.get("val_step", [])
        val_loss = curves.get("val_loss", [])
        if len(val_steps) == len(val_loss):
            self.val_loss_series.extend(val_steps, val_loss)
        accuracy = curves.get("val_accuracy", [])
        if accuracy and len(accuracy) == len(val_steps):
            self.val_accuracy_series.extend(val_steps, accuracy)
        self._dirty = True
        self._redraw_if_dirty()

    def plotted_points(self) -> int:
        """How many training-loss points the plot's curve holds (for tests and status)."""
        if self.loss_curve is None or self.loss_curve.xData is None:
            return 0
        return len(self.loss_curve.xData)

    # -- settings --------------------------------------------------------------------

    def config(self) -> TrainConfig:
        """The form as a TrainConfig (pydantic validates it)."""
        init = str(self.init_combo.currentData())
        text = self.init_text.text().strip()
        return TrainConfig(
            num_virtual_tokens=self.tokens.value(),
            init=init,  # type: ignore[arg-type]
            init_text=text if init == "text" and text else None,
            learning_rate=self.learning_rate.value(),
            steps=self.steps.value(),
            epochs=self.epochs.value() if self.length_unit.currentData() == "epochs" else None,
            batch_size=self.batch.value(),
            eval_every=self.eval_every.value(),
            early_stopping_patience=self.patience.value() or None,
            device=self.device_combo.currentData(),
            precision=self.precision_combo.currentData(),
            seed=self.seed.value(),
        )

    def set_config(self, config: TrainConfig) -> None:
        """Fill the form from a TrainConfig (e.g. to repeat an earlier run)."""
        self.tokens.setValue(config.num_virtual_tokens)
        self.init_combo.setCurrentIndex(self.init_combo.findData(config.init))
        if config.init_text:
            self.init_text.setText(config.init_text)
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

    # -- running -----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._live is not None

    @property
    def paused(self) -> bool:
        return self._live is not None and self._live.pause.is_set()

    def start(self) -> None:
        """Train, save and compare as one background job (nothing runs on this thread)."""
        if self._live is not None or self._prompt is None:
            return
        prompt = self._prompt
        spec = self._selected_spec()
        if spec is None:
            self._show_message("Pick a model in the Run panel first.")
            return
        if spec.source == "openai":
            self._show_message(
                f"Model {spec.name!r} is served over HTTP and cannot be trained; "
                "pick a local model (GGUF file or Hugging Face folder) in the Run panel."
            )
            return
        self._update_data_summary()
        if self.prepared is None:
            self._show_message(self.data_label.text())
            return
        if self.prepared.train_examples == 0:
            self._show_message(
                "No training examples: add few-shot examples to the prompt or pick a test set "
                "(its train split trains)."
            )
            return
        try:
            config = self.config()
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"])
            self._show_message(f"Invalid setting {where}: {error['msg']}")
            return
        test_set = self.selected_test_set()
        library = self.library
        settings = self.run_panel.settings
        pause = threading.Event()
        before = frozenset(s.id for s in library.soft_prompts_for(prompt.id))
        live = _Live(job=None, pause=pause, prompt_id=prompt.id, soft_ids_before=before)

        def work(cancel: threading.Event) -> Any:
            return graduation.graduate(
                library, prompt, test_set, spec, config, cancel, pause, settings=settings
            )

        self._live = live
        self._clear_curves()
        self.comparison_model.set_run(None)
        self.progress_label.clear()
        self.saved_label.clear()
        self._show_message("")
        self.status.setText(f"Starting: loading {spec.name} for training…")
        self.pause_button.setText("Pause")
        self.redraw_timer.start()
        live.job = self.jobs.run(
            f"graduate {prompt.name}",
            work,
            lambda events: self._on_events(live, events),
            lambda last: self._on_done(live, last),
            lambda exc, trace: self._on_error(live, exc),
        )
        self._update_buttons()

    def toggle_pause(self) -> None:
        """Pause between steps (the worker idles), or resume."""
        live = self._live
        if live is None:
            return
        if live.pause.is_set():
            live.pause.clear()
            self.pause_button.setText("Pause")
            if live.last_step is not None:
                self.status.setText(step_status(live.last_step))
            else:
                self.status.setText("Resumed")
        else:
            live.pause.set()
            self.pause_button.setText("Resume")
            step = live.last_step.step if live.last_step is not None else 0
            self.status.setText(f"Paused after step {step} (finishing the current step)…")

    def stop(self) -> None:
        """Stop; the engine keeps the best prompt so far and still saves it."""
        live = self._live
        if live is None or live.job is None:
            return
        live.job.stop()
        self.status.setText("Stopping: the best prompt so far will be kept…")
        self.stop_button.setEnabled(False)
        self.pause_button.setEnabled(False)

    def _on_events(self, live: _Live, events: list[Any]) -> None:
        step: StepEvent | None = None
        for event in events:
            if isinstance(event, StepEvent):
                self.train_series.append(float(event.step), event.loss)
                step = event
                self._dirty = True
            elif isinstance(event, ValidationEvent):
                self.val_loss_series.append(float(event.step), event.loss)
                if event.accuracy is not None:
                    self.val_accuracy_series.append(float(event.step), event.accuracy)
                self._dirty = True
            elif isinstance(event, TuningFinished):
                live.result = event.result
                self.pause_button.setEnabled(False)
                self._show_message(event.result.message)
                self.status.setText(f"Training ended: {event.result.message}; saving…")
            elif isinstance(event, graduation.SoftPromptSaved):
                self._saved(live, event.soft_prompt)
            elif isinstance(event, graduation.ComparisonStarted):
                live.started_comparison = True
                total = len(event.variants) * event.rows
                live.comparison_text = (
                    f"Comparing {' / '.join(event.variants)} on {event.rows} held-out rows"
                )
                self.progress_label.setText(f"{live.comparison_text}: 0/{total}")
                self.status.setText("Comparing on the held-out rows…")
            elif isinstance(event, Progress):
                eta = f" · ETA {format_duration(event.eta_s)}" if event.eta_s else ""
                self.progress_label.setText(
                    f"{live.comparison_text}: {event.done}/{event.total}{eta}"
                )
            elif isinstance(event, graduation.ComparisonFinished):
                live.comparison = event.run
                self.comparison_model.set_run(event.run)
            elif isinstance(event, CaseDone | EvalFinished):
                pass  # the comparison table shows the summaries at the end
        if step is not None:
            live.last_step = step
            if live.result is None:
                self.status.setText(step_status(step, live.pause.is_set()))

    def _saved(self, live: _Live, soft: SoftPrompt) -> None:
        live.saved = soft
        self.saved_label.setText(f"Saved as “{soft.name}”")
        self.soft_prompt_saved.emit(soft)
        if self._prompt is not None and soft.prompt_id == self._prompt.id:
            row = self.soft_model.add(soft)
            self.soft_list.setCurrentIndex(self.soft_model.index(row, 0))
        self.compute_nearest(soft)  # queued: runs after the comparison

    def _on_done(self, live: _Live, last: Any) -> None:
        result = live.result
        notes: list[str] = []
        if result is None:
            notes.append("Stopped before training started; nothing was saved.")
        else:
            notes.append(result.message[:1].upper() + result.message[1:] + ".")
            if live.saved is None:
                notes.append("No step finished, so nothing was saved.")
            if live.comparison is not None:
                notes.append(self._comparison_sentence(live.comparison))
            elif live.saved is not None and self.selected_test_set() is None:
                notes.append("No test set, so no comparison.")
            elif live.saved is not None and not live.started_comparison:
                notes.append("No comparison (stopped, or no held-out rows).")
        self._end(live, " ".join(notes))

    def _on_error(self, live: _Live, exc: BaseException) -> None:
        text = f"Training failed: {describe_training_error(exc)}"
        saved = live.saved
        if saved is None:
            # the job's last batch of events is not delivered when it fails: look in
            # the library for a soft prompt saved before the failure (e.g. in the comparison)
            new = [
                s
                for s in self.library.soft_prompts_for(live.prompt_id)
                if s.id not in live.soft_ids_before
            ]
            if new:
                saved = max(new, key=lambda s: s.created)
                self._saved(live, saved)
        if saved is not None:
            text += f" (the soft prompt “{saved.name}” was saved before the failure)"
        self._end(live, text)

    def _end(self, live: _Live, message: str) -> None:
        if self._live is not live:
            return
        self._live = None
        self.redraw_timer.stop()
        self._redraw_if_dirty()
        self._show_message(message)
        if live.last_step is not None:
            self.status.setText(step_status(live.last_step))
        elif live.result is None:
            self.status.clear()
        self.pause_button.setText("Pause")
        if self._prompt is not None and self._prompt.id == live.prompt_id:
            self.refresh_test_sets()  # the test set may have been split and saved
        self._update_buttons()
        self.run_finished.emit(live.result)

    def _comparison_sentence(self, run: EvalRun) -> str:
        primary = primary_metric(run)
        parts = [
            f"{s.name} {format_metric(primary, s.metrics.get(primary))}" for s in run.summaries
        ]
        stopped = " (stopped early)" if not run.complete else ""
        return f"Held-out {METRIC_LABELS.get(primary, primary)}: {', '.join(parts)}{stopped}."

    # -- soft prompts ------------------------------------------------------------------

    def selected_soft_prompt(self) -> SoftPrompt | None:
        return self.soft_model.at(self.soft_list.currentIndex().row())

    def show_soft_prompt_row(self, row: int) -> None:
        soft = self.soft_model.at(row)
        if soft is None:
            return
        self._shown_soft = soft
        metrics = ", ".join(
            f"{key} {value:g}"
            for key, value in sorted(soft.metrics.items())
            if math.isfinite(value)
        )
        config = soft.train_config
        self.metrics_label.setText(
            f"{soft.num_virtual_tokens} virtual tokens · {config.steps} steps · lr "
            f"{config.learning_rate:g} · batch {config.batch_size} · init {soft.init}\n"
            f"{metrics or 'no metrics'}"
        )
        if self._live is None:
            self.show_curves(soft.curves)
        if soft.id in self._nearest:
            self.nearest_model.set_tokens(self._nearest[soft.id])
            self.nearest_status.clear()
        else:
            self.nearest_model.set_tokens([])
            self.compute_nearest(soft)
        self._update_buttons()

    def compute_nearest(self, soft: SoftPrompt) -> Job | None:
        """Find each virtual token's nearest vocabulary tokens, in a job."""
        if soft.id in self._nearest or soft.id in self._nearest_pending:
            return None
        try:
            spec = self.run_panel.catalog.get(soft.base_model)
        except Exception as exc:
            self.nearest_status.setText(f"Nearest tokens unavailable: {exc}")
            return None
        if spec.source == "openai":
            self.nearest_status.setText("Nearest tokens need a local model.")
            return None
        path = self.library.soft_prompt_tensor_path(soft)
        run_panel = self.run_panel
        self._nearest_pending.add(soft.id)
        self.nearest_status.setText("Finding the nearest tokens…")

        def work(cancel: threading.Event) -> Any:
            from workbench.core.softprompt import load_soft_prompt_tensor

            return compute_nearest_tokens(spec, load_soft_prompt_tensor(path), run_panel.backend)

        def done(rows: Any) -> None:
            self._nearest_pending.discard(soft.id)
            if rows is None:
                return
            self._nearest[soft.id] = rows
            if self._shown_soft is not None and self._shown_soft.id == soft.id:
                self.nearest_model.set_tokens(rows)
                self.nearest_status.clear()

        def failed(exc: BaseException, trace: str) -> None:
            self._nearest_pending.discard(soft.id)
            if self._shown_soft is not None and self._shown_soft.id == soft.id:
                self.nearest_status.setText(
                    f"Could not find the nearest tokens: {describe_training_error(exc)}"
                )

        return self.jobs.run(f"nearest tokens of {soft.name}", work, on_done=done, on_error=failed)

    # -- export --------------------------------------------------------------------------

    def export_peft(self, folder: Path, soft: SoftPrompt | None = None) -> Job | None:
        """Write the selected soft prompt as a PEFT prompt-tuning adapter folder (a job:
        a GGUF model's Hugging Face folder may need converting, and peft is imported)."""
        soft = soft or self.selected_soft_prompt()
        if soft is None:
            self._show_message("Select a soft prompt to export.")
            return None
        try:
            spec = self.run_panel.catalog.get(soft.base_model)
        except Exception as exc:
            self._show_message(f"Cannot export: {exc}")
            return None
        path = self.library.soft_prompt_tensor_path(soft)
        target = Path(folder)

        def work(cancel: threading.Event) -> Path:
            from workbench.core.peft_io import export_peft_adapter
            from workbench.core.softprompt import load_soft_prompt_tensor

            tensor = load_soft_prompt_tensor(path)
            base = graduation.model_folder(spec)
            return export_peft_adapter(tensor, soft, str(base), target)

        def done(written: Any) -> None:
            if written is None:
                return
            self._show_message(f"Exported “{soft.name}” as a PEFT adapter to {written}")
            self.adapter_exported.emit(Path(written))

        def failed(exc: BaseException, trace: str) -> None:
            self._show_message(f"Export failed: {describe_training_error(exc)}")

        self._show_message(f"Exporting “{soft.name}”…")
        return self.jobs.run(f"export {soft.name}", work, on_done=done, on_error=failed)

    def _export_dialog(self) -> None:
        soft = self.selected_soft_prompt()
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
            slug = re.sub(r"[^A-Za-z0-9._-]+", "-", soft.name).strip("-.") or soft.id
            folder = folder / slug
        if (folder / "adapter_config.json").exists():
            self._show_message(f"{folder} already holds an adapter; pick an empty folder.")
            return
        self.export_peft(folder, soft)

    def import_peft(self, folder: Path) -> Job | None:
        """Add a PEFT prompt-tuning adapter as a soft prompt of this prompt, for the model
        picked in the Run panel (a job: hashing a big model file takes a while)."""
        spec = self._selected_spec()
        prompt = self._prompt
        if prompt is None or spec is None or spec.source == "openai":
            self._show_message("Pick a prompt and a local model (the adapter's base model).")
            return None
        library = self.library

        def work(cancel: threading.Event) -> SoftPrompt:
            from workbench.core.peft_io import import_adapter_into_library

            return import_adapter_into_library(library, Path(folder), spec, prompt.id)

        def done(soft: Any) -> None:
            if self._prompt is not None and self._prompt.id == prompt.id:
                row = self.soft_model.add(soft)
                self.soft_list.setCurrentIndex(self.soft_model.index(row, 0))
            self.run_panel.refresh_soft_prompts(prompt)
            self._show_message(
                f"Imported “{soft.name}”: {soft.num_virtual_tokens} virtual tokens for {spec.name}."
            )
            self.adapter_imported.emit(soft)

        def failed(exc: BaseException, trace: str) -> None:
            self._show_message(f"Import failed: {describe_training_error(exc)}")

        self._show_message(f"Importing {Path(folder).name}…")
        return self.jobs.run(f"import {Path(folder).name}", work, on_done=done, on_error=failed)

    def _import_dialog(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Import a PEFT adapter folder")
        if chosen:
            self.import_peft(Path(chosen))

    # -- state -----------------------------------------------------------------------------

    def _show_message(self, text: str) -> None:
        self.message.setText(text)

    def _update_buttons(self) -> None:
        live = self._live
        idle = live is None
        spec = self._selected_spec()
        can_start = (
            idle
            and self._prompt is not None
            and spec is not None
            and spec.source != "openai"
            and self.prepared is not None
        )
        self.start_button.setEnabled(bool(can_start))
        self.pause_button.setEnabled(live is not None and live.result is None)
        self.stop_button.setEnabled(live is not None and not live.stopping())
        self.settings_box.setEnabled(idle and self._prompt is not None)
        self.init_text.setEnabled(self.init_combo.currentData() == "text")
        self.export_button.setEnabled(self.selected_soft_prompt() is not None)
        self.import_button.setEnabled(idle and self._prompt is not None)


__all__ = [
    "ComparisonModel",
    "GraduatePanel",
    "NearestTokensModel",
    "RingSeries",
    "SoftPromptListModel",
    "compute_nearest_tokens",
    "describe_prepared",
    "describe_training_error",
    "find_embedding_key",
    "read_embedding_matrix",
    "step_status",
]
