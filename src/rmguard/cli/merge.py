"""rmguard merge --adapter DIR --output DIR"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    merge = subparsers.add_parser("merge", help="merge a LoRA reward model into a standalone checkpoint")
    merge.add_argument("--adapter", required=True, help="LoRA checkpoint written by rmguard train (use_peft)")
    merge.add_argument("--output", required=True, help="folder for the merged checkpoint")
    merge.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rmguard.training.modeling import merge_lora

    merge_lora(args.adapter, args.output)
    print(f"merged model: {args.output}")
    return 0
