"""rmguard split --data LABELLED.jsonl --output-dir DIR --heldout-prompts 0.2 --heldout-models 4 [--seed 0]"""

from __future__ import annotations

import argparse
import json

from rmguard.cli import options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "split",
        help="build the four distribution-shift scenarios from a gold-labelled file",
        description="Writes train.jsonl, val1_in_domain.jsonl, val2_prompt_disjoint.jsonl, "
        "val3_response_disjoint.jsonl, val4_mutual_disjoint.jsonl and manifest.json.",
    )
    parser.add_argument("--data", required=True, help="labelled multi-response file (rmguard label output)")
    parser.add_argument("--output-dir", required=True, help="folder for the scenario files")
    parser.add_argument(
        "--heldout-prompts", type=options.fraction, default=0.2, help="fraction of prompts held out"
    )
    parser.add_argument("--heldout-models", default="4", help="a count, or comma-separated model names")
    parser.add_argument(
        "--train-responses",
        type=int,
        default=2,
        help="training-model responses per train prompt used for training",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the held-out prompts and models and of the training pairs",
    )
    parser.set_defaults(func=run)


def parse_models(value: str) -> int | list[str]:
    value = value.strip()
    return int(value) if value.isdigit() else [name.strip() for name in value.split(",") if name.strip()]


def run(args: argparse.Namespace) -> int:
    from rmguard.eval.splits import make_splits
    from rmguard.fileio import check_outputs

    check_outputs([args.output_dir], [args.data], folders=True)  # before any work
    manifest = make_splits(
        args.data,
        args.output_dir,
        args.heldout_prompts,
        parse_models(args.heldout_models),
        args.seed,
        args.train_responses,
    )
    print(
        json.dumps(
            {
                "output_dir": args.output_dir,
                "heldout_models": manifest["heldout_models"],
                "counts": manifest["counts"],
                "disjointness": manifest["disjointness"],
            }
        )
    )
    return 0
