"""rmguard average --model A --model B ... --output DIR"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "average",
        help="WARM: average the weights of reward models fine-tuned from one initialisation",
        description="Weight-averaged reward models (Ramé et al. 2024): the uniform average of two or more "
        "reward models trained from the same pretrained weights (seeds, orders, hyperparameters), written "
        "as a checkpoint of the members' own layout. Models of another architecture, tokenizer or "
        "initialisation are refused.",
    )
    parser.add_argument(
        "--model", action="append", required=True, dest="models", help="reward-model folder (repeat, ≥ 2)"
    )
    parser.add_argument("--output", required=True, help="folder for the averaged checkpoint")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rmguard.training.averaging import average_reward_models

    average_reward_models(args.models, args.output)
    print(f"averaged {len(args.models)} reward models: {args.output}")
    return 0
