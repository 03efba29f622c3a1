"""`workbench eval`: a prompt (and variants) on a test set, planned and run by the core's
evaluation flow; a table (or JSON lines), thresholds as the exit status."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

from workbench.cli.common import (
    EXIT_INTERRUPTED,
    CliError,
    add_runtime_options,
    cancel_on_sigint,
    choices,
    emit_json,
    note,
    open_library,
    prompt_is_file,
    resolve_prompt,
    settings,
)

if TYPE_CHECKING:
    from workbench.cli.common import Subparsers
    from workbench.core.analysis import Analysis
    from workbench.core.models import EvalRun, Split, TestSet, VariantSpec

_VARIANT_KEYS = {
    "prompt": "prompt_id",
    "version": "prompt_version",
    "model": "model",
    "backend": "backend",
    "few_shot": "few_shot_count",
    "cot": "cot_mode",
    "soft": "soft_prompt_id",
    "adapter": "adapter_id",
}


def parse_variant(text: str) -> VariantSpec:
    """NAME[:key=value,...] with keys prompt, version, model, backend, few_shot, cot, soft
    and adapter (a soft prompt's or LoRA adapter's name or id: the evaluation plan
    resolves it)."""
    from workbench.core.models import VariantSpec, validate_as

    name, _, rest = text.partition(":")
    fields: dict[str, object] = {"name": name.strip()}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key not in _VARIANT_KEYS:
            raise CliError(
                f"--variant {text!r}: expected key=value with keys {', '.join(_VARIANT_KEYS)}"
            )
        fields[_VARIANT_KEYS[key]] = value.replace("-", "_") if key == "cot" else value
    # a name is no id: set after validation
    names: dict[str, object] = {
        key: fields.pop(key) for key in ("soft_prompt_id", "adapter_id") if key in fields
    }
    spec = validate_as(VariantSpec, fields, f"--variant {text!r}")
    return spec.model_copy(update=names) if names else spec


def parse_minimums(
    min_accuracy: float | None, pairs: Sequence[str], option: str = "--min"
) -> dict[str, float]:
    """--min-accuracy X and --min METRIC=X (or --max METRIC=X) as thresholds."""
    minimums = {"accuracy": min_accuracy} if min_accuracy is not None else {}
    for item in pairs:
        key, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            minimums[key.strip()] = float(value)
        except ValueError:
            raise CliError(f"{option} expects METRIC=NUMBER, got {item!r}") from None
    return minimums


def chosen_split(requested: str | None, test_set: TestSet) -> Split | None:
    """--split (all = None), else the flow's default for the test set."""
    from workbench.core.flows.evaluate import default_split

    if requested == "all":
        return None
    if requested is not None:  # argparse checked it against `Split`
        return cast("Split", requested)
    return default_split(test_set)


def _print_summary(run: EvalRun, analysis: Analysis, failures: list[str]) -> None:
    from workbench.core.analysis import analysis_json

    emit_json(
        {
            "event": "summary",
            "complete": run.complete,
            "mode": run.mode,
            "summaries": [s.model_dump() for s in run.summaries],
            "analysis": analysis_json(analysis),
            "failures": failures,
        }
    )


