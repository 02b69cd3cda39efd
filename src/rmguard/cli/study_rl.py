"""rmguard study-rl --config FILE.yaml [--output-dir DIR]

The study's RLOO arm (:mod:`rmguard.overopt.study.rl`): one world of the study, its proxies, and
``rmguard rloo`` against each of them with the gold tracked; a rerun skips finished proxies and arms.
"""

from __future__ import annotations

import argparse

from rmguard.cli.study import config_arguments, run_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "study-rl",
        parents=[run_options()],
        help="the study's RLOO arm: one world's BT/BSR/GRM proxies, RLOO against each, gold over training",
        description="Build one world of the over-optimization study (its `world:` section: StudyConfig fields), "
        "train its proxies at full depth with the study's code, then run `rmguard rloo` (TRL's RLOOTrainer; "
        "its `rloo:` and `sampling:` sections) against each proxy from the same policy, seeds and prompts, "
        "tracking gold, proxy, KL and length on the held-out prompts every eval step; write report.json and "
        "figures of gold and proxy against KL with intervals over seeds and prompts. See "
        "examples/overoptimization/rl_cpu.yaml.",
    )
    config_arguments(parser, "study-rl")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rmguard.cli import options
    from rmguard.cli.progress import stage_progress
    from rmguard.fileio import check_outputs
    from rmguard.overopt.study.rl import RlStudyConfig, run_rl_study
    from rmguard.run_folder import ResumeOrOverwrite
    from rmguard.training.pretrained import local_model_folder, require_causal_lm

    config = RlStudyConfig.from_yaml(args.config, args.output_dir)
    study = config.study_config()
    check_outputs([config.output_dir], [args.config], folders=True)
    inputs = [args.config, study.policy, study.proxy_model, study.prompts_dataset, study.pool_file]
    options.claim_output(args, config.output_dir, options.build_configs(args, ResumeOrOverwrite)[0], inputs)
    require_causal_lm(local_model_folder(study.policy))  # one line here, not a traceback from TRL later
    with stage_progress(args.no_progress) as update:
        report = run_rl_study(config, update)
    for line in report["headline"]["answer"]:
        print(line)
    print(f"json:   {config.output_dir}/report.json")
    return 0
