"""`workbench soft`: list soft prompts, export/import PEFT adapters, nearest tokens."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.cli.common import open_library

if TYPE_CHECKING:
    from workbench.cli.common import Subparsers


def cmd_soft_list(args: argparse.Namespace) -> int:
    library = open_library(args)
    for soft in sorted(library.soft_prompts.values(), key=lambda s: s.created):
        accuracy = soft.metrics.get("best_val_accuracy")
        extra = f"  val accuracy {accuracy:.3f}" if accuracy is not None else ""
        print(
            f"{soft.id}  {soft.name}  ({soft.num_virtual_tokens} tokens on {soft.base_model}, "
            f"placement {soft.placement}){extra}"
        )
    return 0


def cmd_soft_export(args: argparse.Namespace) -> int:
    from workbench.core.backends.registry import ModelCatalog
    from workbench.core.flows.lookup import find_soft_prompt, load_soft_prompt
    from workbench.core.graduation import model_folder
    from workbench.core.peft_io import export_peft_adapter, placement_caveat

    library = open_library(args)
    soft = find_soft_prompt(library, args.soft)
    tensor = load_soft_prompt(library, soft)
    base = model_folder(ModelCatalog().get(soft.base_model))
    out = export_peft_adapter(tensor, soft, str(base), Path(args.out), overwrite=args.overwrite)
    print(f"wrote a PEFT prompt-tuning adapter to {out}")
    if caveat := placement_caveat(soft):
        print(f"note: {caveat}", file=sys.stderr)
    return 0


def cmd_soft_import(args: argparse.Namespace) -> int:
    from workbench.core.backends.registry import ModelCatalog
    from workbench.core.peft_io import import_adapter_into_library

    library = open_library(args)
    prompt = library.find_prompt(args.prompt) if args.prompt else None
    spec = ModelCatalog().get(args.model)
    soft = import_adapter_into_library(
        library, Path(args.folder), spec, prompt.id if prompt else None, args.name
    )
    print(
        f"imported soft prompt {soft.id}: {soft.name} ({soft.num_virtual_tokens} tokens, "
        f"for {spec.name})"
    )
    return 0


def cmd_soft_nearest(args: argparse.Namespace) -> int:
    from workbench.core.backends.registry import ModelCatalog
    from workbench.core.flows.lookup import find_soft_prompt, load_soft_prompt
    from workbench.core.flows.nearest import NEAREST_K, nearest_for_soft_prompt

    library = open_library(args)
    soft = find_soft_prompt(library, args.soft)
    tensor = load_soft_prompt(library, soft)
    # the embedding matrix and the tokenizer only: the model itself never loads
    k = NEAREST_K if args.k is None else args.k
    rows = nearest_for_soft_prompt(ModelCatalog().get(soft.base_model), tensor, k=k)
    for index, row in enumerate(rows):
        words = "  ".join(f"{text!r} {cos:.2f}" for text, cos in row)
        print(f"{index:3d}  {words}")
    return 0


def register(sub: Subparsers) -> None:
    soft = sub.add_parser(
        "soft", help="soft prompts: list, export/import PEFT adapters, nearest tokens"
    )
    ssub = soft.add_subparsers(dest="soft_command", metavar="ACTION", required=True)
    slist = ssub.add_parser("list", help="the library's soft prompts")
    slist.set_defaults(func=cmd_soft_list)
    sexp = ssub.add_parser("export", help="write a PEFT prompt-tuning adapter folder")
    sexp.add_argument("soft", metavar="NAME")
    sexp.add_argument("--out", required=True, metavar="DIR")
    sexp.add_argument("--overwrite", action="store_true")
    sexp.set_defaults(func=cmd_soft_export)
    simp = ssub.add_parser("import", help="add a PEFT prompt-tuning adapter to the library")
    simp.add_argument("folder", metavar="DIR")
    simp.add_argument("--prompt", help="link it to this prompt")
    simp.add_argument("--model", help="the base model it was trained on (default: embedded)")
    simp.add_argument("--name")
    simp.set_defaults(func=cmd_soft_import)
    snear = ssub.add_parser("nearest", help="nearest vocabulary tokens of each virtual token")
    snear.add_argument("soft", metavar="NAME")
    snear.add_argument(
        "-k", type=int, help="tokens per virtual token (default: as many as the app shows)"
    )
    snear.set_defaults(func=cmd_soft_nearest)
