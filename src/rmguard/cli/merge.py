"""rmguard merge --adapter DIR --output DIR   and   rmguard export --model GRM_DIR --output DIR"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    merge = subparsers.add_parser("merge", help="merge a LoRA reward model into a standalone checkpoint")
    merge.add_argument("--adapter", required=True, help="LoRA checkpoint written by rmguard train (use_peft)")
    merge.add_argument("--output", required=True, help="folder for the merged checkpoint")
    merge.set_defaults(func=run_merge)
    export = subparsers.add_parser(
        "export", help="export a linear-head GRM checkpoint as a standard sequence classifier"
    )
    export.add_argument("--model", required=True, help="GRM checkpoint with head_type linear")
    export.add_argument(
        "--output", required=True, help="folder for the *ForSequenceClassification checkpoint"
    )
    export.set_defaults(func=run_export)


def run_merge(args: argparse.Namespace) -> int:
    from rmguard.training.modeling import merge_lora

    merge_lora(args.adapter, args.output)
    print(f"merged model: {args.output}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from rmguard.training.modeling import export_standard

    bias = export_standard(args.model, args.output)
    print(
        f"standard checkpoint: {args.output} (the GRM head's bias {bias:.6g} is dropped: every reward is "
        "lower by it; orders, accuracies and τ are unchanged)"
    )
    return 0
