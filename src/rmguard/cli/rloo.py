"""rmguard rloo --policy MODEL --prompts FILE --proxy CKPT --gold SPEC --output-dir DIR"""

from __future__ import annotations

import argparse
import dataclasses


def register(subparsers: argparse._SubParsersAction) -> None:
    from rmguard.overopt.rloo import RlooConfig

    parser = subparsers.add_parser(
        "rloo",
        help="RLOO policy optimisation against a proxy RM, with the gold reward tracked",
        description="Optimise a policy with RLOO (TRL's RLOOTrainer) against a proxy reward model and track proxy, "
        "gold, KL to the reference and length on held-out prompts every --eval-steps steps.",
    )
    required = {"policy", "prompts", "proxy", "gold", "output_dir"}
    for f in dataclasses.fields(RlooConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.name in required:
            parser.add_argument(flag, required=True)
        else:
            kind = {"int": int, "float": float}.get(str(f.type).split(" ")[0], str)
            parser.add_argument(flag, type=kind, default=f.default)
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rmguard.cli.progress import stage_progress
    from rmguard.overopt.rloo import RlooConfig, run_rloo

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(RlooConfig)}
    with stage_progress(args.no_progress) as update:
        summary = run_rloo(RlooConfig(**values), update)
    peak = summary["gold_peak"]
    print(
        f"gold peaks at step {peak['step']} (KL {peak['kl']:.3f}): {peak['gold']:.4f}; at the end {peak['gold_at_end']:.4f}"
    )
    print(f"tracking: {args.output_dir}/tracking.csv")
    return 0
