"""Property-based tests of the exchange formats: random valid libraries round-trip through
every format (all of a library through the lossless bundle; through the others, what each
format holds), and every importer, fed random or corrupted bytes, raises nothing but its
own clear ImportFailed while the library on disk stays as it was."""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.core.exchange_helpers import add_lora_adapter, add_soft_prompt, snapshot
from workbench.core import exchange
from workbench.core.exchange import ImportFailed, collect, plan_import
from workbench.core.library import Library
from workbench.core.models import (
    FewShot,
    FewShotExample,
    GenerationParams,
    Prompt,
    TestRow,
    TestSet,
    Variable,
)
from workbench.core.templates import render_messages

# `make test` runs a fixed set of examples (derandomized: CI never fails on an input met
# by chance); FUZZ_SCALE=50 explores 50 times as many, freshly random, before a release
SCALE = int(os.environ.get("FUZZ_SCALE", "1"))
PROFILE = settings(
    max_examples=40 * SCALE,
    deadline=None,
    derandomize=SCALE == 1,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# text without role markers, braces or surrounding blank space: what every format holds
words = (
    st.text(
        alphabet=st.characters(
            codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="{}%#:\\"
        ),
        min_size=1,
        max_size=20,
    )
    .map(str.strip)
    .filter(bool)
)
names = st.from_regex(r"[A-Za-z][A-Za-z0-9 _-]{0,20}", fullmatch=True).map(str.strip)
identifiers = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
any_text = st.text(max_size=60)
stamps = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))


@st.composite
def simple_prompts(draw: st.DrawFn) -> Prompt:
    """A prompt of literal text and variables, with few-shot examples written as input."""
    variables = draw(st.lists(identifiers, min_size=0, max_size=3, unique=True))
    parts = draw(st.lists(words, min_size=1, max_size=4))
    template = " ".join(
        p + (f" {{{{ {variables[i]} }}}}" if i < len(variables) else "")
        for i, p in enumerate(parts)
    )
    template += "".join(f" {{{{ {v} }}}}" for v in variables[len(parts) :])
    examples = draw(st.lists(st.builds(FewShotExample, input=words, output=words), max_size=3))
    return Prompt(
        name=draw(names.filter(bool)),
        system=draw(st.one_of(st.just(""), words)),
        user_template=template,
        few_shot=FewShot(examples=examples),
    )


@st.composite
def rich_prompts(draw: st.DrawFn) -> Prompt:
    """Any valid prompt content (the bundle must carry all of it)."""
    return Prompt(
        name=draw(names.filter(bool)),
        description=draw(any_text),
        tags=draw(st.lists(words, max_size=3)),
        labels=draw(st.lists(words, max_size=2)),
        system=draw(any_text),
        user_template=draw(any_text),
        variables=draw(
            st.lists(
                st.builds(
                    Variable,
                    name=identifiers,
                    default=st.one_of(st.none(), any_text),
                    description=any_text,
                ),
                max_size=3,
                unique_by=lambda v: v.name,
            )
        ),
        few_shot=FewShot(
            examples=draw(
                st.lists(
                    st.builds(
                        FewShotExample,
                        input=any_text,
                        vars=st.dictionaries(identifiers, any_text, max_size=2),
                        output=any_text,
                    ),
                    max_size=3,
                )
            ),
            count=draw(st.one_of(st.none(), st.integers(0, 5))),
        ),
        params=GenerationParams(
            temperature=draw(st.floats(0, 2, allow_nan=False)),
            stop=draw(st.lists(any_text.filter(bool), max_size=2)),
            seed=draw(st.one_of(st.none(), st.integers(0, 2**31))),
        ),
        created=draw(stamps),
        updated=draw(stamps),
    )


@st.composite
def libraries(draw: st.DrawFn) -> tuple[list[tuple[Prompt, list[Prompt]]], list[TestSet], int]:
    prompts: list[tuple[Prompt, list[Prompt]]] = []
    for base in draw(st.lists(rich_prompts(), min_size=1, max_size=3)):
        older = draw(st.lists(rich_prompts(), max_size=2))
        history = [
            o.model_copy(update={"id": base.id, "version": v}) for v, o in enumerate(older, start=1)
        ]
        prompts.append((base.model_copy(update={"version": len(history) + 1}), history))
    test_sets = [
        TestSet(
            name=draw(names.filter(bool)),
            prompt_id=draw(st.sampled_from([p.id for p, _ in prompts])),
            rows=draw(
                st.lists(
                    st.builds(
                        TestRow,
                        vars=st.dictionaries(identifiers, any_text, max_size=2),
                        expected=any_text,
                        group=st.one_of(st.none(), words),
                        split=st.sampled_from([None, "train", "validation", "test"]),
                    ),
                    max_size=4,
                )
            ),
            created=draw(stamps),
            updated=draw(stamps),
        )
        for _ in range(draw(st.integers(0, 2)))
    ]
    return prompts, test_sets, draw(st.integers(0, 2))


