"""rmguard serve --model CKPT [--host 127.0.0.1] [--port 8000] [--max-batch-tokens N]"""

from __future__ import annotations

import argparse
from typing import Any

from rmguard.cli import options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve a reward model over HTTP (OpenRLHF's /get_reward, vLLM's /classify for verl, /score)",
        description='POST /get_reward {"query", "prompts", "labels"} → {"rewards", "scores", "extra_logs"} '
        '(OpenRLHF\'s remote reward protocol); POST /classify {"model", "input", "use_activation": false} → '
        '{"data": [{"index", "probs": [reward], ...}]} (vLLM\'s, as verl\'s reward loop calls it; '
        '/v1/embeddings for verl with sglang); POST /score {"items": [{"prompt", "response"} | '
        '{"messages"}]} → {"rewards"}; GET /health. Whole texts are ended by the text rule the model was '
        "trained under. Concurrent requests are scored together (dynamic batching) with the same scores as "
        "rmguard score. See docs/serve.md.",
    )
    options.add_model_option(parser)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0: all)")
    parser.add_argument("--port", type=options.count, default=8000, help="TCP port")
    parser.add_argument(
        "--max-batch-tokens",
        type=options.count,
        default=8192,
        help="tokens per forward pass (a longer single sequence runs alone)",
    )
    parser.add_argument("--batch-size", type=options.count, default=64, help="sequences per forward pass")
    parser.add_argument(
        "--max-length",
        type=options.count,
        default=None,
        help="longest sequence scored, in tokens, longer is 413 (default: the model's max_position_embeddings)",
    )
    parser.add_argument(
        "--max-request-items", type=options.count, default=1024, help="texts per request, more is 413"
    )
    parser.add_argument(
        "--max-request-bytes", type=options.count, default=16 * 2**20, help="request body size, more is 413"
    )
    parser.add_argument(
        "--max-queue-items",
        type=options.count,
        default=8192,
        help="texts waiting to be scored; a request that would pass this gets 503 (retry later)",
    )
    options.add_normalize_option(parser)
    parser.add_argument(
        "--text-rule",
        default=None,
        help="how a whole text is ended before scoring: chat, eos or openrlhf (default: the rule the "
        "checkpoint records; see docs/serve.md)",
    )
    parser.add_argument(
        "--device", default=None, help="torch device (default: cuda when available, else cpu)"
    )
    parser.set_defaults(func=run)


def describe(scorer: Any) -> str:
    """The one startup line saying how a text is ended and whether rewards are normalised."""
    from rmguard.text_rule import RULES

    stats = scorer.statistics
    rewards = "raw" if stats is None else f"normalised (r - {stats.mean:.6g}) / {stats.std:.6g}"
    return (
        f"rmguard serve: text rule '{scorer.text_rule}' ({scorer.text_rule_source}): "
        f"{RULES[scorer.text_rule]}; rewards {rewards}"
    )


def run(args: argparse.Namespace) -> int:
    from rmguard.scoring import RewardScorer
    from rmguard.serve.app import create_app, run_server
    from rmguard.serve.requests import Limits

    scorer = RewardScorer(
        args.model,
        batch_size=args.batch_size,
        device=args.device,
        max_batch_tokens=args.max_batch_tokens,
        normalize=args.normalize,
        text_rule=args.text_rule,
    )
    max_length = args.max_length or scorer.max_length  # longer requests are answered 413 before scoring
    limits = Limits(args.max_request_bytes, args.max_request_items, max_length)
    app = create_app(scorer, limits, args.max_queue_items, str(args.model))
    print(
        f"rmguard serve: {args.model} on http://{args.host}:{args.port} (max length {max_length})", flush=True
    )
    print(describe(scorer), flush=True)
    run_server(app, args.host, args.port)
    return 0
