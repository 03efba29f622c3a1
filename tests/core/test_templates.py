"""Template rendering: variables, few-shot, CoT modes, sandbox escapes, positioned errors."""

from __future__ import annotations

import pytest

from workbench.core.models import (
    ChainOfThought,
    ChainStep,
    CoTMode,
    FewShot,
    FewShotExample,
    FewShotOrder,
    FewShotStyle,
    Prompt,
    Variable,
)
from workbench.core.templates import (
    TemplateError,
    extract_answer,
    prompt_variables,
    render_chain_step,
    render_messages,
    render_preview,
    render_template,
    template_variables,
)


def test_variables_in_order_of_first_appearance() -> None:
    src = "{{ b }} and {{ a }} then {{ b | upper }} {% for x in items %}{{ x }}{% endfor %}"
    assert template_variables(src) == ["b", "a", "items"]


def test_render_simple() -> None:
    assert render_template("Hi {{ name }}!", {"name": "Ada"}) == "Hi Ada!"


def test_missing_variable_names_it_with_position() -> None:
    with pytest.raises(TemplateError) as info:
        render_template("line one\nHello {{ who }}", {}, field="user_template")
    err = info.value
    assert "who" in err.message
    assert (err.field, err.line, err.column) == ("user_template", 2, 10)


def test_syntax_error_has_line_and_column() -> None:
    with pytest.raises(TemplateError) as info:
        template_variables("ok\nfine\n{{ broken ", field="system")
    err = info.value
    assert err.field == "system"
    assert err.line == 3
    assert err.column == 1
    assert "line 3" in str(err)


def test_unknown_tag_is_a_template_error() -> None:
    with pytest.raises(TemplateError) as info:
        template_variables("x {% frobnicate %}")
    assert info.value.column == 6  # points at the unknown tag's name


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ x.__class__.__base__.__subclasses__() }}",
        "{{ x.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "{{ self._TemplateReference__context }}",
        "{{ ''.format.__self__ }}",
        "{{ items.append(1) }}",
        "{{ (1).__class__.__subclasses__() }}",
    ],
)
def test_sandbox_escapes_are_blocked(source: str) -> None:
    with pytest.raises(TemplateError) as info:
        render_template(source, {"x": "a", "items": ["a"]})
    text = str(info.value).lower()
    assert any(word in text for word in ("sandbox", "unsafe", "undefined", "no attribute"))


def test_filter_error_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="line 2"):
        render_template("a\n{{ 1 / n }}", {"n": 0})


def _prompt(**kw) -> Prompt:
    base = {
        "name": "p",
        "system": "You label reviews.",
        "user_template": "Review: {{ review }}",
    }
    base.update(kw)
    return Prompt.model_validate(base)


EXAMPLES = [
    FewShotExample(vars={"review": "love it"}, output="positive"),
    FewShotExample(vars={"review": "broke"}, output="negative"),
    FewShotExample(input="Review: meh", output="neutral"),
]


def test_plain_prompt_renders_system_and_user() -> None:
    messages = render_messages(_prompt(), {"review": "fine"})
    assert [(m.role, m.content) for m in messages] == [
        ("system", "You label reviews."),
        ("user", "Review: fine"),
    ]


def test_declared_default_fills_missing_value() -> None:
    prompt = _prompt(variables=[Variable(name="review", default="n/a")])
    assert render_messages(prompt, {})[-1].content == "Review: n/a"


def test_few_shot_as_chat_turns() -> None:
    prompt = _prompt(few_shot=FewShot(examples=EXAMPLES))
    roles = [m.role for m in render_messages(prompt, {"review": "ok"})]
    assert roles == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    contents = [m.content for m in render_messages(prompt, {"review": "ok"})]
    assert contents[1] == "Review: love it"  # vars rendered through the user template
    assert contents[5] == "Review: meh"  # plain input used as-is


def test_few_shot_count_and_order() -> None:
    prompt = _prompt(few_shot=FewShot(examples=EXAMPLES, count=2, order=FewShotOrder.REVERSED))
    contents = [m.content for m in render_messages(prompt, {"review": "ok"})]
    assert contents[1:5] == ["Review: broke", "negative", "Review: love it", "positive"]
    shuffled = _prompt(few_shot=FewShot(examples=EXAMPLES, order=FewShotOrder.RANDOM, seed=3))
    first = render_messages(shuffled, {"review": "ok"})
    assert first == render_messages(shuffled, {"review": "ok"})  # seeded: reproducible
    assert sorted(m.content for m in first if m.role == "assistant") == [
        "negative",
        "neutral",
        "positive",
    ]


