"""`workbench models`: list the model catalogue; add and remove models."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from workbench.cli.common import choices, emit_json, warn

if TYPE_CHECKING:
    from workbench.cli.common import Subparsers


def cmd_models(args: argparse.Namespace) -> int:
    from workbench.core.backends.registry import ModelCatalog, backends_for

    catalog = ModelCatalog()
    for problem in catalog.problems:
        warn(str(problem))
    for spec in catalog.all():
        where = spec.url if spec.source == "openai" else spec.path or "(not installed)"
        if args.json:
            emit_json(
                {
                    "id": spec.id,
                    "name": spec.name,
                    "source": spec.source,
                    "location": where,
                    "backends": backends_for(spec),
                    "embedded": spec.embedded,
                }
            )
        else:
            default = "  [default]" if spec.embedded else ""
            print(
                f"{spec.id}  {spec.name}  ({spec.source}: {', '.join(backends_for(spec))})"
                f"{default}\n    {where}"
            )
    return 0


def cmd_models_add(args: argparse.Namespace) -> int:
    from workbench.core.backends.registry import ModelCatalog, spec_for

    spec = spec_for(
        args.location,
        name=args.name,
        backend=args.backend,
        allow_pickle=args.allow_pickle,
        remote_model=args.remote_model,
        api_key_env=args.api_key_env,
    )
    added = ModelCatalog().add(spec)
    print(f"added {added.id}: {added.name}")
    return 0


def cmd_models_remove(args: argparse.Namespace) -> int:
    from workbench.core.backends.registry import ModelCatalog

    removed = ModelCatalog().remove(args.model)
    print(f"removed {removed.id}")
    return 0


def register(sub: Subparsers) -> None:
    from workbench.core.models import BackendName

    models = sub.add_parser("models", help="list the models (embedded default first); add/remove")
    models.add_argument("--json", action="store_true")
    models.set_defaults(func=cmd_models)
    msub = models.add_subparsers(dest="models_command", metavar="ACTION")
    madd = msub.add_parser("add", help="add a GGUF file, a Hugging Face folder or a server URL")
    madd.add_argument("location", metavar="PATH_OR_URL")
    madd.add_argument("--name")
    madd.add_argument("--backend", choices=choices(BackendName))
    madd.add_argument("--remote-model", help="model name on the server (URL only)")
    madd.add_argument("--api-key-env", metavar="VAR", help="env variable with the API key")
    madd.add_argument(
        "--allow-pickle",
        action="store_true",
        help="accept pickle .bin weights (they can run code: trusted sources only)",
    )
    madd.set_defaults(func=cmd_models_add)
    mrm = msub.add_parser("remove", help="forget a user-added model")
    mrm.add_argument("model")
    mrm.set_defaults(func=cmd_models_remove)
