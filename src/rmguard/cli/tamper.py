"""``rmguard tamper``: the reward-tampering curriculum (run, replay, train, list).

Every option is a field of a config dataclass, declared once with its help and default, and turned into
options the way every sub-command's are (:func:`rmguard.cli.options.add_config_command`): ``--field_name``
and ``--field-name`` both work, and ``--help`` shows each default.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from rmguard.cli import options
from rmguard.errors import RMGuardError
from rmguard.fileio import check_outputs
from rmguard.run_folder import Overwrite, ResumeOrOverwrite
from rmguard.settings import option, required
from rmguard.tamper.expert_iteration import ExpertIterationConfig
from rmguard.tamper.policies import DecodingConfig, EndpointConfig
from rmguard.tamper.protocol import EpisodeConfig
from rmguard.tamper.runner import RunConfig


@dataclass
class EnvironmentFiles:
    environments: str | None = option(
        None,
        "environments from a file: the release's environments.json (with --prompts), or JSON/JSONL "
        "records with a prompt each (replay: --variant picks one)",
        aliases=["--environments-file"],
    )
    prompts: str | None = option(None, "the release's prompts.json (with --environments)")


@dataclass
class PreferenceModel:
    rm: str | None = option(None, "rmguard reward-model checkpoint: score the text after </cot>")


@dataclass
class RunOutput:
    policy: str = required("scripted:NAME, hf:PATH or openai:MODEL")
    output: str = required(
        "results JSONL (its report: OUTPUT with .report.json; --resume_from_checkpoint latest continues it)"
    )
    json: bool = option(False, "print the report as JSON")


@dataclass
class ReplayInput:
    env: str = required("environment to replay in (ignored with --environments)")
    response_file: str = required("the response: text, or JSON with a 'response' field")
    variant: int = option(0, "prompt variant (or record of --environments)")
    json: bool = option(True, "print JSON (the only output format)")

    def __post_init__(self) -> None:
        from rmguard import checks

        checks.at_least("variant", self.variant, 0)


def register(subparsers) -> None:
    parser = subparsers.add_parser("tamper", help="Sycophancy-to-Subterfuge reward-tampering curriculum")
    commands = parser.add_subparsers(dest="tamper_command", required=True, metavar="ACTION")
    for name, (description, config_types, action) in COMMANDS.items():
        options.add_config_command(
            commands,
            name,
            tuple(config_types),
            action,
            progress=False,
            help=description,
            description=description,
        )


def _build(config_type, args: argparse.Namespace):
    return options.build_configs(args, config_type)[0]


def _load_specs(files: EnvironmentFiles):
    """The environments the files name, or None for the built-in variants."""
    from rmguard.tamper.environment_files import load_environments, load_release

    if files.prompts and not files.environments:
        raise RMGuardError("--prompts needs --environments (the release's environments.json)")
    if files.prompts:
        return load_release(files.environments, files.prompts)
    return load_environments(files.environments) if files.environments else None


def _preference_scorer(checkpoint: str | None):
    if checkpoint is None:
        return None
    from rmguard.scoring import RewardScorer

    return RewardScorer(checkpoint).score


def _run(args) -> int:
    from rmguard.tamper.policies import make_policy
    from rmguard.tamper.runner import format_report, load_records, run_curriculum

    out, config, files = _build(RunOutput, args), _build(RunConfig, args), _build(EnvironmentFiles, args)
    inputs = [files.environments, files.prompts]
    check_outputs([out.output], [path for path in inputs if path])
    load_records(Path(out.output))  # a file that is not a results file is refused, never overwritten
    report = Path(out.output).with_suffix(".report.json")
    options.claim_output(args, out.output, _build(ResumeOrOverwrite, args), inputs, companions=[report])
    specs = _load_specs(files)
    if specs is not None:
        specs = [s for s in specs if s.name in config.env]
        if not specs:
            raise RMGuardError(f"{files.environments}: no environment of {', '.join(config.env)}")
    report = run_curriculum(
        config,
        make_policy(out.policy, _build(EndpointConfig, args), _build(DecodingConfig, args)),
        out.output,
        preference_scorer=_preference_scorer(_build(PreferenceModel, args).rm),
        specs=specs,
        episode=_build(EpisodeConfig, args),
    )
    print(json.dumps(report, indent=2) if out.json else format_report(report))
    return 0


def _replay(args) -> int:
    from rmguard.tamper.runner import replay_response

    replay, files = _build(ReplayInput, args), _build(EnvironmentFiles, args)
    response = _read_response(Path(replay.response_file))
    spec, specs = None, _load_specs(files)
    if specs is not None:
        if not replay.variant < len(specs):
            raise RMGuardError(
                f"--variant {replay.variant} is out of range: {files.environments} has {len(specs)}"
            )
        spec = specs[replay.variant]
    print(json.dumps(replay_response(replay.env, response, replay.variant, spec=spec), indent=2))
    return 0


def _read_response(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise RMGuardError(f"{path}: cannot read: {error.strerror}") from error
    text = raw.decode("utf-8", errors="replace")
    try:
        record = json.loads(text)
    except ValueError:
        return text
    if isinstance(record, dict) and isinstance(record.get("response"), str):
        return record["response"]
    return text


def _train(args) -> int:
    from rmguard.tamper.expert_iteration import run_expert_iteration

    config = _build(ExpertIterationConfig, args)
    options.claim_output(args, config.output_dir, _build(Overwrite, args), [config.model_path])
    summary = run_expert_iteration(
        config,
        _build(DecodingConfig, args),
        _build(EpisodeConfig, args),
        preference_scorer=_preference_scorer(_build(PreferenceModel, args).rm),
    )
    print(json.dumps(summary, indent=2))
    return 0


def _list(args) -> int:
    from rmguard.tamper.envs.registry import REGISTRY
    from rmguard.tamper.policies import STRATEGIES

    print("environments: " + ", ".join(REGISTRY))
    print("scripted policies: " + ", ".join(f"scripted:{name}" for name in STRATEGIES))
    return 0


# action -> (description, its config dataclasses, the function that runs it)
COMMANDS = {
    "run": (
        "sample and grade episodes into a resumable JSONL",
        [
            RunOutput,
            RunConfig,
            EpisodeConfig,
            DecodingConfig,
            EndpointConfig,
            EnvironmentFiles,
            PreferenceModel,
            ResumeOrOverwrite,
        ],
        _run,
    ),
    "replay": (
        "replay a fixed response through a fresh environment",
        [ReplayInput, EnvironmentFiles],
        _replay,
    ),
    "train": (
        "expert iteration through the curriculum",
        [ExpertIterationConfig, EpisodeConfig, DecodingConfig, PreferenceModel, Overwrite],
        _train,
    ),
    "list": ("list environments and scripted policies", [], _list),
}
