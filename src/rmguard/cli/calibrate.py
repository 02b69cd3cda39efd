"""rmguard calibrate --model DIR --data FILE --output DIR"""

from __future__ import annotations

import argparse
import json

from rmguard.cli import options


def register(subparsers: argparse._SubParsersAction) -> None:
    from rmguard.calibration import CalibrateConfig

    options.add_config_command(
        subparsers,
        "calibrate",
        (CalibrateConfig,),
        run,
        progress=False,
        help="post-hoc length calibration: fit r - f(length) on reference responses (Huang et al. 2025)",
        description="Score reference responses with the model, fit f, a LOWESS regression of reward on "
        "response length in characters, and write a copy of the model with length_calibration.json: score, "
        "serve, eval, bon and rloo then report r - f(length) for it.",
    )


def run(args: argparse.Namespace) -> int:
    from rmguard.calibration import CalibrateConfig, calibrate_model

    (config,) = options.build_configs(args, CalibrateConfig)
    print(json.dumps(calibrate_model(config)))
    return 0