def test_few_shot_inline_block() -> None:
    prompt = _prompt(
        few_shot=FewShot(
            examples=EXAMPLES[:2],
            style=FewShotStyle.INLINE,
            example_format="{{ input }} => {{ output }}",
        )
    )
    messages = render_messages(prompt, {"review": "ok"})
    assert [m.role for m in messages] == ["system", "user"]
    assert messages[1].content == (
        "Examples:\n\nReview: love it => positive\n\nReview: broke => negative\n\nReview: ok"
    )


def test_zero_shot_trigger_and_scaffold() -> None:
    zero = _prompt(cot=ChainOfThought(mode=CoTMode.ZERO_SHOT, trigger="Think first."))
    assert render_messages(zero, {"review": "x"})[-1].content == "Review: x\n\nThink first."
    scaffold = _prompt(
        cot=ChainOfThought(
            mode=CoTMode.SCAFFOLD, scaffold="Task:\n{{ user }}\nSteps for {{ who }}:"
        )
    )
    assert prompt_variables(scaffold) == ["review", "who"]
    assert render_messages(scaffold, {"review": "x", "who": "me"})[-1].content == (
        "Task:\nReview: x\nSteps for me:"
    )


def test_chain_steps_feed_later_steps() -> None:
    chain = _prompt(
        cot=ChainOfThought(
            mode=CoTMode.CHAIN,
            steps=[
                ChainStep(name="facts", template="List facts in {{ notes }}"),
                ChainStep(
                    name="summary",
                    template="Summarise {{ facts }} for {{ reader }}",
                    system="You write summaries.",
                ),
            ],
        )
    )
    assert prompt_variables(chain) == ["notes", "reader"]
    first = render_chain_step(chain, {"notes": "N", "reader": "R"}, 0, {})
    assert first[-1].content == "List facts in N"
    second = render_chain_step(chain, {"notes": "N", "reader": "R"}, 1, {"facts": "F"})
    assert [(m.role, m.content) for m in second] == [
        ("system", "You write summaries."),
        ("user", "Summarise F for R"),
    ]
    preview = render_preview(chain, {"notes": "N", "reader": "R"})
    assert [s.name for s in preview] == ["facts", "summary"]
    assert "<output of step facts>" in preview[1].messages[-1].content


def test_chain_step_cannot_use_a_later_step() -> None:
    chain = _prompt(
        cot=ChainOfThought(
            mode=CoTMode.CHAIN,
            steps=[ChainStep(name="a", template="uses {{ b }}"), ChainStep(name="b", template="x")],
        )
    )
    with pytest.raises(TemplateError, match="has not run yet"):
        render_chain_step(chain, {}, 0, {})


def test_template_error_in_prompt_names_the_field() -> None:
    prompt = _prompt(system="Hello {{ oops ")
    with pytest.raises(TemplateError) as info:
        render_messages(prompt, {"review": "x"})
    assert info.value.field == "system"


def test_extract_answer_takes_the_last_answer_line() -> None:
    prompt = _prompt(cot=ChainOfThought(mode=CoTMode.SCAFFOLD))
    text = "First 2+2.\nAnswer: 3\nWait, recheck.\nAnswer: 4\n"
    assert extract_answer(prompt, text) == "4"
    assert extract_answer(_prompt(), "  plain  ") == "plain"


def test_a_syntax_error_with_examples_blames_the_user_template_where_it_is() -> None:
    source = "Label the review.\n\nReview: {{ review }} {{ oops }"
    prompt = _prompt(user_template=source, few_shot=FewShot(examples=EXAMPLES))
    with pytest.raises(TemplateError) as info:
        render_messages(prompt, {"review": "ok"})
    error = info.value
    assert error.field == "user_template"
    assert error.example is None  # the template's fault, whichever example renders first
    assert error.line == 3
    line = source.splitlines()[2]
    assert 1 <= error.column <= len(line) and "{{ oops" in line[error.column - 1 :]


def test_example_values_a_template_fails_on_name_the_example_and_point_into_the_template() -> None:
    source = "Review: {{ review }}\nStars: {{ stars | int + 1 }}"
    examples = [
        FewShotExample(vars={"review": "great", "stars": "5"}, output="positive"),
        FewShotExample(vars={"review": "awful"}, output="negative"),  # no stars
    ]
    prompt = _prompt(user_template=source, few_shot=FewShot(examples=examples))
    with pytest.raises(TemplateError) as info:
        render_messages(prompt, {"review": "ok", "stars": "3"})
    error = info.value
    assert error.field == "user_template"
    assert error.example == 1
    assert "few-shot example 2" in str(error) and "'stars'" in str(error)
    assert (error.line, source.splitlines()[1][error.column - 1 :].startswith("stars")) == (
        2,
        True,
    )
