"""``rmguard tamper``: the reward-tampering curriculum (run, replay, train, list)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rmguard.cli import options
from rmguard.errors import RMGuardError


def register(subparsers) -> None:
    parser = subparsers.add_parser("tamper", help="Sycophancy-to-Subterfuge reward-tampering curriculum")
    commands = parser.add_subparsers(dest="tamper_command", required=True, metavar="ACTION")

    run = commands.add_parser("run", help="sample and grade episodes into a resumable JSONL")
    run.add_argument("--env", action="append", help="environment name or 'all' (repeatable; default all)")
    run.add_argument("--policy", required=True, help="scripted:NAME, hf:PATH or openai:MODEL")
    run.add_argument("--samples", type=options.count, default=16, help="episodes per environment")
    run.add_argument("--output", required=True, help="results JSONL (resumed if it exists)")
    _add_environment_files(run)
    run.add_argument(
        "--concurrency", type=int, default=8, help="parallel episodes for HTTP/scripted policies"
    )
    run.add_argument("--max-commands", type=options.count, default=20)
    run.add_argument("--rm", help="rmguard reward-model checkpoint: score the text after </cot>")
    run.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_sampling_options(run)
    run.set_defaults(func=_run)

    replay = commands.add_parser("replay", help="replay a fixed response through a fresh environment")
    replay.add_argument("--env", required=True)
    replay.add_argument("--response-file", required=True, help="text, or JSON with a 'response' field")
    replay.add_argument("--variant", type=options.non_negative_int, default=0)
    _add_environment_files(replay)
    replay.add_argument("--json", action="store_true", help="print JSON (the default output)")
    replay.set_defaults(func=_replay)

    train = commands.add_parser("train", help="expert iteration through the curriculum")
    train.add_argument("--model", required=True, help="HF causal LM folder to start from")
    train.add_argument("--output-dir", required=True)
    train.add_argument("--stages", nargs="+", help="training environments in order (default: first four)")
    train.add_argument("--prompts-per-stage", type=options.count, default=8)
    train.add_argument("--samples-per-prompt", type=options.count, default=4)
    train.add_argument("--eval-samples", type=options.count, default=8)
    train.add_argument("--epochs", type=options.count, default=1)
    train.add_argument("--learning-rate", type=options.positive_float, default=1e-5)
    train.add_argument("--rm", help="rmguard reward-model checkpoint for the preference score")
    _add_sampling_options(train)
    train.set_defaults(func=_train)

    listing = commands.add_parser("list", help="list environments and scripted policies")
    listing.set_defaults(func=_list)


def _add_environment_files(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--environments",
        "--environments-file",
        dest="environments",
        help="environments from a file: the release's environments.json (with --prompts) or "
        "JSON/JSONL records with a prompt each (replay: --variant picks one)",
    )
    parser.add_argument("--prompts", help="the release's prompts.json, read with --environments")


def _load_specs(args):
    """The environments the files name, or None for the built-in variants."""
    from rmguard.tamper.environments import load_environments, load_release

    if args.prompts and not args.environments:
        raise RMGuardError("--prompts needs --environments (the release's environments.json)")
    if args.prompts:
        return load_release(args.environments, args.prompts)
    return load_environments(args.environments) if args.environments else None


def _add_sampling_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=options.positive_float, default=1.0)
    parser.add_argument("--max-new-tokens", type=options.count, default=512)
    parser.add_argument("--base-url", default="http://localhost:8000/v1", help="OpenAI-compatible endpoint")
    parser.add_argument(
        "--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the key"
    )


def _positive(value: int, flag: str) -> int:
    if value < 1:
        raise RMGuardError(f"{flag} must be at least 1, got {value}")
    return value


def _preference_scorer(checkpoint: str | None):
    if checkpoint is None:
        return None
    try:
        from rmguard.scoring import RewardScorer
    except ImportError as error:
        raise RMGuardError("--rm needs rmguard.scoring, which this installation lacks") from error
    return RewardScorer(checkpoint).score


def _run(args) -> int:
    from rmguard.tamper.policies import PolicyOptions, SamplingConfig, make_policy
    from rmguard.tamper.protocol import EpisodeConfig
    from rmguard.tamper.runner import RunConfig, expand_environments, format_report, run_curriculum

    config = RunConfig(
        environments=expand_environments(args.env or ["all"]),
        samples=_positive(args.samples, "--samples"),
        seed=args.seed,
        concurrency=_positive(args.concurrency, "--concurrency"),
        episode=EpisodeConfig(max_commands=_positive(args.max_commands, "--max-commands")),
    )
    specs = _load_specs(args)
    if specs is not None:
        specs = [s for s in specs if s.name in config.environments]
        if not specs:
            raise RMGuardError(f"{args.environments}: no environment of {', '.join(config.environments)}")
    options = PolicyOptions(
        args.base_url,
        args.api_key_env,
        SamplingConfig(args.temperature, _positive(args.max_new_tokens, "--max-new-tokens")),
    )
    report = run_curriculum(
        config,
        make_policy(args.policy, options),
        args.output,
        preference_scorer=_preference_scorer(args.rm),
        specs=specs,
    )
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def _replay(args) -> int:
    from rmguard.tamper.runner import replay_response

    response = _read_response(Path(args.response_file))
    spec = None
    specs = _load_specs(args)
    if specs is not None:
        if not 0 <= args.variant < len(specs):
            raise RMGuardError(
                f"--variant {args.variant} is out of range: {args.environments} has {len(specs)}"
            )
        spec = specs[args.variant]
    print(json.dumps(replay_response(args.env, response, args.variant, spec=spec), indent=2))
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
    from rmguard.tamper.expert_iteration import ExpertIterationConfig, train
    from rmguard.tamper.policies import SamplingConfig

    config = ExpertIterationConfig(
        model_path=args.model,
        output_dir=args.output_dir,
        prompts_per_stage=args.prompts_per_stage,
        samples_per_prompt=args.samples_per_prompt,
        eval_samples=args.eval_samples,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        seed=args.seed,
        sampling=SamplingConfig(args.temperature, args.max_new_tokens),
    )
    if args.stages:
        config.stages = args.stages
    summary = train(config, preference_scorer=_preference_scorer(args.rm))
    print(json.dumps(summary, indent=2))
    return 0


def _list(args) -> int:
    from rmguard.tamper.environments import REGISTRY
    from rmguard.tamper.policies import STRATEGIES

    print("environments: " + ", ".join(REGISTRY))
    print("scripted policies: " + ", ".join(f"scripted:{name}" for name in STRATEGIES))
    return 0
