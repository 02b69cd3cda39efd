"""rmguard bon --policy MODEL_OR_POOL --prompts FILE --proxy CKPT [--proxy CKPT ...] --gold SPEC --n 64 --output-dir DIR"""

from __future__ import annotations

import argparse

from rmguard.cli import options


def register(subparsers: argparse._SubParsersAction) -> None:
    from rmguard.overopt.bon import BonConfig
    from rmguard.overopt.generation import SamplingConfig
    from rmguard.run_folder import ResumeOrOverwrite

    options.add_config_command(
        subparsers,
        "bon",
        (BonConfig, SamplingConfig, ResumeOrOverwrite),
        run,
        help="Best-of-N over-optimization curves of proxy reward models against a gold reward",
        description="Sample N responses per prompt (or read a pool), score them with every proxy and the gold, and "
        "write gold/proxy/gap curves against KL_BoN = log n - (n-1)/n as CSV, JSON and PNG. Samples and "
        "scores are cached in the output folder: --resume_from_checkpoint latest reuses them.",
    )


def run(args: argparse.Namespace) -> int:
    from rmguard.cli.progress import stage_progress
    from rmguard.overopt.bon import BonConfig, run_best_of_n
    from rmguard.overopt.generation import SamplingConfig
    from rmguard.run_folder import ResumeOrOverwrite

    config, sampling, folder = options.build_configs(args, BonConfig, SamplingConfig, ResumeOrOverwrite)
    proxies = [spec.partition("=")[2] or spec for spec in config.proxies]
    options.claim_output(args, config.output_dir, folder, [config.policy, config.prompts, *proxies])
    with stage_progress(args.no_progress) as update:
        summary = run_best_of_n(config, sampling, update)
    for name, peak in summary["gold_peak"].items():
        print(
            f"{name}: gold peaks at n={peak['peak_n']} (KL {peak['peak_kl']:.2f}), "
            f"{peak['gold_at_peak']:.4f} → {peak['gold_at_max_n']:.4f} at n={config.n}"
        )
    print(f"curves: {summary['curves_csv']}")
    return 0
