"""The template sandbox with a budget: no template, however hostile, hangs or exhausts
the program.

Jinja2's immutable sandbox already blocks escapes (`__class__`, `__globals__` …) but
bounds no work. This environment also refuses, *before* building it, any value larger
than `RenderLimits.max_value_size` (characters of a string, items of a list): string and
list repetition and concatenation, `format` widths and precisions, `%`-formatting,
padding filters and methods (`center`, `indent`, `ljust`, `zfill` …), `join`,
`replace`; it counts loop iterations and calls across a whole render against
`max_iterations`; and `templates.render_template` stops reading output beyond
`max_message_size`. Exceeding a limit raises `RenderLimitExceeded`, which
`render_template` turns into a positioned `TemplateError` naming the limit.

The limits are a setting (`templates` in the config folder's settings.json) and can be
changed for a process with `set_render_limits`. `template_risks` finds the same
problems statically (literal repetition counts, widths) for the import preview, without
running anything.
"""

from __future__ import annotations

import contextvars
import json
import re
import string
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields, replace
from functools import wraps
from pathlib import Path
from typing import Any

from jinja2 import nodes, pass_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment


@dataclass(frozen=True)
class RenderLimits:
    """How much work one render may do. Generous for real prompts (a 2 MB document in a
    variable is fine), small enough that the worst template is refused within a second."""

    max_value_size: int = 4_000_000  # characters of a string / items of a list, any value
    max_message_size: int = 4_000_000  # characters of one rendered message
    max_iterations: int = 100_000  # loop iterations and calls, all loops of a render together


SETTINGS_KEY = "templates"


class RenderLimitExceeded(Exception):
    """A template tried to do more than `RenderLimits` allows."""

    def __init__(self, what: str, size: int, limit_name: str, limit: int) -> None:
        self.limit_name = limit_name
        super().__init__(
            f"{what} would be {size:,} — over the render limit {limit_name} = {limit:,} "
            f"(settings.json: {SETTINGS_KEY}.{limit_name})"
        )


_limits: dict[str, RenderLimits] = {}


def load_render_limits(folder: Path | None = None) -> RenderLimits:
    """The limits saved in settings.json (`{"templates": {"max_value_size": …}}`); the
    defaults where unset or unreadable."""
    from workbench.core.paths import config_dir

    defaults = RenderLimits()
    try:
        raw = json.loads(((folder or config_dir()) / "settings.json").read_text("utf-8"))
        saved = raw.get(SETTINGS_KEY, {}) if isinstance(raw, dict) else {}
        known = {f.name for f in fields(RenderLimits)}
        values = {
            k: int(v) for k, v in saved.items() if k in known and isinstance(v, int) and v > 0
        }
        return replace(defaults, **values)
    except (OSError, ValueError, TypeError, AttributeError):
        return defaults


def render_limits() -> RenderLimits:
    """The limits in force (read from the settings on first use)."""
    if "current" not in _limits:
        _limits["current"] = load_render_limits()
    return _limits["current"]


def set_render_limits(limits: RenderLimits | None) -> None:
    """Use these limits from now on in this process (None: read the settings again)."""
    if limits is None:
        _limits.pop("current", None)
    else:
        _limits["current"] = limits


# ---------------------------------------------------------------------------
# The budget of one render


class _Budget:
    def __init__(self, limits: RenderLimits) -> None:
        self.limits = limits
        self.steps = 0

    def step(self, count: int = 1) -> None:
        self.steps += count
        if self.steps > self.limits.max_iterations:
            raise RenderLimitExceeded(
                "loop iterations and calls of this render",
                self.steps,
                "max_iterations",
                self.limits.max_iterations,
            )


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "workbench_render_budget", default=None
)


class budget_scope:
    """One render's budget: renders nested inside share the outer one."""

    def __init__(self, limits: RenderLimits | None = None) -> None:
        self._limits = limits
        self._token: contextvars.Token[_Budget | None] | None = None

    def __enter__(self) -> _Budget:
        current = _budget.get()
        if current is not None:
            return current
        budget = _Budget(self._limits or render_limits())
        self._token = _budget.set(budget)
        return budget

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _budget.reset(self._token)


def _current() -> _Budget:
    budget = _budget.get()
    return budget if budget is not None else _Budget(render_limits())


def _check_size(what: str, size: int) -> None:
    limit = _current().limits.max_value_size
    if size > limit:
        raise RenderLimitExceeded(what, size, "max_value_size", limit)


def _sized(value: Any) -> int | None:
    if isinstance(value, str | bytes | list | tuple | dict | set | frozenset):
        return len(value)
    return None


def _check_result(value: Any, what: str) -> Any:
    size = _sized(value)
    if size is not None:
        _check_size(what, size)
    return value


