"""rmguard study --config FILE.yaml [--output-dir DIR]

The demo's over-optimization study on the models, prompts and gold that a YAML file of StudyConfig fields
names; ``rmguard demo`` runs it on its embedded default through :func:`run_study` too.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from rmguard.cli import options

if TYPE_CHECKING:
    from rmguard.overopt.study.pipeline import StudyConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    study = subparsers.add_parser(
        "study",
        parents=[run_options()],
        help="the demo's study on your models, prompts and gold reward model (YAML config; GPU scale)",
        description="Run the over-optimization study that `rmguard demo` runs, configured by a YAML file of "
        "StudyConfig fields: policy, proxy_model, gold (a reward model or module:function), prompts_dataset "
        "(hub name or file), sizes, objectives and seeds. See examples/overoptimization/.",
    )
    config_arguments(study, "study")
    study.set_defaults(func=run)


def config_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """--config, --output-dir and --no-progress: the options of a run a YAML file describes."""
    parser.add_argument("--config", required=True, help=f"YAML file of {what} fields")
    parser.add_argument("--output-dir", default=None, help="overrides the config's output_dir")
    parser.add_argument("--no-progress", action="store_true", help="no progress lines")


def run(args: argparse.Namespace) -> int:
    from rmguard.overopt.study.pipeline import StudyConfig

    return run_study(StudyConfig.from_yaml(args.config, args.output_dir), args)


def run_options() -> argparse.ArgumentParser:
    """The output rule's options of demo and study: a study continues by reusing its finished work."""
    from rmguard.run_folder import ResumeOrOverwrite

    return options.config_options(ResumeOrOverwrite)


def run_study(config: StudyConfig, args: argparse.Namespace) -> int:
    """Run the study ``config`` describes with progress lines, and print where its report went."""
    from rmguard.cli.progress import stage_progress
    from rmguard.fileio import check_outputs
    from rmguard.overopt.study import pipeline
    from rmguard.run_folder import ResumeOrOverwrite
    from rmguard.training.pretrained import local_model_folder, require_causal_lm

    check_outputs([config.output_dir], [], folders=True)
    inputs = [config.policy, config.proxy_model, config.prompts_dataset]
    options.claim_output(args, config.output_dir, options.build_configs(args, ResumeOrOverwrite)[0], inputs)
    # a model of the wrong kind is one line here, not a traceback from a worker process later
    require_causal_lm(local_model_folder(config.proxy_model or config.policy), role="proxy backbone")
    if config.generate:
        require_causal_lm(local_model_folder(config.policy))
    with stage_progress(args.no_progress) as update:
        result = pipeline.run_study(config, update)
    print(f"report: {result['report']}")
    print(f"json:   {result['json']}")
    print(f"time:   {result['timings_s']['total']:.0f} s")
    return 0
