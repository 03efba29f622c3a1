"""transformers backend: Hugging Face folders and GGUF files (dequantised and cached).

Generation is a plain decoding loop over the model's KV cache rather than
`model.generate` on a hidden thread: the core stays a generator (the threading
model in docs/architecture.md), the cancel check runs every token through a StoppingCriteria,
log-probabilities come straight from each step's scores, and a soft prompt's
embeddings can be fed at prefill without PEFT's generation pitfalls.
"""

from __future__ import annotations

import inspect
import os
import shutil
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from workbench.core.backends.base import (
    Backend,
    BackendSettings,
    Finished,
    ModelLoadError,
    OutOfMemoryError,
    StopMatcher,
    StreamEvent,
    Timer,
    TokenEvent,
    top_from_logprobs,
)
from workbench.core.fsutil import Cancelled, file_sha256
from workbench.core.models import GenerationParams, Message, ModelSpec
from workbench.core.paths import cache_dir


def pick_device(preference: str = "auto") -> str:
    """CUDA > MPS > CPU for "auto"; an explicit choice must be available."""
    import torch

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if preference == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if preference == "cuda" and not cuda:
        raise ModelLoadError("device 'cuda' was asked for but no CUDA GPU is available")
    if preference == "mps" and not mps:
        raise ModelLoadError("device 'mps' was asked for but Apple's MPS is not available")
    if preference not in ("cpu", "cuda", "mps"):
        raise ModelLoadError(f"unknown device {preference!r} (auto, cpu, cuda or mps)")
    return preference


def auto_precision(device: str) -> str:
    """The one rule for a device's precision when none is chosen, for running and for
    training alike: bf16 on a CUDA GPU that supports it, fp16 on other GPUs (older CUDA
    cards, Apple's MPS), fp32 on the CPU."""
    if device == "cuda":
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device == "mps":
        return "fp16"
    return "fp32"


def dtype_for(precision: str) -> Any:
    """The torch dtype of a precision name ("bf16", "fp16", anything else fp32)."""
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)


def pick_dtype(device: str) -> Any:
    """The dtype a model is run in on `device` (see `auto_precision`)."""
    return dtype_for(auto_precision(device))


