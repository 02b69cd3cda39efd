"""rmguard export --model GRM_DIR --output DIR"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser(
        "export", help="export a linear-head GRM checkpoint as a standard sequence classifier"
    )
    export.add_argument("--model", required=True, help="GRM checkpoint with head_type linear")
    export.add_argument(
        "--output", required=True, help="folder for the *ForSequenceClassification checkpoint"
    )
    export.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rmguard.training.modeling import export_standard

    bias = export_standard(args.model, args.output)
    print(
        f"standard checkpoint: {args.output} (the GRM head's bias {bias:.6g} is dropped: every reward is "
        "lower by it; orders, accuracies and τ are unchanged)"
    )
    return 0