def _fill(root: Path, content: tuple[list[tuple[Prompt, list[Prompt]]], list[TestSet], int]):
    library = Library(root)
    prompts, test_sets, soft_count = content
    for prompt, history in prompts:
        library.add_prompt_verbatim(prompt, history)
    for test_set in test_sets:
        library.add_test_set_verbatim(test_set)
    for n in range(soft_count):
        add_soft_prompt(library, f"soft {n}", prompts[0][0].id, tokens=3, hidden=4, seed=n)
        add_lora_adapter(library, f"lora {n}", prompts[0][0].id, rank=n + 1, seed=n)
    return library


@PROFILE
@given(content=libraries())
def test_random_libraries_round_trip_through_the_bundle(content) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        source = _fill(Path(tmp) / "a", content)
        (first,) = exchange.bundle.export_bytes(collect(source)).values()
        target = Library(Path(tmp) / "b")
        package = exchange.parse_bytes("bundle", first, "a.zip")
        plan_import(target, package, "a.zip").apply()
        reread = Library(Path(tmp) / "b")
        for prompt, _ in content[0]:
            assert reread.history(prompt.id) == source.history(prompt.id)
        assert reread.test_sets == source.test_sets
        assert reread.soft_prompts == source.soft_prompts
        assert reread.lora_adapters == source.lora_adapters
        for adapter in source.lora_adapters.values():
            assert snapshot(reread.lora_adapter_path(adapter)) == snapshot(
                source.lora_adapter_path(adapter)
            )
        (second,) = exchange.bundle.export_bytes(collect(reread)).values()
        assert second == first


def _through(fmt: str, prompt: Prompt, test_sets: list[TestSet] = ()) -> exchange.Package:
    with tempfile.TemporaryDirectory() as tmp:
        library = Library(Path(tmp))
        library.add_prompt_verbatim(prompt)
        for test_set in test_sets:
            library.add_test_set_verbatim(test_set)
        files = exchange.format_module(fmt).export_bytes(collect(library))
        package = exchange.Package()
        for name, body in files.items():
            package.extend(exchange.parse_bytes(fmt, body, name))
        return package


@PROFILE
@given(prompt=simple_prompts(), rows=st.lists(st.tuples(words, words), max_size=4))
def test_promptfoo_round_trip_keeps_messages_and_tests(prompt: Prompt, rows) -> None:
    names = sorted({v for v in _vars(prompt)})
    test_set = TestSet(
        name="cases",
        prompt_id=prompt.id,
        rows=[TestRow(vars=dict.fromkeys(names, value), expected=want) for value, want in rows],
    )
    package = _through("promptfoo", prompt, [test_set])
    (back,) = package.prompts
    assert back.prompt.name == prompt.name
    values = dict.fromkeys(names, "x")
    assert render_messages(back.prompt, values) == render_messages(prompt, values)
    if rows:
        (tests,) = package.test_sets
        assert [(r.vars, r.expected) for r in tests.rows] == [
            (r.vars, r.expected) for r in test_set.rows
        ]


@PROFILE
@given(prompt=simple_prompts())
def test_prompty_round_trip_keeps_messages(prompt: Prompt) -> None:
    (back,) = _through("prompty", prompt).prompts
    values = dict.fromkeys(_vars(prompt), "x")
    assert back.prompt.name == prompt.name
    assert render_messages(back.prompt, values) == render_messages(prompt, values)


@PROFILE
@given(prompt=simple_prompts())
def test_langchain_round_trip_keeps_the_user_turn(prompt: Prompt) -> None:
    prompt = prompt.model_copy(update={"system": ""})
    (back,) = _through("langchain", prompt).prompts
    values = dict.fromkeys(_vars(prompt), "x")
    assert back.prompt.name == prompt.name
    expected = render_messages(prompt.model_copy(update={"few_shot": _inline(prompt)}), values)
    assert render_messages(back.prompt, values) == expected


@PROFILE
@given(system=st.one_of(st.just(""), words), rows=st.lists(st.tuples(words, words), min_size=1))
def test_openai_jsonl_round_trip_keeps_the_conversations(system: str, rows) -> None:
    prompt = Prompt(name="conversations", system=system, user_template="{{ input }}")
    test_set = TestSet(
        name="t",
        prompt_id=prompt.id,
        rows=[TestRow(vars={"input": q}, expected=a) for q, a in rows],
    )
    package = _through("openai-jsonl", prompt, [test_set])
    (back,) = package.prompts
    assert back.prompt.system == system
    (tests,) = package.test_sets
    assert [(r.vars, r.expected) for r in tests.rows] == [({"input": q}, a) for q, a in rows]


