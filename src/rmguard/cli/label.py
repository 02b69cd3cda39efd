"""rmguard label --data IN.jsonl --gold SPEC --output OUT.jsonl [--pairs ...] [--label-noise F | --length-bias P]
[--seed N]"""

from __future__ import annotations

import argparse
import json

from rmguard.cli import options
from rmguard.data.formats import PAIR_STRATEGIES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "label",
        help="gold-score every response of a multi-response file and build labelled pairs",
        description="Writes OUT.jsonl (every completion with gold_score), OUT.pairs.jsonl (TRL pairs, label noise "
        "applied) and OUT.meta.json. SPEC is a reward-model folder or module:function / file.py:function "
        "for f(prompt, response) -> float, called with chat messages.",
    )
    parser.add_argument(
        "--data",
        required=True,
        help="UltraFeedback-layout file: instruction/prompt, completions[{model, response}]",
    )
    parser.add_argument("--gold", required=True, help="gold SPEC: reward-model folder or module:function")
    parser.add_argument("--output", required=True, help="labelled JSONL to write")
    parser.add_argument(
        "--pairs",
        default="best_vs_worst",
        choices=PAIR_STRATEGIES.choices(),
        help="how records become pairs (as in training); tied gold scores are never paired",
    )
    parser.add_argument(
        "--label-noise",
        type=options.fraction,
        default=0.0,
        help="fraction of pairs to flip, exactly (rounded)",
    )
    parser.add_argument(
        "--length-bias",
        type=options.fraction,
        default=0.0,
        help="instead of --label-noise: of the pairs whose responses differ in length (characters), this "
        "fraction, exactly (rounded), is labelled by length, the longer one better",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the flipped pairs and of best_vs_random")
    parser.add_argument("--batch-size", type=options.count, default=16, help="gold reward-model batch size")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rmguard.eval.labeling import label_file

    meta = label_file(
        args.data,
        args.gold,
        args.output,
        args.pairs,
        args.label_noise,
        args.seed,
        args.batch_size,
        args.length_bias,
    )
    print(
        json.dumps(
            {
                k: meta[k]
                for k in ("records", "responses", "pairs", "flipped", "records_without_pair", "files")
            }
        )
    )
    return 0