def _check_number(value: Any, what: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        _check_size(what, value)


# ---------------------------------------------------------------------------
# Checks before the work


def _repeat_size(left: Any, right: Any) -> int | None:
    for seq, count in ((left, right), (right, left)):
        if _sized(seq) is not None and isinstance(count, int) and not isinstance(count, bool):
            return len(seq) * max(count, 0)
    return None


def _pow_bits(base: Any, exponent: Any) -> int | None:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
        return max(abs(base).bit_length(), 1) * exponent
    return None


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")


def _check_percent_format(fmt: str, args: Any) -> None:
    uses_star = False
    for match in _PERCENT_SPEC.finditer(fmt):
        for group in match.groups():
            if group == "*":
                uses_star = True
            elif group:
                _check_number(int(group), "a %-format width or precision")
    if uses_star:
        for value in args if isinstance(args, tuple) else (args,):
            _check_number(value, "a %-format width or precision")


def _check_format_string(fmt: str, args: Iterable[Any]) -> None:
    """Widths and precisions in a str.format() string, nested ones from the arguments."""
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError:
        return  # str.format itself will say what is wrong
    for _, _, spec, _ in parsed:
        if not spec:
            continue
        if "{" in spec:
            for value in args:
                _check_number(value, "a format width or precision")
        for number in re.findall(r"\d+", spec):
            _check_number(int(number), "a format width or precision")


def _check_join(items: Any, separator: Any) -> None:
    if _sized(items) is None or not isinstance(separator, str):
        return
    total = len(separator) * max(len(items) - 1, 0)
    total += sum(len(x) if isinstance(x, str) else 1 for x in items)
    _check_size("the joined text", total)


def _check_replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        found = text.count(old) if old else len(text) + 1
        if isinstance(count, int) and count >= 0:
            found = min(found, count)
        _check_size("the replaced text", len(text) + found * (len(new) - len(old)))


_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


def _check_str_method(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    method = getattr(method, "__wrapped__", method)  # the sandbox wraps str.format
    owner = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "")
    if not isinstance(owner, str):
        return
    if name == "format":
        _check_format_string(owner, (*args, *kwargs.values()))
    elif name == "format_map" and args and isinstance(args[0], dict):
        _check_format_string(owner, tuple(args[0].values()))
    elif name in _WIDTH_METHODS:
        for value in (*args, *kwargs.values()):
            _check_number(value, f"the width passed to str.{name}()")
    elif name == "join" and args:
        _check_join(args[0], owner)  # `call` made it a list: an iterator is read once
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, args[0], args[1], args[2] if len(args) > 2 else -1)