def _vars(prompt: Prompt) -> list[str]:
    from workbench.core.templates import prompt_variables

    return prompt_variables(prompt)


def _inline(prompt: Prompt) -> FewShot:
    return prompt.few_shot.model_copy(update={"style": "inline"})


# -- fuzzing ------------------------------------------------------------------------------

IMPORTABLE = [name for name in exchange.FORMATS if exchange.can_import(name)]


def _sample_files() -> dict[str, bytes]:
    """One valid export per format, the seeds of the corruption fuzzing."""
    with tempfile.TemporaryDirectory() as tmp:
        library = Library(Path(tmp))
        prompt = library.new_prompt(
            "Seed",
            system="Be brief.",
            user_template="Capital of {{ country }}?",
            few_shot=FewShot(examples=[FewShotExample(input="Italy?", output="Rome")]),
        )
        library.add_test_set_verbatim(
            TestSet(name="t", prompt_id=prompt.id, rows=[TestRow(vars={"country": "Peru"})])
        )
        add_soft_prompt(library, "s", prompt.id, tokens=2, hidden=4)
        add_lora_adapter(library, "l", prompt.id, rank=1)
        items = collect(library)
        return {
            name: next(iter(exchange.format_module(name).export_bytes(items).values()))
            for name in IMPORTABLE
        }


SAMPLES = _sample_files()


@st.composite
def corrupted(draw: st.DrawFn) -> tuple[str, bytes]:
    fmt = draw(st.sampled_from(IMPORTABLE))
    data = bytearray(SAMPLES[fmt])
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "cut":
            del data[at:]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif data:
            del data[at : at + draw(st.integers(1, 16))]
    return fmt, bytes(data)


def _only_clear_errors(fmt: str, data: bytes, library: Library) -> None:
    before = snapshot(library.root)
    try:
        package = exchange.parse_bytes(fmt, data, f"fuzz.{fmt}")
        plan_import(library, package, "fuzz")  # planning writes nothing either
    except ImportFailed as exc:
        assert exc.problems and all(p.message for p in exc.problems)
        assert "Traceback" not in str(exc)
        # the backstop's message means a reader met input it does not handle: a bug
        assert not any(p.message.startswith(exchange.UNEXPECTED) for p in exc.problems), exc
    assert snapshot(library.root) == before


@PROFILE
@given(case=corrupted())
def test_corrupted_files_give_only_clear_import_errors(case, tmp_path_factory) -> None:
    library = Library(tmp_path_factory.mktemp("lib"))
    library.new_prompt("Existing", user_template="x")
    _only_clear_errors(*case, library)


@settings(max_examples=60 * SCALE, deadline=None, derandomize=SCALE == 1)
@given(fmt=st.sampled_from(IMPORTABLE), data=st.binary(max_size=300))
def test_random_bytes_give_only_clear_import_errors(fmt: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _only_clear_errors(fmt, data, Library(Path(tmp)))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
keys = st.sampled_from(
    [
        "prompts",
        "tests",
        "raw",
        "label",
        "vars",
        "assert",
        "messages",
        "role",
        "content",
        "_type",
        "template",
        "examples",
        "example_prompt",
        "suffix",
        "name",
        "model",
        "inputs",
    ]
)
structured = st.recursive(
    json_values,
    lambda inner: st.dictionaries(keys, inner, max_size=4) | st.lists(inner, max_size=3),
    max_leaves=16,
)


@settings(max_examples=80 * SCALE, deadline=None, derandomize=SCALE == 1)
@given(fmt=st.sampled_from(["promptfoo", "langchain", "openai-jsonl", "prompty"]), doc=structured)
def test_well_formed_but_wrong_documents_give_only_clear_import_errors(fmt: str, doc) -> None:
    import json

    import yaml

    if fmt == "promptfoo":
        data = yaml.safe_dump(doc).encode()
    elif fmt == "prompty":
        data = ("---\n" + yaml.safe_dump(doc) + "---\nuser:\nhi\n").encode()
    elif fmt == "openai-jsonl":
        data = (json.dumps(doc) + "\n").encode()
    else:
        data = json.dumps(doc).encode()
    with tempfile.TemporaryDirectory() as tmp:
        _only_clear_errors(fmt, data, Library(Path(tmp)))