def gguf_as_hf_folder(gguf: Path, cancel: threading.Event | None = None) -> Path:
    """A safetensors folder converted from a GGUF file, cached by the file's hash: the
    first load dequantises (slow), later loads read the cached folder (fast). A set
    `cancel` stops it (`Cancelled`) while hashing, before the conversion and before the
    result is saved; nothing half-done is left in the cache."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def check(step: str) -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"converting {gguf.name} was stopped {step}")

    target = cache_dir() / "hf-from-gguf" / file_sha256(gguf, cancel)[:32]
    if (target / "config.json").is_file():
        return target
    check("before dequantising")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.{os.getpid()}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except Exception as exc:
        raise ModelLoadError(f"transformers could not read {gguf.name} as GGUF: {exc}") from None
    check("after dequantising")  # the slow step is over; don't spend the disk writes
    # the weights are dequantised now: save them as a plain fp32 checkpoint
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    try:
        model.save_pretrained(str(staging), safe_serialization=True)
        tokenizer.save_pretrained(str(staging))
        check("while saving the converted weights")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        os.replace(staging, target)  # atomic: a crash leaves no half-written cache
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # another process won the race
    return target


class TransformersBackend(Backend):
    name = "transformers"

    def __init__(self, spec: ModelSpec, settings: BackendSettings | None = None) -> None:
        super().__init__(spec, settings)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self._torch = torch
        torch.set_num_threads(self.settings.threads)
        self.device = pick_device(self.settings.device)
        self.dtype = pick_dtype(self.device)
        path = Path(str(spec.path))
        folder = gguf_as_hf_folder(path) if spec.source == "gguf" else path
        allow_pickle = spec.allow_pickle or self.settings.allow_pickle
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
            self.model = AutoModelForCausalLM.from_pretrained(
                str(folder),
                dtype=self.dtype,
                trust_remote_code=False,
                use_safetensors=None if allow_pickle else True,
            )
        except (torch.OutOfMemoryError, MemoryError):
            raise OutOfMemoryError(
                f"out of memory loading model {spec.name!r} on {self.device}"
            ) from None
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelLoadError(
                f"transformers could not load model {spec.name!r}: {exc}"
            ) from None
        self.model.to(self.device)
        self.model.eval()
        self.model.requires_grad_(False)
        eos = self.model.generation_config.eos_token_id
        eos_ids = eos if isinstance(eos, list) else [eos]
        if self.tokenizer.eos_token_id is not None:
            eos_ids.append(self.tokenizer.eos_token_id)
        self.eos_ids = {int(e) for e in eos_ids if e is not None}
        # transformers 5.24 renamed forward's `past_key_values` to `cache`
        params = inspect.signature(self.model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

    @property
    def context_length(self) -> int:
        config = self.model.config
        for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
            value = getattr(config, key, None)
            if isinstance(value, int) and value > 0:
                return value
        return 2048

    @property
    def hidden_size(self) -> int:
        return int(self.model.get_input_embeddings().weight.shape[-1])

    def apply_chat_template(self, messages: Sequence[Message]) -> str:
        chat = [m.model_dump() for m in messages]
        if getattr(self.tokenizer, "chat_template", None):
            return str(
                self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
            )
        lines = [f"{m.role}: {m.content}" for m in messages]
        return "\n".join([*lines, "assistant:"])

    def tokenize(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def tokenize_tail(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def token_text(self, token: int) -> str:
        return str(self.tokenizer.decode([token]))

    def _processors(self, params: GenerationParams) -> Any:
        from transformers import (
            LogitsProcessorList,
            RepetitionPenaltyLogitsProcessor,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        processors = LogitsProcessorList()
        if params.repetition_penalty != 1.0:
            processors.append(RepetitionPenaltyLogitsProcessor(params.repetition_penalty))
        if params.temperature > 0:
            processors.append(TemperatureLogitsWarper(params.temperature))
            if params.top_k > 0:
                processors.append(TopKLogitsWarper(params.top_k))
            if params.top_p < 1.0:
                processors.append(TopPLogitsWarper(params.top_p))
        return processors

    # -- scoring ---------------------------------------------------------------

    def _score(self, text: str, continuations: list[str]) -> list[float]:
        return self._score_items([self.tokenize(text)], continuations)[0]

    def score_batch(
        self, items: Sequence[tuple[Sequence[Message] | str, Sequence[str]]]
    ) -> list[list[float]]:
        """Score several prompts' continuations in one forward pass (padded batch)."""
        texts = [(self.prompt_text(prompt), list(conts)) for prompt, conts in items]
        from workbench.core.backends.base import MODEL_JOB_LOCK

        with MODEL_JOB_LOCK, self.lock:
            return self._score_batch(texts)

    def _score_batch(self, items: list[tuple[str, list[str]]]) -> list[list[float]]:
        """Padded batch of sequences; the LM head runs only at positions that predict a
        continuation token (no full-vocabulary logits elsewhere). A case's prompt is one
        sequence serving every continuation's first token; only continuations longer than
        one token need a sequence of their own for the rest."""
        torch = self._torch
        sequences: list[list[int]] = []
        picks: list[tuple[int, int, int, int]] = []  # (sequence, position, token, score slot)
        slots = 0
        for text, continuations in items:
            prompt = self.tokenize(text)
            base = len(sequences)
            sequences.append(prompt)
            for continuation in continuations:
                ids = list(self.tokenizer(continuation, add_special_tokens=False)["input_ids"])
                self.check_fits(len(prompt) + len(ids), GenerationParams())
                if ids:
                    picks.append((base, len(prompt) - 1, ids[0], slots))
                if len(ids) > 1:
                    sequences.append(prompt + ids[:-1])
                    for k in range(1, len(ids)):
                        picks.append((len(sequences) - 1, len(prompt) + k - 1, ids[k], slots))
                slots += 1
        width = max(len(s) for s in sequences)
        pad = self.tokenizer.pad_token_id or 0
        input_ids = torch.full((len(sequences), width), pad, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, seq in enumerate(sequences):
            input_ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1  # right padding: causal attention never sees it
        totals = [0.0] * slots
        if picks:
            rows = torch.tensor([p[0] for p in picks])
            positions = torch.tensor([p[1] for p in picks])
            targets = torch.tensor([p[2] for p in picks])
            try:
                with torch.inference_mode():
                    hidden = self.model.get_decoder()(
                        input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device)
                    ).last_hidden_state
                    picked = hidden[rows.to(self.device), positions.to(self.device)]
                    logits = self.model.get_output_embeddings()(picked).float()
                    logprobs = torch.log_softmax(logits, dim=-1)
                    chosen = logprobs[torch.arange(len(picks)), targets.to(self.device)].cpu()
            except (torch.OutOfMemoryError, MemoryError):
                raise OutOfMemoryError(
                    f"out of memory scoring {len(sequences)} sequences of up to {width} "
                    f"tokens with model {self.spec.name!r}; evaluate with a smaller batch"
                ) from None
            for index, pick in enumerate(picks):
                totals[pick[3]] += float(chosen[index])
        out: list[list[float]] = []
        cursor = 0
        for _, continuations in items:
            out.append(totals[cursor : cursor + len(continuations)])
            cursor += len(continuations)
        return out

    def _score_soft(
        self, head: str, tail: str, continuations: list[str], soft_prompt: Any
    ) -> list[float]:
        """Continuation log-likelihoods after `head`, the soft prompt's virtual tokens and
        `tail` (see `core/placement.py`)."""
        items = self._soft_items(head, tail, int(soft_prompt.shape[0]))
        return self._score_items([items], continuations, soft_prompt)[0]

    def _soft_items(self, head: str, tail: str, n_virtual: int) -> list[int]:
        from workbench.core.prefix_cache import virtual_items

        before, after = self.soft_prompt_ids(head, tail)
        return [*before, *virtual_items(n_virtual), *after]

    def _score_items(
        self, cases: list[list[int]], continuations: Sequence[str], soft_prompt: Any = None
    ) -> list[list[float]]:
        """Scores of `continuations` after each case, sharing the common prefix's cache."""
        return list(self._score_items_lazily(cases, continuations, soft_prompt))

    def _score_items_lazily(
        self, cases: list[list[int]], continuations: Sequence[str], soft_prompt: Any = None
    ) -> Iterator[list[float]]:
        from workbench.core.prefix_cache import score_continuations

        torch = self._torch
        pieces = [self.tokenize_tail(c) for c in continuations]
        longest = max((len(p) for p in pieces), default=0)
        for case in cases:
            self.check_fits(len(case) + longest, GenerationParams())
            if not case:
                raise ValueError("nothing precedes the continuations to predict them from")
        virtual = None if soft_prompt is None else torch.as_tensor(soft_prompt)
        try:
            yield from score_continuations(self.model, cases, [pieces] * len(cases), virtual)
        except (torch.OutOfMemoryError, MemoryError):
            raise OutOfMemoryError(
                f"out of memory scoring with model {self.spec.name!r}; shorten the prompt"
            ) from None

    def score_cases(
        self,
        prompts: Sequence[Sequence[Message] | str],
        continuations: Sequence[str],
        soft_prompt: Any = None,
    ) -> Iterator[list[float]]:
        """Continuation scores after each prompt, one case at a time (a generator), with
        the key/value cache of what all the prompts share (system message, few-shot
        turns, virtual tokens) computed once."""
        from workbench.core.backends.base import MODEL_JOB_LOCK

        if soft_prompt is None:
            cases = [self.tokenize(self.prompt_text(p)) for p in prompts]
        else:
            placed = [self._placed(p, soft_prompt) for p in prompts]
            cases = [self._soft_items(h, t, int(e.shape[0])) for h, t, e in placed]
            soft_prompt = placed[0][2] if placed else None
        scores = self._score_items_lazily(cases, continuations, soft_prompt)
        while True:
            with MODEL_JOB_LOCK, self.lock:  # per case: the caller may run others between
                try:
                    item = next(scores)
                except StopIteration:
                    return
            yield item

    def _stream_soft(
        self,
        head: str,
        tail: str,
        params: GenerationParams,
        cancel: threading.Event,
        soft_prompt: Any,
    ) -> Iterator[StreamEvent]:
        if params.grammar or params.json_schema is not None:
            raise ValueError(
                "constrained output (grammar / JSON schema) runs on the llama.cpp backend"
            )
        before, after = self.soft_prompt_ids(head, tail)
        self.check_fits(int(soft_prompt.shape[0]) + len(before) + len(after), params)
        prefix = self._torch.as_tensor(soft_prompt)
        yield from self.stream_ids(
            [*before, *after], params, cancel, prefix_embeds=prefix, virtual_at=len(before)
        )

    def _stream(
        self, text: str, params: GenerationParams, cancel: threading.Event
    ) -> Iterator[StreamEvent]:
        if params.grammar or params.json_schema is not None:
            raise ValueError(
                "constrained output (grammar / JSON schema) runs on the llama.cpp backend"
            )
        ids = self.tokenize(text)
        self.check_fits(len(ids), params)
        yield from self.stream_ids(ids, params, cancel)

    def stream_ids(
        self,
        ids: list[int],
        params: GenerationParams,
        cancel: threading.Event,
        prefix_embeds: Any = None,
        virtual_at: int = 0,
    ) -> Iterator[StreamEvent]:
        """Decode from token ids, with `prefix_embeds` ([n, d] virtual tokens) inserted
        before `ids[virtual_at]` when given."""
        torch = self._torch
        try:
            yield from self._decode(ids, params, cancel, prefix_embeds, virtual_at)
        except (torch.OutOfMemoryError, MemoryError):
            if self.device == "cuda":
                torch.cuda.empty_cache()
            raise OutOfMemoryError(
                f"out of memory on {self.device} generating with model {self.spec.name!r} "
                f"({len(ids)} prompt tokens, up to {params.max_new_tokens} new); "
                "try a shorter prompt or fewer new tokens"
            ) from None

    def _decode(
        self,
        ids: list[int],
        params: GenerationParams,
        cancel: threading.Event,
        prefix_embeds: Any,
        virtual_at: int = 0,
    ) -> Iterator[StreamEvent]:
        import secrets

        from transformers import DynamicCache, StoppingCriteria, StoppingCriteriaList

        torch = self._torch
        timer = Timer()

        class CancelCriteria(StoppingCriteria):  # type: ignore[misc]
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool)

        stopping = StoppingCriteriaList([CancelCriteria()])
        processors = self._processors(params)
        greedy = params.temperature <= 0
        seed = params.seed if params.seed is not None else secrets.randbits(31)
        rng = torch.Generator(device=self.device).manual_seed(seed)
        want_logprobs = params.logprobs or params.top_logprobs > 0
        n_virtual = 0 if prefix_embeds is None else int(prefix_embeds.shape[0])
        budget = min(params.max_new_tokens, self.context_length - n_virtual - len(ids))
        stops = StopMatcher(params.stop)
        all_ids = torch.tensor([ids], dtype=torch.long, device=self.device)
        generated: list[int] = []
        pieces: list[str] = []
        prefix_offset = read_offset = 0
        finish = "length"
        if cancel.is_set():
            yield Finished("", timer.stats(n_virtual + len(ids), "cancelled"))
            return
        with torch.inference_mode():
            cache = DynamicCache()
            if prefix_embeds is None:
                out = self.model(
                    input_ids=all_ids, use_cache=True, logits_to_keep=1, **{self._cache_kw: cache}
                )
            else:
                embeds = self.model.get_input_embeddings()(all_ids)
                prefix = prefix_embeds.to(embeds.dtype).to(self.device).unsqueeze(0)
                at = virtual_at
                out = self.model(
                    inputs_embeds=torch.cat([embeds[:, :at], prefix, embeds[:, at:]], dim=1),
                    use_cache=True,
                    logits_to_keep=1,
                    **{self._cache_kw: cache},
                )
            while True:
                logits = out.logits[:, -1, :].float()
                scores = processors(all_ids, logits)
                if greedy:
                    token = int(torch.argmax(scores, dim=-1))
                else:
                    probs = torch.softmax(scores, dim=-1)
                    token = int(torch.multinomial(probs, 1, generator=rng))
                if token in self.eos_ids:
                    finish = "stop"
                    break
                timer.token()
                generated.append(token)
                logprob = top = None
                if want_logprobs:
                    row = torch.log_softmax(logits[0], dim=-1).cpu().numpy()
                    logprob = float(row[token])
                    if params.top_logprobs:
                        top = top_from_logprobs(row, params.top_logprobs, self.token_text)
                # incremental detokenisation: emit only text that is complete
                prefix_text = self.tokenizer.decode(
                    generated[prefix_offset:read_offset], skip_special_tokens=True
                )
                new_text = self.tokenizer.decode(
                    generated[prefix_offset:], skip_special_tokens=True
                )
                raw = ""
                if len(new_text) > len(prefix_text) and not new_text.endswith("\ufffd"):
                    raw = new_text[len(prefix_text) :]
                    prefix_offset, read_offset = read_offset, len(generated)
                piece = stops.feed(raw)
                if piece or logprob is not None:
                    pieces.append(piece)
                    yield TokenEvent(piece, token, logprob, top)
                if stops.stopped:
                    finish = "stop"
                    break
                next_ids = torch.tensor([[token]], device=self.device)
                all_ids = torch.cat([all_ids, next_ids], dim=1)
                if bool(stopping(all_ids, scores)[0]):
                    finish = "cancelled"
                    break
                if len(generated) >= budget:
                    break
                out = self.model(input_ids=next_ids, use_cache=True, **{self._cache_kw: cache})
        tail = ""
        if not stops.stopped and read_offset < len(generated):
            rest = self.tokenizer.decode(generated[prefix_offset:], skip_special_tokens=True)
            done = self.tokenizer.decode(
                generated[prefix_offset:read_offset], skip_special_tokens=True
            )
            tail = rest[len(done) :]
        tail = stops.feed(tail) + stops.flush() if not stops.stopped else ""
        if tail:
            pieces.append(tail)
            yield TokenEvent(tail)
        yield Finished("".join(pieces), timer.stats(n_virtual + len(ids), finish), tuple(generated))

    def close(self) -> None:
        self.model = None
        if getattr(self, "device", "cpu") == "cuda":
            self._torch.cuda.empty_cache()