def _filter_guard(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that checks the numbers and texts that size its output first, and then
    the size of its result."""
    numeric_args = name in {"center", "indent", "wordwrap", "truncate", "batch", "slice", "tojson"}
    offset = 1 if getattr(function, "jinja_pass_arg", None) is not None else 0

    @wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        head, values = args[:offset], list(args[offset:])
        if numeric_args:
            for value in (*values[1:], *kwargs.values()):
                _check_number(value, f"the width or count passed to |{name}")
        text = values[0] if values and isinstance(values[0], str) else None
        if name == "indent" and text is not None:
            width = values[1] if len(values) > 1 else kwargs.get("width", 4)
            width_size = len(width) if isinstance(width, str) else width
            if isinstance(width_size, int):
                lines = text.count("\n") + 1
                _check_size("the indented text", len(text) + lines * max(width_size, 0))
        elif name == "wordwrap" and text is not None:
            wrap = values[3] if len(values) > 3 else kwargs.get("wrapstring")
            if isinstance(wrap, str):
                _check_size("the wrapped text", len(text) * (1 + len(wrap)))
        elif name == "join" and values:
            if not isinstance(values[0], list | tuple | str):
                values[0] = list(values[0])
            _check_join(values[0], values[1] if len(values) > 1 else kwargs.get("d", ""))
        elif name == "replace" and len(values) >= 3:
            count = values[3] if len(values) > 3 else -1
            _check_replace(values[0], values[1], values[2], count)
        elif name == "format" and text is not None:
            _check_percent_format(text, tuple(values[1:]) or tuple(kwargs.values()))
        result = function(*head, *values, **kwargs)
        return _check_result(result, f"the result of |{name}")

    return guarded


# ---------------------------------------------------------------------------
# The environment


class _BudgetedCodeGenerator(CodeGenerator):  # type: ignore[misc]
    """Concatenation (`~`) goes through the environment, which checks the size."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.budgeted_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BudgetedSandbox(ImmutableSandboxedEnvironment):  # type: ignore[misc]
    """The immutable sandbox, with every way to build a big value or loop long checked."""

    code_generator_class = _BudgetedCodeGenerator
    intercepted_binops = frozenset({"*", "+", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["lipsum"] = _guarded_lipsum(self.globals["lipsum"])
        filters: dict[str, Callable[..., Any]] = self.filters  # type: ignore[has-type]
        self.filters = {name: _filter_guard(name, f) for name, f in filters.items()}
        self.filters[LOOP_FILTER] = _counted

    def call_binop(self, context: Context, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "*":
            size = _repeat_size(left, right)
            if size is not None:
                _check_size("a repeated value", size)
        elif operator_ == "+":
            if _sized(left) is not None and _sized(right) is not None:
                _check_size("a concatenated value", len(left) + len(right))
        elif operator_ == "**":
            bits = _pow_bits(left, right)
            if bits is not None:
                _check_size("a power's digits", bits // 3)
        elif operator_ == "%" and isinstance(left, str):
            _check_percent_format(left, right)
        return _check_result(self.binop_table[operator_](left, right), "the result")

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _current()
        budget.step()
        if isinstance(__obj, LoopContext) and args:  # `loop(children)` in a recursive loop
            args = (_counted_by(budget, args[0]), *args[1:])
        method = getattr(getattr(__obj, "__wrapped__", __obj), "__name__", "")
        if method == "join" and args and not isinstance(args[0], list | tuple | str):
            args = (list(args[0]), *args[1:])  # checked and joined: read the iterator once
        _check_str_method(__obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        return _check_result(result, "the result of a call")

    def budgeted_concat(self, parts: Iterable[Any]) -> str:
        pieces = [str(part) for part in parts]
        _check_size("a concatenated text", sum(len(p) for p in pieces))
        return "".join(pieces)


def _guarded_lipsum(lipsum: Callable[..., Any]) -> Callable[..., Any]:
    """lipsum(n=10**9) would write for ever: n paragraphs of up to `max` words each."""

    @wraps(lipsum)
    def guarded(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> Any:
        if isinstance(n, int) and isinstance(max, int):
            _check_size("lorem ipsum words", n * max)
        return lipsum(n, html, min, max)

    return guarded


LOOP_FILTER = "workbench_loop_budget"


@pass_context  # type: ignore[untyped-decorator]  # never folded into a constant
def _counted(context: Context, iterable: Any) -> Iterator[Any]:
    return _counted_by(_current(), iterable)


def _counted_by(budget: _Budget, iterable: Any) -> Iterator[Any]:
    for item in iterable:
        budget.step()
        yield item


def count_loops(tree: nodes.Template) -> nodes.Template:
    """Every `{% for %}` iterates through the loop budget (a filter wrapping its iterable;
    a recursive loop's `loop(children)` calls are counted in `BudgetedSandbox.call`)."""
    for loop in tree.find_all(nodes.For):
        loop.iter = nodes.Filter(loop.iter, LOOP_FILTER, [], [], None, None, lineno=loop.lineno)
    return tree


# ---------------------------------------------------------------------------
# Static checks, for the import preview: nothing runs


def _const(node: nodes.Node) -> Any:
    return node.value if isinstance(node, nodes.Const) else None


def _literal_size(node: nodes.Node) -> int | None:
    if isinstance(node, nodes.Const) and isinstance(node.value, str):
        return len(node.value)
    if isinstance(node, nodes.List | nodes.Tuple):
        return len(node.items)
    return None


def template_risks(tree: nodes.Template, limits: RenderLimits | None = None) -> list[str]:
    """What this template would certainly exceed, judged from its literals alone:
    `'a' * 100000000`, `|center(50000000)`, `'{:>50000000}'.format(…)`, `9 ** 9 ** 9`,
    ranges over the loop budget."""
    limits = limits or render_limits()
    cap = limits.max_value_size
    risks: list[str] = []

    def note(node: nodes.Node, text: str) -> None:
        risks.append(f"line {getattr(node, 'lineno', 1)}: {text}")

    for node in tree.find_all(nodes.Mul):
        for seq, count in ((node.left, node.right), (node.right, node.left)):
            size, times = _literal_size(seq), _const(count)
            if size is not None and isinstance(times, int) and size * times > cap:
                note(node, f"repeats a value to {size * times:,} items (max_value_size {cap:,})")
    for node in tree.find_all(nodes.Pow):
        bits = _pow_bits(_const(node.left), _const(node.right))
        if bits is not None and bits // 3 > cap:
            note(node, f"raises to a power of about {bits // 3:,} digits")
    for node in tree.find_all(nodes.Filter):
        if node.name in {"center", "indent", "wordwrap", "batch", "slice"}:
            for arg in [*node.args, *(kw.value for kw in node.kwargs)]:
                value = _const(arg)
                if isinstance(value, int) and value > cap:
                    note(node, f"|{node.name}({value:,}) is over max_value_size {cap:,}")
    for node in tree.find_all(nodes.Const):
        if isinstance(node.value, str):
            for number in re.findall(r"[:%][^}\s]*?(\d{7,})", node.value):
                if int(number) > cap:
                    note(node, f"a format width of {int(number):,} (max_value_size {cap:,})")
    for node in tree.find_all(nodes.Call):
        if isinstance(node.node, nodes.Name) and node.node.name == "range":
            bounds = [_const(a) for a in node.args]
            if bounds and all(isinstance(b, int) for b in bounds):
                try:
                    length = len(range(*bounds))
                except (TypeError, ValueError):
                    continue
                if length > limits.max_iterations:
                    note(
                        node,
                        f"range of {length:,} items (max_iterations {limits.max_iterations:,})",
                    )
    return risks


__all__ = [
    "BudgetedSandbox",
    "RenderLimitExceeded",
    "RenderLimits",
    "budget_scope",
    "count_loops",
    "load_render_limits",
    "render_limits",
    "set_render_limits",
    "template_risks",
]
