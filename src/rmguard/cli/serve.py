"""rmguard serve --model CKPT [--host 127.0.0.1] [--port 8000] [--max-batch-tokens N]"""

from __future__ import annotations

import argparse

from rmguard.cli import options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve a reward model over HTTP (OpenRLHF's /get_reward, /score, /health)",
        description='POST /get_reward {"query": [full texts]} → {"rewards": [...]} (OpenRLHF\'s remote '
        'reward protocol); POST /score {"items": [{"prompt", "response"} | {"messages"}]} → '
        '{"rewards": [...]}; GET /health. Concurrent requests are scored together (dynamic batching) '
        "with the same scores as rmguard score. See docs/serve.md.",
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
    parser.add_argument(
        "--device", default=None, help="torch device (default: cuda when available, else cpu)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rmguard.scoring import RewardScorer
    from rmguard.serve.app import create_app, run_server
    from rmguard.serve.requests import Limits

    scorer = RewardScorer(
        args.model, batch_size=args.batch_size, device=args.device, max_batch_tokens=args.max_batch_tokens
    )
    max_length = args.max_length or scorer.max_length  # longer requests are answered 413 before scoring
    limits = Limits(args.max_request_bytes, args.max_request_items, max_length)
    app = create_app(scorer, limits, args.max_queue_items, str(args.model))
    print(
        f"rmguard serve: {args.model} on http://{args.host}:{args.port} (max length {max_length})", flush=True
    )
    run_server(app, args.host, args.port)
    return 0
