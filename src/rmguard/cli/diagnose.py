"""rmguard diagnose --model CKPT [--model ...] --data FILE [--data ...] --output-dir DIR"""

from __future__ import annotations

import argparse
import json

from rmguard.cli import options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "diagnose",
        help="hidden-state diagnostics: ‖h‖ box plots, pair distances over checkpoints, ‖W_p‖, effective rank",
    )
    options.add_model_option(parser, several=True)
    parser.add_argument("--data", action="append", required=True, help="data file (repeat for several)")
    parser.add_argument("--output-dir", required=True, help="folder for diagnostics.json and the PNG plots")
    options.add_scoring_options(parser)
    parser.add_argument(
        "--max-pairs", type=options.count, default=512, help="pairs used for the distance over checkpoints"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rmguard.eval.diagnostics import diagnose

    results = diagnose(
        args.model, args.data, args.output_dir, args.batch_size, args.max_length, args.max_pairs
    )
    summary = {
        label: {
            "head_norm": entry["head_norm"],
            **{
                f: {"hidden_norm_mean": v["hidden_norm"]["mean"], "effective_rank": v["effective_rank"]}
                for f, v in entry["files"].items()
            },
        }
        for label, entry in results["models"].items()
    }
    print(json.dumps({"output_dir": args.output_dir, "plots": results["plots"], "models": summary}, indent=2))
    return 0
