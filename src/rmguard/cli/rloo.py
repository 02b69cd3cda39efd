"""rmguard rloo --policy MODEL --prompts FILE --proxy CKPT --gold SPEC --output-dir DIR"""

from __future__ import annotations

import argparse
import dataclasses

from rmguard.cli import options


def register(subparsers: argparse._SubParsersAction) -> None:
    from rmguard.overopt.generation import SamplingConfig
    from rmguard.overopt.rloo import RLOO_SAMPLING, RlooConfig
    from rmguard.run_folder import Overwrite

    parser = options.add_config_command(
        subparsers,
        "rloo",
        (RlooConfig, SamplingConfig, Overwrite),
        run,
        help="RLOO policy optimisation against a proxy RM, with the gold tracked",
        description="Optimise a policy with RLOO (TRL's RLOOTrainer) against a proxy reward model and track proxy, "
        "gold, KL to the reference and length on held-out prompts every --eval-steps steps.",
    )
    parser.set_defaults(**dataclasses.asdict(RLOO_SAMPLING))


def run(args: argparse.Namespace) -> int:
    from rmguard.cli.progress import stage_progress
    from rmguard.overopt.generation import SamplingConfig
    from rmguard.overopt.rloo import RlooConfig, run_rloo
    from rmguard.run_folder import Overwrite

    config, sampling, folder = options.build_configs(args, RlooConfig, SamplingConfig, Overwrite)
    proxies = [spec.partition("=")[2] or spec for spec in config.proxies]
    inputs = [config.policy, config.prompts, config.eval_prompts, *proxies]
    options.claim_output(args, config.output_dir, folder, inputs)
    with stage_progress(args.no_progress) as update:
        summary = run_rloo(config, sampling, update)
    peak = summary["gold_peak"]
    print(
        f"gold peaks at step {peak['step']} (KL {peak['kl']:.3f}): {peak['gold']:.4f}; at the end {peak['gold_at_end']:.4f}"
    )
    print(f"tracking: {config.output_dir}/tracking.csv")
    return 0
