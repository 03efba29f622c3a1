"""llama.cpp backend (llama-cpp-python): GGUF files, streaming, cancel, logprobs, grammars.

Token log-probabilities are read from the logits of the last decoded position after
each step, so they cost nothing when not asked for and need no `logits_all` (which
would keep n_ctx × vocab floats and force a reload to switch on).
"""

from __future__ import annotations

import codecs
import ctypes
import json
import secrets
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from workbench.core.backends.base import (
    MODEL_JOB_LOCK,
    Backend,
    BackendError,
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
from workbench.core.models import GenerationParams, Message, ModelSpec


class LlamaCppBackend(Backend):
    name = "llama.cpp"

    def __init__(self, spec: ModelSpec, settings: BackendSettings | None = None) -> None:
        super().__init__(spec, settings)
        try:
            import llama_cpp
        except ImportError as exc:  # pragma: no cover - install problem
            raise ModelLoadError(f"llama-cpp-python is not installed: {exc}") from None
        self._llama_cpp = llama_cpp
        try:
            self.llm = llama_cpp.Llama(
                model_path=str(spec.path),
                n_ctx=self.settings.n_ctx,
                n_threads=self.settings.threads,
                n_threads_batch=self.settings.threads,
                verbose=False,
            )
        except MemoryError:
            raise OutOfMemoryError(
                f"out of memory loading model {spec.name!r} with a context of "
                f"{self.settings.n_ctx} tokens; try a smaller context"
            ) from None
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelLoadError(
                f"llama.cpp could not load model {spec.name!r} from {spec.path}: {exc} "
                "(is it a complete, uncorrupted GGUF file?)"
            ) from None
        self._vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        self._n_vocab = self.llm.n_vocab()
        self._formatter = self._chat_formatter()
        self._lora: Any = None  # the LoRA adapter set on the context (llama_adapter_lora_p)
        self.lora_path: Path | None = None

    # -- LoRA adapters ------------------------------------------------------

    def set_lora_adapter(self, path: Path | None, scale: float = 1.0) -> None:
        """Run with the GGUF LoRA adapter at `path` (`lora_gguf.gguf_adapter` makes one
        from a PEFT folder), or without any (`None`): the adapter is set on the loaded
        context, no reload; the KV cache is emptied, as it was computed with the other
        weights. A file llama.cpp refuses raises `BackendError` and leaves the model as
        it was."""
        llama_cpp = self._llama_cpp
        with MODEL_JOB_LOCK, self.lock:
            loaded = None
            if path is not None:
                loaded = llama_cpp.llama_adapter_lora_init(
                    self.llm.model, str(path).encode("utf-8")
                )
                if not loaded:
                    raise BackendError(
                        f"llama.cpp could not load the LoRA adapter {path} for model "
                        f"{self.spec.name!r} (a GGUF LoRA adapter made for this model?)"
                    )
                adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(loaded)
                scales = (ctypes.c_float * 1)(scale)
                code = llama_cpp.llama_set_adapters_lora(self.llm.ctx, adapters, 1, scales)
            else:
                code = llama_cpp.llama_set_adapters_lora(self.llm.ctx, None, 0, None)
            if code != 0:
                if loaded:
                    llama_cpp.llama_adapter_lora_free(loaded)
                raise BackendError(
                    f"llama.cpp could not set the LoRA adapter {path} on model "
                    f"{self.spec.name!r} (llama_set_adapters_lora returned {code})"
                )
            self._free_lora()
            self._lora = loaded
            self.lora_path = Path(path) if path is not None else None
            self._forget_virtual()  # cached keys and values came from the other weights

    def _free_lora(self) -> None:
        if self._lora:
            self._llama_cpp.llama_adapter_lora_free(self._lora)
        self._lora = None

    # -- chat template ------------------------------------------------------

    def _token_text(self, token: int) -> str:
        return str(self.llm.detokenize([token], special=True).decode("utf-8", errors="replace"))

    def _chat_formatter(self) -> Any:
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            return None
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        eos = self.llm.token_eos()
        bos = self.llm.token_bos()
        return Jinja2ChatFormatter(
            template=template,
            eos_token=self._token_text(eos) if eos != -1 else "",
            bos_token=self._token_text(bos) if bos != -1 else "",
            add_generation_prompt=True,
        )

    def apply_chat_template(self, messages: Sequence[Message]) -> str:
        if self._formatter is None:
            # no template in the file: a plain transcript the model can continue
            lines = [f"{m.role}: {m.content}" for m in messages]
            return "\n".join([*lines, "assistant:"])
        result = self._formatter(messages=[m.model_dump() for m in messages])
        return str(result.prompt)

    # -- tokens -----------------------------------------------------------

    @property
    def context_length(self) -> int:
        return int(self.llm.n_ctx())

    @property
    def hidden_size(self) -> int:
        llama_cpp = self._llama_cpp
        n_embd = getattr(llama_cpp, "llama_model_n_embd_inp", llama_cpp.llama_model_n_embd)
        return int(n_embd(self.llm.model))

    def tokenize(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=True))

    def tokenize_tail(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def _logprobs(self) -> Any:
        import numpy as np

        pointer = self._llama_cpp.llama_get_logits_ith(self.llm.ctx, -1)
        logits = np.ctypeslib.as_array(
            ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), shape=(self._n_vocab,)
        ).astype(np.float64)
        shifted = logits - logits.max()
        return shifted - np.log(np.exp(shifted).sum())

    def _grammar(self, params: GenerationParams) -> Any:
        from llama_cpp import LlamaGrammar

        try:
            if params.grammar:
                return LlamaGrammar.from_string(params.grammar, verbose=False)
            if params.json_schema is not None:
                return LlamaGrammar.from_json_schema(json.dumps(params.json_schema), verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise ValueError(f"invalid grammar or JSON schema: {exc}") from None
        return None

    # -- scoring ------------------------------------------------------------

    def _score(self, text: str, continuations: list[str]) -> list[float]:
        prompt = self.tokenize(text)
        pieces = [
            list(self.llm.tokenize(c.encode("utf-8"), add_bos=False, special=False))
            for c in continuations
        ]
        longest = max((len(p) for p in pieces), default=0)
        self.check_fits(len(prompt) + longest, GenerationParams())
        # Reuse the KV cache of the prefix shared with the last call: across a test set
        # the system message and few-shot examples are the same for every case.
        cached = self.llm.input_ids[: self.llm.n_tokens].tolist()
        common = 0
        for a, b in zip(cached, prompt, strict=False):
            if a != b:
                break
            common += 1
        common = min(common, len(prompt) - 1)  # re-decode at least one token for its logits
        self.llm.n_tokens = common
        self.llm.eval(prompt[common:])
        return self._score_pieces(pieces)

    def _score_pieces(self, pieces: list[list[int]]) -> list[float]:
        """Summed log-probs of each token sequence after what is decoded now; the KV of
        each continuation is dropped before the next."""
        after_prompt = self._logprobs()
        n_prompt = self.llm.n_tokens
        scores: list[float] = []
        for ids in pieces:
            row = after_prompt
            total = 0.0
            for i, token in enumerate(ids):
                total += float(row[token])
                if i < len(ids) - 1:
                    self.llm.eval([token])
                    row = self._logprobs()
            scores.append(total)
            self.llm.n_tokens = n_prompt  # the next eval drops the continuation's KV
        return scores

    # -- soft prompts -------------------------------------------------------

    def _decode_virtual(
        self, soft_prompt: Any, want_logits: bool, head: Sequence[int] = ()
    ) -> None:
        """Start afresh with the `head` tokens, then a soft prompt's N embeddings at
        positions H..H+N-1, so the next `llm.eval` / `llm.generate(reset=False)` continues
        at H+N. Asks for logits at the last virtual token only when `want_logits` (no
        text follows)."""
        import numpy as np

        llama_cpp = self._llama_cpp
        llm = self.llm
        embeds = np.ascontiguousarray(soft_prompt, dtype=np.float32)
        n_virtual, width = embeds.shape
        if width != self.hidden_size:  # llama.cpp would read past the rows
            raise BackendError(
                f"soft prompt rows are {width} wide, model {self.spec.name!r} needs "
                f"{self.hidden_size}"
            )
        self._forget_virtual()
        step = max(1, int(llm.n_batch))
        offset = len(head)
        try:
            if head:
                llm.eval(list(head))
            for start in range(0, n_virtual, step):
                chunk = embeds[start : start + step]
                count = int(chunk.shape[0])
                batch = llama_cpp.llama_batch_init(count, width, 1)
                try:
                    ctypes.memmove(batch.embd, chunk.ctypes.data, chunk.nbytes)
                    for i in range(count):
                        batch.pos[i] = offset + start + i
                        batch.n_seq_id[i] = 1
                        batch.seq_id[i][0] = 0
                        batch.logits[i] = 0
                    if want_logits and start + count == n_virtual:
                        batch.logits[count - 1] = 1
                    batch.n_tokens = count
                    code = llama_cpp.llama_decode(llm.ctx, batch)
                finally:
                    llama_cpp.llama_batch_free(batch)
                if code != 0:
                    raise BackendError(
                        f"llama.cpp could not decode the soft prompt's {n_virtual} virtual "
                        f"tokens with model {self.spec.name!r} (llama_decode returned {code})"
                    )
        except BaseException:
            self._forget_virtual()
            raise
        # The KV cache holds embeddings, not tokens, at H..H+N-1: mark them as no token so
        # no prefix match can ever reuse them for a normal prompt.
        llm.input_ids[offset : offset + n_virtual] = -1
        llm.n_tokens = offset + n_virtual

    def _forget_virtual(self) -> None:
        """Empty the KV cache and the token bookkeeping (before and after soft prompts)."""
        llama_cpp = self._llama_cpp
        self.llm.reset()
        memory = llama_cpp.llama_get_memory(self.llm.ctx)
        if memory is not None:
            llama_cpp.llama_memory_clear(memory, True)

    def _stream_soft(
        self,
        head: str,
        tail: str,
        params: GenerationParams,
        cancel: threading.Event,
        soft_prompt: Any,
    ) -> Iterator[StreamEvent]:
        before, after = self.soft_prompt_ids(head, tail)
        return self._stream_tokens(before, after, params, cancel, soft_prompt)

    def _score_soft(
        self, head: str, tail: str, continuations: list[str], soft_prompt: Any
    ) -> list[float]:
        before, prompt = self.soft_prompt_ids(head, tail)
        pieces = [
            list(self.llm.tokenize(c.encode("utf-8"), add_bos=False, special=False))
            for c in continuations
        ]
        longest = max((len(p) for p in pieces), default=0)
        n_virtual = int(soft_prompt.shape[0])
        self.check_fits(len(before) + n_virtual + len(prompt) + longest, GenerationParams())
        try:
            self._decode_virtual(soft_prompt, want_logits=not prompt, head=before)
            if prompt:
                self.llm.eval(prompt)
            return self._score_pieces(pieces)
        finally:
            self._forget_virtual()

    # -- generation ---------------------------------------------------------

    def _stream(
        self, text: str, params: GenerationParams, cancel: threading.Event
    ) -> Iterator[StreamEvent]:
        return self._stream_tokens([], self.tokenize(text), params, cancel, None)

    def _stream_tokens(
        self,
        head: list[int],
        tokens: list[int],
        params: GenerationParams,
        cancel: threading.Event,
        soft_prompt: Any = None,
    ) -> Iterator[StreamEvent]:
        """Generate after `head` tokens, the soft prompt's virtual tokens (if any) and
        `tokens`."""
        timer = Timer()
        n_before = 0 if soft_prompt is None else len(head) + int(soft_prompt.shape[0])
        self.check_fits(n_before + len(tokens), params)
        budget = min(params.max_new_tokens, self.context_length - n_before - len(tokens))
        grammar = self._grammar(params)
        self.llm.set_seed(params.seed if params.seed is not None else secrets.randbits(31))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stops = StopMatcher(params.stop)
        generated: list[int] = []
        pieces: list[str] = []
        finish = "length"
        if cancel.is_set():
            yield Finished("", timer.stats(n_before + len(tokens), "cancelled"))
            return
        # Evaluate the whole prompt afresh: reusing a cached prefix re-decodes its last
        # token in a smaller batch, which shifts logits slightly and breaks seeded replay.
        self.llm.reset()
        if soft_prompt is not None:  # head, virtual tokens, then the rest of the prompt
            self._decode_virtual(soft_prompt, want_logits=not tokens, head=head)
        generator = self.llm.generate(
            tokens,
            top_k=params.top_k,
            top_p=params.top_p,
            min_p=0.0,
            typical_p=1.0,
            temp=params.temperature,
            repeat_penalty=params.repetition_penalty,
            grammar=grammar,
            reset=soft_prompt is None,
        )
        try:
            for token in generator:
                if self._llama_cpp.llama_vocab_is_eog(self._vocab, token):
                    finish = "stop"
                    break
                timer.token()
                generated.append(token)
                logprob = top = None
                if params.logprobs or params.top_logprobs:
                    row = self._logprobs()
                    logprob = float(row[token])
                    if params.top_logprobs:
                        top = top_from_logprobs(row, params.top_logprobs, self._token_text)
                raw = decoder.decode(self.llm.detokenize([token]))
                piece = stops.feed(raw)
                if piece or logprob is not None:
                    pieces.append(piece)
                    yield TokenEvent(piece, token, logprob, top)
                if stops.stopped:
                    finish = "stop"
                    break
                if cancel.is_set():
                    finish = "cancelled"
                    break
                if len(generated) >= budget:
                    finish = "length"
                    break
        finally:
            generator.close()
            if soft_prompt is not None:
                self._forget_virtual()  # later calls must not see the virtual tokens
        tail = stops.flush() + ("" if stops.stopped else decoder.decode(b"", final=True))
        if tail:
            pieces.append(tail)
            yield TokenEvent(tail)
        yield Finished(
            "".join(pieces), timer.stats(n_before + len(tokens), finish), tuple(generated)
        )

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None:
            if getattr(self, "_lora", None):
                self._llama_cpp.llama_set_adapters_lora(llm.ctx, None, 0, None)
                self._free_lora()
            llm.close()
            self.llm = None
