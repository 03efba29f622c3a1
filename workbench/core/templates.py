"""Templates: sandboxed Jinja2 into chat messages, variable discovery, positioned errors.

Templates may come from imported libraries, so they are untrusted: rendering uses
Jinja2's immutable sandbox with StrictUndefined and a work budget (`core/sandbox.py`:
value sizes, message size, loop iterations), and every failure (syntax, missing
variable, sandbox violation, a limit exceeded) becomes a `TemplateError` carrying the
field, line and column it happened at. Every render path — preview, run, evaluation,
few-shot formats, chain steps, training data, exports — goes through `render_template`.
"""

from __future__ import annotations

import random
import re
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache, wraps
from typing import ParamSpec, TypeVar

import jinja2
from jinja2 import meta, nodes
from jinja2.exceptions import SecurityError

from workbench.core.models import CoTMode, FewShot, FewShotOrder, FewShotStyle, Message, Prompt
from workbench.core.sandbox import (
    BudgetedSandbox,
    RenderLimitExceeded,
    budget_scope,
    count_loops,
    render_limits,
    template_risks,
)

_TEMPLATE_NAME = "<template>"


class TemplateError(ValueError):
    """A template could not be parsed or rendered. Positions are 1-based and lie in the
    template named by `field`; `example` is the 0-based few-shot example whose values
    the template failed on (its user turn is the user template rendered with them)."""

    def __init__(
        self,
        message: str,
        *,
        field: str = "template",
        line: int = 1,
        column: int = 1,
        example: int | None = None,
    ):
        self.message = message
        self.field = field
        self.line = line
        self.column = column
        self.example = example
        super().__init__(f"{field}, line {line}, column {column}: {message}")


@cache
def environment() -> BudgetedSandbox:
    """The one Jinja2 environment: sandboxed, immutable, strict about undefined names."""
    return BudgetedSandbox(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        auto_reload=False,
    )


def _line_text(source: str, line: int) -> str:
    lines = source.splitlines()
    return lines[line - 1] if 0 < line <= len(lines) else ""


def _guess_column(source: str, line: int, message: str, needle: str | None = None) -> int:
    """Best column for an error on `line`: the quoted token or name from the message,
    else the first tag opening on the line."""
    text = _line_text(source, line)
    candidates = [needle] if needle else []
    candidates += re.findall(r"'([^']+)'", message)
    for token in candidates:
        if token:
            idx = text.find(token)
            if idx >= 0:
                return idx + 1
    for opener in ("{{", "{%", "{#"):
        idx = text.find(opener)
        if idx >= 0:
            return idx + 1
    return 1


