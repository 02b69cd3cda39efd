"""rmguard eval --model CKPT [--model CKPT ...] --data FILE [--data FILE ...] --output results.json"""

from __future__ import annotations

import argparse

from rmguard.cli import options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate reward models on pair, ranking and benchmark files",
        description="Pair files: accuracy (ties wrong, counted); gold-scored multi-response files: per-prompt "
        "Kendall τ-b and Spearman ρ; RewardBench v1/v2, RM-Bench and HHH-style files by their own "
        "rules. 95 % bootstrap intervals; a Markdown table on the console.",
    )
    options.add_model_option(parser, several=True)
    parser.add_argument("--data", action="append", required=True, help="evaluation file (repeat for several)")
    parser.add_argument("--output", default=None, help="JSON file for every number")
    options.add_scoring_options(parser)
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--bootstrap", type=options.count, default=1000, help="bootstrap resamples")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rmguard.eval.evaluation import console_table, evaluate_models

    report = evaluate_models(
        args.model, args.data, args.output, args.batch_size, args.max_length, args.seed, args.bootstrap
    )
    print(console_table(report))
    return 0
