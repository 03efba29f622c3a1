"""The render budget: hostile templates are refused with a positioned TemplateError
naming the limit, before they build the value; real prompts still render."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.core.models import FewShot, FewShotExample, FewShotStyle, Prompt
from workbench.core.sandbox import RenderLimits, load_render_limits, set_render_limits
from workbench.core.templates import (
    TemplateError,
    render_messages,
    render_template,
    template_problems,
)

# each of these ran for seconds or built 40-100 MB before the budget
PAYLOADS = {
    "string repetition": ("{{ 'a' * 100000000 }}", "max_value_size"),
    "format width": ("{{ '{:>50000000}'.format(1) }}", "max_value_size"),
    "nested format width": ("{{ '{0:{1}}'.format('a', 100000000) }}", "max_value_size"),
    "format_map width": ("{{ '{a:>{w}}'.format_map({'a': 1, 'w': 10**8}) }}", "max_value_size"),
    "center": ("{{ 'x' | center(50000000) }}", "max_value_size"),
    "wordwrap repeated": ("{{ 'ab' | wordwrap(3) * 20000000 }}", "max_value_size"),
    "list repetition": ("{{ ['a'] * 50000000 }}", "max_value_size"),
    "nested loops": (
        "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
        "max_iterations",
    ),
    "loops over a list": (
        "{% set xs = ['a'] * 1000 %}{% for a in xs %}{% for b in xs %}{% endfor %}{% endfor %}",
        "max_iterations",
    ),
    "doubling by ~": (
        "{% set ns = namespace(x='ab') %}{% for i in range(40) %}"
        "{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x | length }}",
        "max_value_size",
    ),
    "power": ("{{ 9 ** (9 ** 9) }}", "max_value_size"),
    "replace": ("{{ ('a' * 1000000) | replace('a', 'bbbbbbbbbb') }}", "max_value_size"),
    "join": ("{{ (['aaaa'] * 100000) | join('x' * 100) }}", "max_value_size"),
    "percent width": ("{{ '%100000000d' % 1 }}", "max_value_size"),
    "percent precision": ("{{ '%.100000000f' % 1.0 }}", "max_value_size"),
    "indent": ("{{ ('a\\n' * 1000000) | indent(100) }}", "max_value_size"),
    "ljust": ("{{ 'a'.ljust(100000000) }}", "max_value_size"),
    "batch fill": ("{{ [1] | batch(100000000, 'x') | list }}", "max_value_size"),
    "lipsum": ("{{ lipsum(100000000) }}", "max_value_size"),
    "output size": ("{% for i in range(3000) %}{{ 'x' * 3000 }}{% endfor %}", "max_message_size"),
}


@pytest.mark.timeout(10)
@pytest.mark.parametrize("name", list(PAYLOADS))
def test_hostile_templates_are_refused_naming_the_limit(name: str) -> None:
    source, limit = PAYLOADS[name]
    with pytest.raises(TemplateError) as info:
        render_template(source, {}, field="user_template")
    error = info.value
    assert error.field == "user_template"
    assert error.line >= 1 and error.column >= 1
    assert limit in error.message and "settings.json" in error.message


def test_the_error_points_at_the_line() -> None:
    with pytest.raises(TemplateError) as info:
        render_template("Hello\n\n{{ 'a' * 100000000 }}", {})
    assert info.value.line == 3


def test_a_two_megabyte_prompt_still_renders() -> None:
    document = "word " * 400_000  # 2 MB
    out = render_template("Summarise:\n{{ doc }}\nEnd.", {"doc": document})
    assert len(out) == len(document) + len("Summarise:\n\nEnd.")
    # ordinary loops, filters and formats are untouched by the budget
    rows = render_template(
        "{% for r in rows %}{{ '%-6s' % r }}|{{ r | center(10) }}{% endfor %}",
        {"rows": ["a", "b"]},
    )
    assert rows == "a     |    a     b     |    b     "


def test_limits_come_from_the_settings_and_can_be_changed(tmp_path: Path) -> None:
    (tmp_path / "settings.json").write_text(
        json.dumps({"templates": {"max_value_size": 50, "bogus": 1, "max_iterations": -4}}),
        "utf-8",
    )
    loaded = load_render_limits(tmp_path)
    assert loaded == RenderLimits(max_value_size=50)
    set_render_limits(loaded)
    try:
        with pytest.raises(TemplateError, match="max_value_size = 50"):
            render_template("{{ 'a' * 60 }}", {})
        assert render_template("{{ 'a' * 40 }}", {}) == "a" * 40
    finally:
        set_render_limits(None)
    assert render_template("{{ 'a' * 60 }}", {}) == "a" * 60


def test_loops_of_all_templates_of_one_prompt_share_the_budget() -> None:
    loop = "{% for i in range(60000) %}{% endfor %}"
    assert render_template(loop, {}) == ""  # one template alone is within the budget
    prompt = Prompt(name="p", system=loop, user_template=loop + "{{ x }}")
    with pytest.raises(TemplateError, match="max_iterations"):
        render_messages(prompt, {"x": "1"})


def test_few_shot_example_formats_are_budgeted_too() -> None:
    prompt = Prompt(
        name="p",
        user_template="{{ x }}",
        few_shot=FewShot(
            examples=[FewShotExample(input="a", output="b")],
            style=FewShotStyle.INLINE,
            example_format="{{ input * 100000000 }}",
        ),
    )
    with pytest.raises(TemplateError) as info:
        render_messages(prompt, {"x": "1"})
    assert info.value.field == "few_shot.example_format"
    assert "max_value_size" in info.value.message


def test_static_check_finds_literal_risks_without_running() -> None:
    assert template_problems("{{ 'a' * 100000000 }}", "system") == [
        "system, line 1: repeats a value to 100,000,000 items (max_value_size 4,000,000)"
    ]
    assert any("center" in p for p in template_problems("{{ x | center(50000000) }}"))
    assert any("format width" in p for p in template_problems("{{ '{:>50000000}'.format(1) }}"))
    assert any("range" in p for p in template_problems("{% for i in range(1000000) %}{% endfor %}"))
    assert template_problems("Review: {{ review }} {{ 'ab' * 3 }}") == []
    assert template_problems("{{ broken") and "line 1" in template_problems("{{ broken")[0]


def test_a_hostile_imported_library_imports_shows_its_problems_and_harms_nothing(
    tmp_path: Path,
) -> None:
    from workbench.core.exchange import plan_file
    from workbench.core.library import Library

    library = Library(tmp_path / "lib")
    kept = library.new_prompt("Kept", user_template="Hi {{ name }}")
    before = (library.prompts_dir / f"{kept.id}.json").read_bytes()
    hostile = tmp_path / "hostile.yaml"
    hostile.write_text(
        "prompts:\n"
        "  - \"{{ 'a' * 100000000 }}\"\n"
        '  - "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"\n'
        '  - "Fine: {{ text }}"\n'
        "tests:\n  - vars: {text: x}\n",
        "utf-8",
    )
    plan = plan_file(library, hostile)  # nothing is rendered to plan it
    problems = plan.template_problems
    assert len(problems) == 1 and "100,000,000" in problems[0]
    result = plan.apply()
    assert len(result.added) >= 3
    assert (library.prompts_dir / f"{kept.id}.json").read_bytes() == before
    for prompt in library.prompts.values():
        if prompt.id == kept.id or "Fine" in prompt.user_template:
            render_messages(prompt, {"name": "a", "text": "b"})
        else:
            with pytest.raises(TemplateError, match=r"max_value_size|max_iterations"):
                render_messages(prompt, {})


def test_str_join_of_an_iterator_keeps_its_items() -> None:
    assert render_template("{{ ', '.join(xs | map('upper')) }}", {"xs": ["a", "b"]}) == "A, B"


def test_recursive_loops_count_against_the_budget() -> None:
    set_render_limits(RenderLimits(max_iterations=50))
    try:
        with pytest.raises(TemplateError, match="max_iterations"):
            render_template("{% for i in range(1000) recursive %}.{% endfor %}", {})
        tree = "{% for i in xs recursive %}{% if i is iterable %}{{ loop(i) }}{% else %}"
        deep = tree + "{{ i }}{% endif %}{% endfor %}"
        with pytest.raises(TemplateError, match="max_iterations"):
            render_template(deep, {"xs": [list(range(100))] * 3})
        assert render_template(deep, {"xs": [[1, 2], [3]]}) == "123"
    finally:
        set_render_limits(None)
