"""Training throughput: TRL's RewardTrainer vs rmguard with packing off and on, same pairs, model and steps.

    python bench/train_throughput.py [--models random-llama smollm2] [--data uf hh] [--pairs 16] [--layers 4]

Every run is a fresh process (start-up included: model loading, tokenization, the training steps and
saving the model; Python imports excluded), one epoch over the same ``--pairs`` pairs in batches of
``--batch-size``; the three trainers alternate for ``--repeats`` rounds. Printed per trainer: pairs/s
and tokens/s (mean ± half-range over rounds; tokens = prompt+chosen plus prompt+rejected, the real
tokens of the pairs, the same count for every trainer), peak resident memory, achieved FLOP/s
(6·N·tokens with N the non-embedding parameters, attention scores not counted) against this machine's
fp32 matmul peak measured at start, and the ratio to TRL.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "src")]

TRAINERS = ("trl", "rmguard-padded", "rmguard-packed")


def run_trl(
    model: str,
    data: Path,
    out: Path,
    batch_size: int,
    steps: int,
    max_length: int,
    gpu: bool = False,
    callbacks: Sequence[Any] = (),
    save: bool = True,
) -> None:
    """TRL's RewardTrainer; ``gpu``: on CUDA with bf16 autocast (else fp32 on the CPU, see below)."""
    from datasets import load_dataset
    from trl import RewardConfig, RewardTrainer

    args = RewardConfig(
        output_dir=str(out),
        per_device_train_batch_size=batch_size,
        max_steps=steps,
        learning_rate=1e-5,
        max_length=max_length,
        report_to="none",
        save_strategy="no",
        logging_steps=10_000,
        disable_tqdm=True,
        use_cpu=not gpu,
        seed=42,
        dataloader_num_workers=0,
        # TRL's defaults are bf16 autocast and gradient checkpointing; bf16 matmuls are ~10× slower
        # on this CPU and rmguard runs neither, so both run plain fp32 without recomputation (on a GPU,
        # both run bf16 autocast).
        bf16=gpu,
        gradient_checkpointing=False,
    )
    trainer = RewardTrainer(
        model=model,
        args=args,
        train_dataset=load_dataset("json", data_files=str(data), split="train"),
        callbacks=list(callbacks),
    )
    trainer.train()
    if save:
        trainer.save_model(str(out / "final"))


def run_rmguard(
    model: str,
    data: Path,
    out: Path,
    batch_size: int,
    steps: int,
    max_length: int,
    packing: bool,
    gpu: bool = False,
    callbacks: Sequence[Callable] = (),
) -> None:
    """rmguard's trainer with the same settings; ``gpu``: on CUDA with bf16 autocast."""
    from rmguard.training.config import TrainConfig
    from rmguard.training.trainer import train

    train(
        TrainConfig(
            model_name_or_path=model,
            train_file=str(data),
            output_dir=str(out),
            per_device_train_batch_size=batch_size,
            max_steps=steps,
            max_length=max_length,
            report_to=["none"],
            disable_tqdm=True,
            logging_steps=10_000,
            packing=packing,
            seed=42,
            use_cpu=not gpu,
            mixed_precision="bf16" if gpu else "no",
        ),
        list(callbacks),
    )


def child(args: argparse.Namespace) -> None:
    """One timed run; prints a JSON line with the wall time and the peak memory."""
    from common import peak_rss_mib

    baseline = peak_rss_mib()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        if args.child == "trl":
            run_trl(
                args.model_dir, Path(args.data_file), Path(out), args.batch_size, args.steps, args.max_length
            )
        else:
            run_rmguard(
                args.model_dir,
                Path(args.data_file),
                Path(out),
                args.batch_size,
                args.steps,
                args.max_length,
                packing=args.child == "rmguard-packed",
            )
        seconds = time.perf_counter() - start
    print("RESULT " + json.dumps({"seconds": seconds, "peak_mib": peak_rss_mib(), "baseline_mib": baseline}))


def launch(trainer: str, model_dir: Path, data_file: Path, args: argparse.Namespace) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        trainer,
        "--model-dir",
        str(model_dir),
        "--data-file",
        str(data_file),
        "--batch-size",
        str(args.batch_size),
        "--steps",
        str(args.pairs // args.batch_size),
        "--max-length",
        str(args.max_length),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"{trainer} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def real_tokens(rows: list[dict], model_dir: Path) -> int:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    texts = [r["prompt"] + r[side] + tokenizer.eos_token for r in rows for side in ("chosen", "rejected")]
    return sum(len(ids) for ids in tokenizer(texts)["input_ids"])


def main() -> None:
    from common import (
        bench_parser,
        matmul_peak,
        non_embedding_params,
        prepare_model,
        single_token_words,
        spread,
        synthetic_pairs,
        write_jsonl,
    )

    parser = bench_parser(__doc__)
    parser.add_argument("--pairs", type=int, default=16, help="pairs per run (one epoch)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--child", choices=TRAINERS, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--data-file", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    from transformers import AutoTokenizer

    peak = matmul_peak()
    print(f"fp32 matmul peak now: {peak / 1e9:.0f} GFLOP/s; command: {' '.join(sys.argv)}")
    print(
        "| model | data | trainer | pairs/s | tokens/s | peak RSS MiB | GFLOP/s (% of peak) | × TRL pairs/s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for model in args.models:
            model_dir = prepare_model(model, args.layers, tmp / model)
            words = single_token_words(AutoTokenizer.from_pretrained(model_dir))
            params = non_embedding_params(model_dir)
            for data in args.data:
                rows = synthetic_pairs(data, args.pairs, words, seed=1)
                data_file = write_jsonl(tmp / f"{data}.jsonl", rows)
                tokens = real_tokens(rows, model_dir)
                runs: dict[str, list[dict]] = {t: [] for t in TRAINERS}
                for _ in range(args.repeats):
                    for trainer in TRAINERS:
                        runs[trainer].append(launch(trainer, model_dir, data_file, args))
                trl_rate = statistics.mean(args.pairs / r["seconds"] for r in runs["trl"])
                for trainer in TRAINERS:
                    pairs_s = [args.pairs / r["seconds"] for r in runs[trainer]]
                    tokens_s = [tokens / r["seconds"] for r in runs[trainer]]
                    flops = 6 * params * statistics.mean(tokens_s)
                    print(
                        f"| {model} ({args.layers} layers) | {data} | {trainer} | {spread(pairs_s)} | {spread(tokens_s)} "
                        f"| {max(r['peak_mib'] for r in runs[trainer]):.0f} | {flops / 1e9:.1f} ({100 * flops / peak:.0f}%) "
                        f"| {statistics.mean(pairs_s) / trl_rate:.2f} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
