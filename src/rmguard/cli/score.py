"""rmguard score --model DIR --data FILE --output scores.jsonl"""

from __future__ import annotations

import argparse
import json

from rmguard.cli import options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score a pair file or a prompt/response file with a reward model",
        description="Pair files get chosen_reward and rejected_reward per pair; files with 'prompt' and 'response' "
        "get one reward per line. Output lines follow the input order.",
    )
    options.add_model_option(parser)
    parser.add_argument("--data", required=True, help="JSONL/JSON/CSV/Parquet file")
    parser.add_argument("--output", required=True, help="JSONL file to write")
    options.add_scoring_options(parser)
    options.add_normalize_option(parser)
    parser.add_argument(
        "--no-packing",
        dest="packing",
        action="store_false",
        help="one padded row per response instead of sharing each prompt across its responses",
    )
    parser.add_argument("--data-format", default="auto", help="pair format (see rmguard train --help)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rmguard.scoring import score_file

    summary = score_file(
        args.model,
        args.data,
        args.output,
        args.batch_size,
        args.data_format,
        args.max_length,
        args.packing,
        args.normalize,
    )
    print(json.dumps(summary))
    return 0