def cmd_eval(args: argparse.Namespace) -> int:
    from workbench.core.analysis import analyse, check_limits, format_analysis
    from workbench.core.backends.pool import BackendPool
    from workbench.core.backends.registry import ModelCatalog
    from workbench.core.evaluation import (
        DEFAULT_METRICS,
        CaseDone,
        EvalFinished,
        Progress,
        export_csv,
        export_json,
        format_table,
    )
    from workbench.core.flows.evaluate import check_runnable, plan_evaluation, run_evaluation
    from workbench.core.flows.lookup import resolve_test_set
    from workbench.core.flows.report import format_progress
    from workbench.core.fsutil import atomic_write_text
    from workbench.core.models import VariantSpec

    prompt = resolve_prompt(args)
    library = None if prompt_is_file(args.prompt) else open_library(args)
    test_set = resolve_test_set(library, prompt, args.test_set)
    if args.labels:
        labels = [x.strip() for x in args.labels.split(",")]
        test_set = test_set.model_copy(update={"labels": labels})
    split = chosen_split(args.split, test_set)
    specs = [parse_variant(v) for v in args.variant] or [VariantSpec(name=prompt.name)]
    minimums = parse_minimums(args.min_accuracy, args.min)
    maximums = parse_minimums(None, args.max, "--max")
    if args.max_group_gap is not None:
        maximums["group_gap"] = args.max_group_gap
    plan = plan_evaluation(
        library,
        prompt,
        test_set,
        specs,
        split=split,
        limit=args.limit,
        metrics=args.metric or DEFAULT_METRICS,
        mode=args.mode,
    )
    catalog = ModelCatalog()
    default_model = catalog.get(args.model or prompt.model)
    run = None
    progress = not args.json and sys.stderr.isatty()
    # the pool keeps one model loaded at a time and closes it at the end
    with BackendPool(catalog, settings(args), default_model, args.backend) as pool:
        check_runnable(plan, pool)  # an unknown model fails now, not after the first variant
        with cancel_on_sigint() as cancel:
            for event in run_evaluation(plan, pool, cancel):
                if isinstance(event, EvalFinished):
                    run = event.run
                elif isinstance(event, CaseDone) and args.json:
                    variant = plan.specs[event.variant].name
                    emit_json({"event": "case", "variant": variant, **event.result.model_dump()})
                elif isinstance(event, Progress) and progress:
                    line = format_progress(event.done, event.total, event.eta_s)
                    note(f"\r{line}   ", end="")
    assert run is not None
    if library is not None and not args.no_save:
        library.save_eval_run(run)
    if args.out:
        out = Path(args.out)
        atomic_write_text(
            out, export_csv(run, test_set) if out.suffix == ".csv" else export_json(run)
        )
    analysis = analyse(run, test_set)
    if args.report:
        from workbench.core.report_export import write_report

        write_report(args.report, run, test_set, analysis, args.max_group_gap, prompt.name)
    failures = check_limits(analysis, minimums, maximums)
    if args.json:
        _print_summary(run, analysis, failures)
    else:
        if progress:
            note()
        print(f"{prompt.name} on {test_set.name} ({split or 'all'})")
        print(format_table(run))
        print(format_analysis(analysis))
        for failure in failures:
            print(f"FAILED {failure}", file=sys.stderr)
    if not run.complete:
        return EXIT_INTERRUPTED
    return 1 if failures else 0


def report_path(text: str) -> Path:
    """--report FILE: a .md or .html file in a folder that exists (checked before the run)."""
    from workbench.core.report_export import ReportError, report_format

    try:
        report_format(text)
    except ReportError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return Path(text)


def register(sub: Subparsers) -> None:
    from workbench.core.evaluation import DEFAULT_METRICS, TEXT_METRICS
    from workbench.core.models import BackendName, EvalMode, Split

    ev = sub.add_parser("eval", help="evaluate a prompt (and variants) on a test set")
    ev.add_argument("prompt", metavar="PROMPT", help="name or id in the library, or a file")
    ev.add_argument(
        "--test-set",
        metavar="NAME|FILE",
        help="a test set of the library, or a .csv/.jsonl/.json file "
        "(default: the prompt's first test set)",
    )
    ev.add_argument(
        "--split",
        choices=[*choices(Split), "all"],
        help="rows to use (default: test when the set is split, else all)",
    )
    ev.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="SPEC",
        help="NAME[:prompt=P,version=N,model=M,backend=B,few_shot=K,cot=MODE,soft=S,"
        "adapter=A]; repeat to compare",
    )
    ev.add_argument("--model", metavar="M")
    ev.add_argument("--backend", choices=choices(BackendName))
    ev.add_argument(
        "--metric",
        action="append",
        choices=list(TEXT_METRICS),
        help=f"text metrics (default: {', '.join(DEFAULT_METRICS)})",
    )
    ev.add_argument(
        "--mode",
        choices=choices(EvalMode),
        default="auto",
        help="likelihood scores a fixed label set (auto: when the set has labels)",
    )
    ev.add_argument("--labels", help="comma-separated label set (enables likelihood scoring)")
    ev.add_argument("--limit", type=int, help="only the first N rows")
    ev.add_argument(
        "--min-accuracy",
        type=float,
        metavar="X",
        help="exit 1 when a variant's accuracy is below X",
    )
    ev.add_argument(
        "--min",
        action="append",
        default=[],
        metavar="METRIC=X",
        help="exit 1 when a variant's METRIC is below X (any stored metric, accuracy, "
        "macro_f1, micro_f1)",
    )
    ev.add_argument(
        "--max",
        action="append",
        default=[],
        metavar="METRIC=X",
        help="exit 1 when a variant's METRIC is above X (e.g. perplexity, cross_entropy, "
        "latency_s, group_gap)",
    )
    ev.add_argument(
        "--max-group-gap",
        type=float,
        metavar="X",
        help="exit 1 when a variant's accuracy differs between test-set groups by more than X",
    )
    ev.add_argument("--out", metavar="FILE", help="write the results (.csv or .json)")
    ev.add_argument(
        "--report",
        type=report_path,
        metavar="FILE",
        help="write a report with intervals, tests and pictures (.md with SVG files beside "
        "it, or one .html page)",
    )
    add_runtime_options(ev)
    ev.add_argument("--json", action="store_true", help="one JSON object per case, then a summary")
    ev.add_argument("--no-save", action="store_true", help="do not keep the run in the library")
    ev.set_defaults(func=cmd_eval)
