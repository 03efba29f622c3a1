"""`workbench lora`: list LoRA adapters, import a PEFT adapter folder, export one as a
PEFT folder or as a GGUF LoRA adapter for llama.cpp."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.cli.common import CliError, open_library

if TYPE_CHECKING:
    from workbench.cli.common import Subparsers


def cmd_lora_list(args: argparse.Namespace) -> int:
    library = open_library(args)
    adapters = sorted(library.lora_adapters.values(), key=lambda a: (a.created, a.id))
    if args.prompt:
        prompt = library.find_prompt(args.prompt)
        adapters = [a for a in adapters if a.prompt_id == prompt.id]
    for adapter in adapters:
        owner = library.prompts.get(adapter.prompt_id or "")
        linked = f", for prompt {owner.name!r}" if owner else ""
        accuracy = adapter.metrics.get("best_val_accuracy")
        extra = f"  val accuracy {accuracy:.3f}" if accuracy is not None else ""
        print(
            f"{adapter.id}  {adapter.name}  (rank {adapter.lora.rank} on "
            f"{', '.join(adapter.lora.target_modules) or 'its layers'} of "
            f"{adapter.base_model}{linked}){extra}"
        )
    return 0


def cmd_lora_export(args: argparse.Namespace) -> int:
    from workbench.core.backends.registry import ModelCatalog
    from workbench.core.flows.lookup import find_lora_adapter
    from workbench.core.lora_io import export_lora_adapter

    if (args.out is None) == (args.gguf is None):
        raise CliError("give either --out DIR (a PEFT folder) or --gguf FILE (for llama.cpp)")
    library = open_library(args)
    adapter = find_lora_adapter(library, args.adapter)
    if args.out is not None:
        out = Path(args.out)
        if out.exists() and not (out.is_dir() and not any(out.iterdir())) and not args.overwrite:
            raise CliError(f"{out} exists and is not an empty folder (--overwrite replaces it)")
        out = export_lora_adapter(library, adapter, out, overwrite=args.overwrite)
        print(f"wrote a PEFT LoRA adapter to {out}")
        return 0
    from workbench.core.lora_gguf import convert_adapter
    from workbench.core.softprompt import model_hash_for_spec

    spec = ModelCatalog().get(args.model or adapter.base_model)
    if spec.source != "gguf":
        raise CliError(f"model {spec.name!r} is not a GGUF file; --gguf needs the GGUF model")
    if model_hash_for_spec(spec) != adapter.base_model_hash:
        raise CliError(
            f"LoRA adapter {adapter.name!r} was made for model {adapter.base_model!r}, not "
            f"{spec.name!r} (other weights); give --model the GGUF it was made for"
        )
    out = Path(args.gguf)
    if out.exists() and not args.overwrite:
        raise CliError(f"{out} exists already (--overwrite replaces it)")
    convert_adapter(library.lora_adapter_path(adapter), Path(str(spec.path)), out)
    print(f"wrote a GGUF LoRA adapter for {spec.name} to {out}")
    return 0


def cmd_lora_import(args: argparse.Namespace) -> int:
    from workbench.core.backends.registry import ModelCatalog
    from workbench.core.lora_io import import_lora_adapter

    library = open_library(args)
    prompt = library.find_prompt(args.prompt) if args.prompt else None
    spec = ModelCatalog().get(args.model)
    adapter = import_lora_adapter(
        library, Path(args.folder), spec, prompt.id if prompt else None, args.name
    )
    print(
        f"imported LoRA adapter {adapter.id}: {adapter.name} (rank {adapter.lora.rank}, "
        f"for {spec.name})"
    )
    return 0


def register(sub: Subparsers) -> None:
    lora = sub.add_parser(
        "lora", help="LoRA adapters: list, import a PEFT folder, export for PEFT or llama.cpp"
    )
    lsub = lora.add_subparsers(dest="lora_command", metavar="ACTION", required=True)
    llist = lsub.add_parser("list", help="the library's LoRA adapters")
    llist.add_argument("--prompt", help="only this prompt's adapters")
    llist.set_defaults(func=cmd_lora_list)
    lexp = lsub.add_parser(
        "export", help="write an adapter as a PEFT folder, or as a GGUF LoRA adapter"
    )
    lexp.add_argument("adapter", metavar="NAME", help="the adapter's name or id")
    lexp.add_argument("--out", metavar="DIR", help="a PEFT adapter folder")
    lexp.add_argument("--gguf", metavar="FILE", help="a GGUF LoRA adapter for llama.cpp")
    lexp.add_argument(
        "--model", help="with --gguf: the GGUF model (default: the one it was made for)"
    )
    lexp.add_argument("--overwrite", action="store_true")
    lexp.set_defaults(func=cmd_lora_export)
    limp = lsub.add_parser("import", help="add a PEFT LoRA adapter folder to the library")
    limp.add_argument("folder", metavar="DIR")
    limp.add_argument("--prompt", help="link it to this prompt")
    limp.add_argument("--model", help="the base model it was trained on (default: embedded)")
    limp.add_argument("--name")
    limp.set_defaults(func=cmd_lora_import)
