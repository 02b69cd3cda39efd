"""rmguard eval --model CKPT [--model CKPT ...] (--data FILE [--data FILE ...] | --suite standard --data-dir DIR)
[--output results.json]"""

from __future__ import annotations

import argparse

from rmguard.cli import options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate reward models on pair, ranking and benchmark files, or a whole benchmark suite",
        description="Pair files: accuracy (ties wrong, counted); gold-scored multi-response files: per-prompt "
        "Kendall τ-b and Spearman ρ; RewardBench v1/v2, RM-Bench, JudgeBench, RMB, PPE and HHH-style files "
        "by their own rules. --suite standard scores every benchmark found in --data-dir by its official "
        "file names. 95 % bootstrap intervals; a Markdown table on the console.",
    )
    options.add_model_option(parser, several=True)
    parser.add_argument("--data", action="append", help="evaluation file (repeat for several)")
    parser.add_argument("--suite", default=None, help="score a benchmark suite found in --data-dir: standard")
    parser.add_argument(
        "--data-dir", default=None, help="folder holding the suite's sets under their official names"
    )
    parser.add_argument(
        "--rewordbench-rules",
        action="store_true",
        help="without a reWordBench folder, score RewardBench v1 under rmguard's rule-based reWordBench transformations",
    )
    parser.add_argument("--output", default=None, help="JSON file for every number")
    options.add_scoring_options(parser)
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--bootstrap", type=options.count, default=1000, help="bootstrap resamples")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rmguard.errors import ConfigError

    if (args.data is None) == (args.suite is None):
        raise ConfigError("give either --data FILE (repeatable) or --suite NAME with --data-dir DIR")
    if args.suite is not None:
        return _run_suite(args)
    if args.data_dir is not None or args.rewordbench_rules:
        raise ConfigError("--data-dir and --rewordbench-rules go with --suite")
    from rmguard.eval.evaluation import console_table, evaluate_models

    report = evaluate_models(
        args.model, args.data, args.output, args.batch_size, args.max_length, args.seed, args.bootstrap
    )
    print(console_table(report))
    return 0


def _run_suite(args: argparse.Namespace) -> int:
    from rmguard.errors import ConfigError
    from rmguard.eval.suite import SUITES, evaluate_suite

    SUITES.lookup(args.suite)
    if args.data_dir is None:
        raise ConfigError(f"--suite {args.suite} needs --data-dir DIR, the folder holding its sets")
    report = evaluate_suite(
        args.model,
        args.data_dir,
        args.output,
        args.batch_size,
        args.max_length,
        args.seed,
        args.bootstrap,
        args.suite,
        args.rewordbench_rules,
    )
    print(report["table"])
    return 0