def _template_line_from_traceback(exc: BaseException) -> int | None:
    """Jinja rewrites tracebacks so template frames carry template line numbers."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == _TEMPLATE_NAME and frame.lineno:
            line = frame.lineno
    return line


def _first_occurrence(source: str, name: str) -> tuple[int, int]:
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    for number, text in enumerate(source.splitlines(), start=1):
        for match in pattern.finditer(text):
            # only inside an expression or statement, not in literal text
            before = text[: match.start()]
            if before.rfind("{{") > before.rfind("}}") or before.rfind("{%") > before.rfind("%}"):
                return number, match.start() + 1
    return 1, 1


def _parse(source: str, field: str) -> nodes.Template:
    try:
        return environment().parse(source, name=_TEMPLATE_NAME)
    except jinja2.TemplateSyntaxError as exc:
        line = exc.lineno or 1
        raise TemplateError(
            exc.message or "syntax error",
            field=field,
            line=line,
            column=_guess_column(source, line, exc.message or ""),
        ) from None


@cache
def _compile(source: str) -> jinja2.Template:
    env = environment()
    code = env.compile(count_loops(env.parse(source, name=_TEMPLATE_NAME)), _TEMPLATE_NAME)
    return env.template_class.from_code(env, code, env.make_globals(None))


_P = ParamSpec("_P")
_R = TypeVar("_R")


def one_budget(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """All templates rendered inside `function` share one render budget."""

    @wraps(function)
    def budgeted(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with budget_scope():
            return function(*args, **kwargs)

    return budgeted


def template_problems(source: str, field: str = "template") -> list[str]:
    """Why this template would certainly exceed the render limits, judged without
    running it (for imports); a template that does not parse reports that."""
    try:
        tree = _parse(source, field)
    except TemplateError as exc:
        return [str(exc)]
    return [f"{field}, {risk}" for risk in template_risks(tree)]


def prompt_template_problems(prompt: Prompt) -> list[str]:
    """Every template of a prompt checked statically (`template_problems`): what an
    import preview shows before anything is written or rendered."""
    sources = [("system", prompt.system), ("user_template", prompt.user_template)]
    sources.append(("few_shot.example_format", prompt.few_shot.example_format))
    sources.append(("cot.scaffold", prompt.cot.scaffold))
    for i, step in enumerate(prompt.cot.steps):
        sources.append((f"cot.steps.{i}.template", step.template))
        if step.system:
            sources.append((f"cot.steps.{i}.system", step.system))
    return [
        f"{prompt.name!r}: {problem}"
        for field, source in sources
        if source
        for problem in template_problems(source, field)
    ]


def _render_capped(template: jinja2.Template, values: Mapping[str, object]) -> str:
    """The rendered text, read piece by piece: stops at the message-size limit instead of
    building a text of any size."""
    limit = render_limits().max_message_size
    pieces: list[str] = []
    size = 0
    for piece in template.generate(**values):
        size += len(piece)
        if size > limit:
            raise RenderLimitExceeded("the rendered message", size, "max_message_size", limit)
        pieces.append(piece)
    return "".join(pieces)


@lru_cache(maxsize=1024)
def _variables_of(source: str) -> tuple[str, ...]:
    tree = _parse(source, "template")
    undeclared = meta.find_undeclared_variables(tree)
    ordered: list[str] = []
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name in undeclared and node.name not in ordered:
            ordered.append(node.name)
    return tuple(ordered)


def template_variables(source: str, field: str = "template") -> list[str]:
    """The variables a template reads, in order of first appearance. Remembered per
    template text: one template is asked for every example and case it renders (a
    graduation's data summary rendered the same two templates 500 times)."""
    try:
        return list(_variables_of(source))
    except TemplateError:
        _parse(source, field)  # the same error again, naming the caller's field
        raise


def check_template(source: str, field: str = "template") -> None:
    """Raise TemplateError if the template does not parse."""
    _parse(source, field)


def render_template(source: str, values: Mapping[str, object], field: str = "template") -> str:
    """Render one template in the sandbox; every failure is a positioned TemplateError."""
    needed = template_variables(source, field)
    missing = [name for name in needed if name not in values]
    if missing:
        line, column = _first_occurrence(source, missing[0])
        names = ", ".join(repr(m) for m in missing)
        raise TemplateError(f"no value for variable {names}", field=field, line=line, column=column)
    try:
        with budget_scope():
            return _render_capped(_compile(source), values)
    except RenderLimitExceeded as exc:
        line = _template_line_from_traceback(exc) or 1
        raise TemplateError(
            str(exc), field=field, line=line, column=_guess_column(source, line, str(exc))
        ) from None
    except SecurityError as exc:
        line = _template_line_from_traceback(exc) or 1
        raise TemplateError(
            f"blocked by the sandbox: {exc}",
            field=field,
            line=line,
            column=_guess_column(source, line, str(exc)),
        ) from None
    except jinja2.TemplateError as exc:
        line = _template_line_from_traceback(exc) or getattr(exc, "lineno", None) or 1
        message = getattr(exc, "message", None) or str(exc)
        raise TemplateError(
            message, field=field, line=line, column=_guess_column(source, line, message)
        ) from None
    except Exception as exc:  # errors raised by filters on bad data, e.g. int("x")
        line = _template_line_from_traceback(exc) or 1
        raise TemplateError(
            f"{type(exc).__name__}: {exc}",
            field=field,
            line=line,
            column=_guess_column(source, line, str(exc)),
        ) from None


# ---------------------------------------------------------------------------
# Prompts → chat messages


def prompt_variables(prompt: Prompt) -> list[str]:
    """Every variable a prompt needs from the user, in order of first appearance."""
    names: list[str] = []

    def add(found: Iterable[str], exclude: set[str] | frozenset[str] = frozenset()) -> None:
        for name in found:
            if name not in exclude and name not in names:
                names.append(name)

    add(template_variables(prompt.system, "system"))
    if prompt.cot.mode is CoTMode.CHAIN:
        step_names = {s.name for s in prompt.cot.steps}
        for i, step in enumerate(prompt.cot.steps):
            add(template_variables(step.template, f"cot.steps.{i}.template"), step_names)
            if step.system:
                add(template_variables(step.system, f"cot.steps.{i}.system"), step_names)
    else:
        add(template_variables(prompt.user_template, "user_template"))
        if prompt.cot.mode is CoTMode.SCAFFOLD:
            add(template_variables(prompt.cot.scaffold, "cot.scaffold"), {"user"})
    return names


def resolve_values(prompt: Prompt, values: Mapping[str, str]) -> dict[str, str]:
    """User values over declared defaults."""
    merged = {v.name: v.default for v in prompt.variables if v.default is not None}
    merged.update(values)
    return merged


def select_examples(few_shot: FewShot) -> list[int]:
    """Indices of the examples to include, in the order they are shown."""
    indices = list(range(len(few_shot.examples)))
    if few_shot.order is FewShotOrder.RANDOM:
        random.Random(few_shot.seed).shuffle(indices)
    count = len(indices) if few_shot.count is None else few_shot.count
    indices = indices[:count]
    if few_shot.order is FewShotOrder.REVERSED:
        indices.reverse()
    return indices


def example_user_text(prompt: Prompt, index: int) -> str:
    """An example's user turn: its input, or the user template rendered with its values.

    A fault of the template itself (it does not parse) is the user template's, at its
    own line and column; a render that fails on this example's values still points into
    the user template, and says which example's values it failed on."""
    example = prompt.few_shot.examples[index]
    if not example.vars:
        return example.input
    check_template(prompt.user_template, "user_template")
    try:
        return render_template(prompt.user_template, example.vars, "user_template")
    except TemplateError as exc:
        raise TemplateError(
            f"few-shot example {index + 1}: {exc.message}",
            field="user_template",
            line=exc.line,
            column=exc.column,
            example=index,
        ) from None


def _join(*parts: str) -> str:
    return "\n\n".join(p for p in parts if p)


@one_budget
def render_messages(prompt: Prompt, values: Mapping[str, str]) -> list[Message]:
    """The chat messages for one call of a (non-chain) prompt, before the model's chat template.

    For a chain, this renders its first step; use `render_chain_step` for the others.
    """
    if prompt.cot.mode is CoTMode.CHAIN:
        if not prompt.cot.steps:
            raise TemplateError("the chain has no steps", field="cot.steps")
        return render_chain_step(prompt, values, 0, {})
    merged = resolve_values(prompt, values)
    messages: list[Message] = []
    system = render_template(prompt.system, merged, "system")
    if system:
        messages.append(Message(role="system", content=system))

    few_shot = prompt.few_shot
    chosen = select_examples(few_shot)
    inline_block = ""
    if chosen and few_shot.style is FewShotStyle.CHAT:
        for i in chosen:
            messages.append(Message(role="user", content=example_user_text(prompt, i)))
            messages.append(Message(role="assistant", content=few_shot.examples[i].output))
    elif chosen:
        rendered = []
        for i in chosen:
            example = few_shot.examples[i]
            example_values = {
                **example.vars,
                "input": example_user_text(prompt, i),
                "output": example.output,
            }
            rendered.append(
                render_template(few_shot.example_format, example_values, "few_shot.example_format")
            )
        inline_block = _join(few_shot.inline_header, few_shot.separator.join(rendered))

    user = render_template(prompt.user_template, merged, "user_template")
    if prompt.cot.mode is CoTMode.ZERO_SHOT:
        user = _join(user, prompt.cot.trigger)
    elif prompt.cot.mode is CoTMode.SCAFFOLD:
        user = render_template(prompt.cot.scaffold, {**merged, "user": user}, "cot.scaffold")
    messages.append(Message(role="user", content=_join(inline_block, user)))
    return messages


@one_budget
def render_chain_step(
    prompt: Prompt, values: Mapping[str, str], index: int, outputs: Mapping[str, str]
) -> list[Message]:
    """Messages for step `index` of a chain; `outputs` holds earlier steps' outputs by name."""
    steps = prompt.cot.steps
    if not 0 <= index < len(steps):
        raise TemplateError(f"the chain has no step {index + 1}", field="cot.steps")
    step = steps[index]
    later = {s.name for s in steps[index:]}
    early_use = later & set(template_variables(step.template, f"cot.steps.{index}.template"))
    if early_use:
        name = sorted(early_use)[0]
        line, column = _first_occurrence(step.template, name)
        raise TemplateError(
            f"step {step.name!r} uses the output of step {name!r}, which has not run yet",
            field=f"cot.steps.{index}.template",
            line=line,
            column=column,
        )
    merged = {**resolve_values(prompt, values), **outputs}
    messages: list[Message] = []
    system_source = step.system if step.system is not None else prompt.system
    system = render_template(system_source, merged, f"cot.steps.{index}.system")
    if system:
        messages.append(Message(role="system", content=system))
    user = render_template(step.template, merged, f"cot.steps.{index}.template")
    messages.append(Message(role="user", content=user))
    return messages


def extract_answer(prompt: Prompt, output: str) -> str:
    """The final answer in a chain-of-thought output (the pattern's first group), else all."""
    if prompt.cot.mode in (CoTMode.ZERO_SHOT, CoTMode.SCAFFOLD) and prompt.cot.answer_pattern:
        matches = list(re.finditer(prompt.cot.answer_pattern, output))
        if matches:
            match = matches[-1]
            return (match.group(1) if match.groups() else match.group(0)).strip()
    return output.strip()


@dataclass(frozen=True)
class RenderedStep:
    name: str
    messages: list[Message]


@one_budget
def render_preview(prompt: Prompt, values: Mapping[str, str]) -> list[RenderedStep]:
    """Everything the model will see for a prompt; chain steps show placeholders for
    the outputs of earlier steps (which exist only once the chain runs)."""
    if prompt.cot.mode is not CoTMode.CHAIN:
        return [RenderedStep("", render_messages(prompt, values))]
    rendered: list[RenderedStep] = []
    outputs: dict[str, str] = {}
    for i, step in enumerate(prompt.cot.steps):
        rendered.append(RenderedStep(step.name, render_chain_step(prompt, values, i, outputs)))
        outputs[step.name] = f"<output of step {step.name}>"
    if not rendered:
        raise TemplateError("the chain has no steps", field="cot.steps")
    return rendered
