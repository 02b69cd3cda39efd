"""Scoring throughput: ``rmguard score`` vs batch-size-1 scoring vs transformers' text-classification pipeline.

    python bench/score_throughput.py [--models random-llama smollm2] [--data uf hh] [--prompts 8] [--responses 4]

A fresh reward model (standard sequence-classification checkpoint) scores ``--prompts`` prompts with
``--responses`` responses each (the best-of-N shape of over-optimization evaluations). Methods, alternated
for ``--repeats`` rounds:
  * rmguard score     what ``score_file`` runs, reading the file included: prompts shared across
                      their responses, one packed row per batch, attention per block, length-sorted;
  * batch-size-1      one forward per (prompt, response), as the reference evaluation does;
  * pipeline          ``transformers.pipeline("text-classification", function_to_apply="none")`` on
                      prompt + response + EOS, one text per call (its default batch size).
"whole run" is timed from loading the checkpoint to having every score; "steady" is a second scoring
pass with the model loaded. All three must give the same scores (the largest difference is printed).
"prompt-sharing bound" is the ratio of tokens run (every response with its own prompt, over each
prompt once plus its responses): what skipping the repeated prompts can give when a forward's cost is
proportional to its tokens, as it is on a CPU where batch-size-1 is already matrix-matrix work.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "src")]


def by_rmguard(model_dir: Path, data: Path) -> Callable[[], list[float]]:
    from rmguard.scoring import RewardScorer, load_score_items

    scorer = RewardScorer(model_dir, batch_size=16)

    def score() -> list[float]:  # what score_file does, minus writing the output
        return scorer.score_items(load_score_items(str(data))[1]).tolist()

    return score


def by_batch_of_one(model_dir: Path, rows: list[dict]) -> Callable[[], list[float]]:
    from rmguard.scoring import RewardScorer

    scorer = RewardScorer(model_dir, batch_size=1, packing=False)
    return lambda: [scorer.score([r["prompt"]], [r["response"]])[0] for r in rows]


def by_pipeline(model_dir: Path, rows: list[dict]) -> Callable[[], list[float]]:
    from transformers import pipeline

    classify = pipeline("text-classification", model=str(model_dir), device="cpu", function_to_apply="none")
    eos = classify.tokenizer.eos_token
    return lambda: [classify(r["prompt"] + r["response"] + eos)[0]["score"] for r in rows]


def main() -> None:
    from common import bench_parser, prepare_model, single_token_words, spread, synthetic_pairs, write_jsonl

    parser = bench_parser(__doc__)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--responses", type=int, default=4, help="responses per prompt")
    args = parser.parse_args()

    import torch
    from transformers import AutoTokenizer

    from rmguard.training.modeling import build_reward_model, save_reward_model

    print(f"command: {' '.join(sys.argv)}; torch threads {torch.get_num_threads()}")
    print(
        "| model | data | method | whole run: responses/s | × batch-size-1 | steady: responses/s | × batch-size-1 "
        "| prompt-sharing bound | max |Δ score| vs rmguard |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for model in args.models:
            base = prepare_model(model, args.layers, tmp / f"{model}-lm")
            rm, tokenizer = build_reward_model(str(base))
            model_dir = tmp / f"{model}-rm"
            save_reward_model(rm, tokenizer, model_dir)
            words = single_token_words(AutoTokenizer.from_pretrained(model_dir))
            for data in args.data:
                # One prompt, many responses: draw pairs for lengths, then give each prompt its responses.
                drawn = synthetic_pairs(data, args.prompts * args.responses, words, seed=2)
                rows = [
                    {
                        "prompt": drawn[p * args.responses]["prompt"],
                        "response": drawn[p * args.responses + k]["chosen"],
                    }
                    for p in range(args.prompts)
                    for k in range(args.responses)
                ]
                data_file = write_jsonl(tmp / f"{data}.jsonl", rows)
                prompt_tokens = [len(tokenizer(r["prompt"])["input_ids"]) for r in rows]
                full_tokens = [
                    len(ids)
                    for ids in tokenizer([r["prompt"] + r["response"] + tokenizer.eos_token for r in rows])[
                        "input_ids"
                    ]
                ]
                shared = sum(full_tokens) - sum(prompt_tokens) + sum(prompt_tokens[:: args.responses])
                methods = {
                    "rmguard score": partial(by_rmguard, model_dir, data_file),
                    "batch-size-1": partial(by_batch_of_one, model_dir, rows),
                    "pipeline": partial(by_pipeline, model_dir, rows),
                }
                whole: dict[str, list[float]] = {name: [] for name in methods}
                steady: dict[str, list[float]] = {name: [] for name in methods}
                scores: dict[str, list[float]] = {}
                for _ in range(args.repeats):
                    for name, setup in methods.items():
                        start = time.perf_counter()
                        score = setup()
                        scores[name] = score()
                        whole[name].append(len(rows) / (time.perf_counter() - start))
                        start = time.perf_counter()
                        score()
                        steady[name].append(len(rows) / (time.perf_counter() - start))
                base_whole = statistics.mean(whole["batch-size-1"])
                base_steady = statistics.mean(steady["batch-size-1"])
                for name in methods:
                    delta = max(abs(a - b) for a, b in zip(scores[name], scores["rmguard score"]))
                    bound = f"{sum(full_tokens) / shared:.2f}" if name == "rmguard score" else "–"
                    print(
                        f"| {model} ({args.layers} layers) | {data} | {name} | {spread(whole[name])} "
                        f"| {statistics.mean(whole[name]) / base_whole:.2f} | {spread(steady[name])} "
                        f"| {statistics.mean(steady[name]) / base_steady:.2f} | {bound} | {delta:.1e} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
